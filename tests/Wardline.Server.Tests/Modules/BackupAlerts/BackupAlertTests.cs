using Wardline.Server.Hosting;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.BackupAlerts;

/// <summary>Operators hear by e-mail (a real SMTP server, aiosmtpd) when continuous backups start failing and when they recover, once per streak.</summary>
public sealed class BackupAlertTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "wl-backup-alert-" + Guid.NewGuid().ToString("N")[..8]);
    private SmtpSink _smtp = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _smtp = await SmtpSink.StartAsync();
    }

    public Task DisposeAsync()
    {
        _smtp.Dispose();
        if (Directory.Exists(_dir)) Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_failing_target_is_mailed_once_and_its_recovery_too_and_no_backup_is_marked_complete()
    {
        // The target's parent is a file, so the folder cannot be made: every run fails until the file goes.
        var blocker = Path.Combine(_dir, "blocker");
        await File.WriteAllTextAsync(blocker, "not a folder");
        var options = Alerting(new WardlineOptions { DataDirectory = Path.Combine(_dir, "data") }, _smtp.Port, Path.Combine(blocker, "target"));
        await using var server = await TestServer.StartAsync(options);
        var store = server.Service<RecordStore>();

        await _smtp.WaitForAsync("are failing", TimeSpan.FromSeconds(30));
        await WaitUntilAsync(async () => await store.CountAsync("SELECT COUNT(*) FROM backup_runs WHERE status = 'failed'", CancellationToken.None) >= 3, TimeSpan.FromSeconds(30));
        Assert.Contains("it-operations@hospital.example", _smtp.Output, StringComparison.Ordinal);
        Assert.Equal(1, Count(_smtp.Output, "are failing"));
        Assert.Equal(1, await store.CountAsync("SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'backup-failed'", CancellationToken.None));
        Assert.Equal(0, await store.CountAsync("SELECT COUNT(*) FROM backup_runs WHERE status = 'completed'", CancellationToken.None));
        Assert.NotEqual("ok", (await server.Service<BackupStatus>().ReadAsync(5, CancellationToken.None)).Health);

        File.Delete(blocker);

        await _smtp.WaitForAsync("target succeed again", TimeSpan.FromSeconds(30));
        Assert.Equal(1, await store.CountAsync("SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'backup-recovered'", CancellationToken.None));
        Assert.Equal("ok", (await server.Service<BackupStatus>().ReadAsync(5, CancellationToken.None)).Health);
        // The recovered run's manifest (with a backup a second, the next run may have written its own by now).
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(blocker, "target", "manifests")));
    }

    [Fact]
    public async Task When_the_alert_cannot_be_mailed_the_failure_is_still_recorded()
    {
        var blocker = Path.Combine(_dir, "blocker2");
        await File.WriteAllTextAsync(blocker, "not a folder");
        var options = Alerting(new WardlineOptions { DataDirectory = Path.Combine(_dir, "data2") }, SmtpSink.FreePort(), Path.Combine(blocker, "target"));
        await using var server = await TestServer.StartAsync(options);
        var store = server.Service<RecordStore>();

        await WaitUntilAsync(async () => await store.CountAsync("SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'notification-failed'", CancellationToken.None) == 1, TimeSpan.FromSeconds(40));

        Assert.Equal(1, await store.CountAsync("SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'backup-failed'", CancellationToken.None));
    }

    [Fact]
    public async Task Backups_that_stop_without_failing_are_mailed_as_overdue_once_and_again_when_they_are_on_time_however_many_servers_watch()
    {
        await using var database = await TestStore.CreateAsync(StoreKind.Postgres);
        var target = Path.Combine(_dir, "overdue-target");
        // Another server holds the backup lead and does nothing (stuck): these two run no backup, and no run fails.
        await using var dialect = SqlDialect.Postgres(database.PostgresConnectionString!);
        var stuck = await LeaderLock.TryTakeAsync(dialect, "wardline.backup", CancellationToken.None);
        Assert.NotNull(stuck);
        await using var server = await TestServer.StartAsync(Overdue(database, target));
        var store = server.Service<RecordStore>();
        await _smtp.WaitForAsync("are overdue", TimeSpan.FromSeconds(30));
        // A second server starts (or the first restarts) during the streak: by its own clock, nothing is overdue yet, but
        // with no good backup at all that ends no streak.
        await using var second = await TestServer.StartAsync(Overdue(database, target));

        await Task.Delay(TimeSpan.FromSeconds(5)); // more cycles of each server, the second's past the threshold too: no second mail
        Assert.Equal(1, Count(_smtp.Output, "are overdue"));
        Assert.Equal(0, Count(_smtp.Output, "are failing"));
        Assert.Equal(0, Count(_smtp.Output, "are on time again"));
        Assert.Equal(0, await store.CountAsync("SELECT COUNT(*) FROM backup_runs", CancellationToken.None));
        Assert.Equal(1, await store.CountAsync("SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'backup-overdue' AND detail LIKE '%no backup has completed since this server started%'", CancellationToken.None));

        await stuck!.DisposeAsync();

        await _smtp.WaitForAsync("are on time again", TimeSpan.FromSeconds(30));
        await Task.Delay(TimeSpan.FromSeconds(3)); // both servers have seen the good backup
        Assert.True(await store.CountAsync("SELECT COUNT(*) FROM backup_runs WHERE status = 'completed'", CancellationToken.None) >= 1);
        Assert.Equal(1, await store.CountAsync("SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'backup-on-time'", CancellationToken.None));
        Assert.Equal(1, Count(_smtp.Output, "are on time again"));
        Assert.Equal(1, Count(_smtp.Output, "are overdue"));
    }

    private WardlineOptions Overdue(TestStore database, string target)
    {
        var options = Alerting(database.SharedOptions(), _smtp.Port, target);
        options.Backup.OverdueAfterSeconds = 3;
        return options;
    }

    /// <summary>Backups to <paramref name="target"/> every second, no drills, alerts mailed through the SMTP server on <paramref name="smtpPort"/>.</summary>
    private static WardlineOptions Alerting(WardlineOptions options, int smtpPort, string target)
    {
        options.Access.Notify.SmtpHost = "127.0.0.1";
        options.Access.Notify.SmtpPort = smtpPort;
        options.Access.Notify.PrivacyOfficers.Add("privacy@hospital.example");
        options.Access.Notify.From = "wardline@hospital.example";
        options.Backup.Target = "file://" + target;
        options.Backup.IntervalSeconds = 1;
        options.Backup.DrillIntervalHours = 0;
        options.Backup.AlertEmails.Add("it-operations@hospital.example");
        return options;
    }

    private static int Count(string text, string what)
    {
        var n = 0;
        for (var i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }

    private static async Task WaitUntilAsync(Func<Task<bool>> condition, TimeSpan timeout)
    {
        var deadline = DateTime.UtcNow + timeout;
        while (!await condition())
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the condition did not hold in time");
            await Task.Delay(200);
        }
    }
}
