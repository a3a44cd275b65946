using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Wardline.Backup;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Backup;

/// <summary>
/// Continuous backups: every <see cref="BackupOptions.IntervalSeconds"/> the server ships what is new to the
/// configured target (the recovery point objective), prunes by the retention policy at most hourly, and runs a
/// restore drill when the last one is older than <see cref="BackupOptions.DrillIntervalHours"/>. Failures are
/// recorded in the ledger when a streak starts and when it ends (not every minute), and shown as "failing" in status.
/// With several servers on one PostgreSQL, one runs the backups (a session advisory lock), the others wait. Every server
/// watches the age of the last good backup: past <see cref="BackupOptions.OverdueSeconds"/>, for whatever cause, it records
/// and mails that backups are overdue, once, and again once they are on time.
/// </summary>
internal sealed class BackupService(BackupOptions options, BackupWriter writer, BackupDrills drills, BackupStatus status, RecordKeys keys,
    LedgerRecorder recorder, MailSender mail, SqlDialect dialect, TimeProvider time, ILogger<BackupService> logger) : BackgroundService
{
    private readonly SemaphoreSlim _run = new(1, 1);
    private readonly CurrentProgress _current = new();
    private bool _failing;
    private bool? _seen;
    private DateTimeOffset _started;

    /// <summary>What this server's backup or drill in progress is doing (null when idle), for the console's progress display.</summary>
    public BackupProgress? Current => _current.Value;

    /// <summary>What is running: "backup" or "drill" (null when idle).</summary>
    public string? Running => _current.Activity;
    private DateTimeOffset _lastPrune = DateTimeOffset.MinValue;

    /// <summary>Takes a backup now (API and console "back up now"); serialised with the scheduled runs.</summary>
    public async Task<BackupRunResult> BackupNowAsync(bool full, string trigger, CancellationToken ct)
    {
        if (options.Target is null) throw new BackupRefusedException("no backup target is configured (Wardline:Backup:Target)");
        await _run.WaitAsync(ct);
        try
        {
            await using var store = Open();
            return await RunOnceAsync(store, full, trigger, ct);
        }
        finally
        {
            _run.Release();
        }
    }

    /// <summary>Runs a restore drill now.</summary>
    public async Task<DrillResult> DrillNowAsync(string actor, CancellationToken ct)
    {
        if (options.Target is null) throw new BackupRefusedException("no backup target is configured (Wardline:Backup:Target)");
        await _run.WaitAsync(ct);
        try
        {
            await using var store = Open();
            _current.Start("drill");
            return await AlertIfFailedAsync(await drills.RunAsync(store, options, actor, _current, ct), ct);
        }
        finally
        {
            _current.Stop();
            _run.Release();
        }
    }

    private IBackupStore Open() => BackupTargets.Open(options.Target!, options.Store.WithEnvironment());

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (options.Target is null || options.IntervalSeconds == 0) return;
        await Task.Yield();
        _started = time.GetUtcNow();
        using var timer = new PeriodicTimer(TimeSpan.FromSeconds(options.IntervalSeconds), time);
        do
        {
            try
            {
                await WatchOverdueAsync(stoppingToken);
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                BackupLog.CycleFailed(logger, options.Target, ex.GetType().Name, ex.Message);
            }
            try
            {
                await using var leader = await LeaderLock.TryTakeAsync(dialect, "wardline.backup", stoppingToken);
                if (leader is null) continue;
                await _run.WaitAsync(stoppingToken);
                try
                {
                    await using var store = Open();
                    var result = await RunOnceAsync(store, false, "schedule", stoppingToken);
                    if (result.Status != "failed")
                    {
                        await MaintainAsync(store, stoppingToken);
                    }
                }
                finally
                {
                    _run.Release();
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex) when (ex is not OperationCanceledException)
            {
                // Whatever happens to one cycle (the target, retention, a drill), the next one runs: a hosted service that
                // throws would stop the whole server. Expected failures are already recorded as failed runs.
                BackupLog.CycleFailed(logger, options.Target, ex.GetType().Name, ex.Message);
            }
        }
        while (await timer.WaitForNextTickAsync(stoppingToken));
    }

    /// <summary>
    /// Records and mails, once, that no good backup has finished for longer than the overdue threshold (counted from this
    /// server's start when there was none), and once more when one has. Every server watches, and the state they share
    /// (<c>backup_watch</c>) lets only the first to see a change announce it: one mail a streak, however many servers.
    /// Only a good backup ends a streak: with none at all, servers count from their own starts and disagree (one started
    /// later, or restarted, is not yet overdue), so that case only ever announces "overdue". The state is changed before
    /// the ledger entry and the mail: a server that dies between the two leaves that change unannounced (the status
    /// still shows it), rather than several servers announcing it.
    /// </summary>
    private async Task WatchOverdueAsync(CancellationToken ct)
    {
        var last = await status.LastGoodAsync(ct); // one query a cycle on every server, not the whole status view
        var since = last?.Finished ?? last?.Started ?? _started;
        var overdue = time.GetUtcNow() - since > TimeSpan.FromSeconds(options.OverdueSeconds);
        if (!overdue && last is null) return;
        if (overdue == _seen) return; // the database is asked only when this server's own view changes
        var announce = await TurnWatchAsync(overdue, ct);
        _seen = overdue;
        if (!announce) return;
        if (overdue)
        {
            var what = last is null ? $"no backup has completed since this server started at {_started:u}" : $"the last good backup finished at {since:u}";
            await recorder.RecordSystemAsync("backup-overdue", "schedule", "failed", $"backups to {options.Target} are overdue: {what}", ct);
            await AlertAsync($"Wardline backups to {options.Target} are overdue", $"""
                No good backup to {options.Target} within {options.OverdueSeconds} s at {time.GetUtcNow():u}: {what}.

                Look at the backup status in the console (Backup) or with `wardline backup status`, and at the servers' logs: runs may be
                failing, a backup cycle may be stopping on an unexpected error, or the server holding the backup lead may be stuck.
                You will be told when a good backup has finished.
                """, ct);
        }
        else
        {
            await recorder.RecordSystemAsync("backup-on-time", "schedule", "succeeded", $"backups to {options.Target} are on time again: the last good backup finished at {since:u}", ct);
            await AlertAsync($"Wardline backups to {options.Target} are on time again", $"A good backup to {options.Target} finished at {since:u}.", ct);
        }
    }

    /// <summary>
    /// Sets the target's shared overdue state to <paramref name="overdue"/>; true only for the one server whose update changed
    /// it (an atomic compare-and-set, on both engines). A target seen for the first time starts on time.
    /// </summary>
    private async Task<bool> TurnWatchAsync(bool overdue, CancellationToken ct)
    {
        await using var gate = await dialect.EnterWriteAsync(ct);
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "INSERT INTO backup_watch (target, overdue) VALUES (@t, 0) ON CONFLICT (target) DO NOTHING";
        Migrations.AddParam(cmd, "@t", options.Target!);
        await cmd.ExecuteNonQueryAsync(ct);
        cmd.CommandText = "UPDATE backup_watch SET overdue = @o WHERE target = @t AND overdue <> @o";
        Migrations.AddParam(cmd, "@o", overdue ? 1 : 0);
        return await cmd.ExecuteNonQueryAsync(ct) == 1;
    }

    private async Task<BackupRunResult> RunOnceAsync(IBackupStore store, bool full, string trigger, CancellationToken ct)
    {
        BackupRunResult result;
        _current.Start("backup");
        try
        {
            result = await writer.RunAsync(store, options, full, trigger, _current, ct);
        }
        finally
        {
            _current.Stop();
        }
        if (result.Status == "failed")
        {
            if (!_failing || trigger != "schedule")
            {
                await recorder.RecordSystemAsync("backup-failed", trigger, "failed", $"backup {result.RunId} to {result.Target} failed: {result.Error}", ct);
            }
            if (!_failing)
            {
                await AlertAsync($"Wardline backups to {result.Target} are failing", $"""
                    Backup {result.RunId} to {result.Target} failed at {time.GetUtcNow():u}:
                    {result.Error}

                    No backup was marked complete. The server retries every {options.IntervalSeconds} s and resumes from the segments already stored.
                    The last good backup is shown in the console (Backup) and by `wardline backup status`. You will be told when backups succeed again.
                    """, ct);
            }
            _failing = true;
        }
        else
        {
            if (_failing)
            {
                await recorder.RecordSystemAsync("backup-recovered", trigger, "succeeded", $"backups to {result.Target} succeed again (run {result.RunId})", ct);
                await AlertAsync($"Wardline backups to {result.Target} succeed again", $"Backup {result.RunId} to {result.Target} {result.Status} at {time.GetUtcNow():u}.", ct);
            }
            _failing = false;
            if (result.Status == "completed" && (result.Kind == "full" || trigger != "schedule"))
            {
                await recorder.RecordSystemAsync("backup-completed", trigger, "succeeded",
                    $"{result.Kind} backup {result.RunId} to {result.Target}: entries up to {result.Manifest!.LedgerSize}, {result.Stored} objects stored ({result.StoredBytes} bytes), {result.Reused} reused", ct);
            }
        }
        return result;
    }

    private async Task<DrillResult> AlertIfFailedAsync(DrillResult drill, CancellationToken ct)
    {
        if (drill.Status != "passed")
        {
            await AlertAsync($"Wardline restore drill {drill.Id} failed", $"""
                The restore drill of {drill.Target} at {drill.At:u} failed (backup {drill.Manifest ?? "none"}):
                {string.Join(Environment.NewLine, drill.Problems.Take(20))}

                A backup that does not restore is not a backup: find the cause before relying on it (docs/operations/backup.md).
                """, ct);
        }
        return drill;
    }

    /// <summary>E-mails the operators; a mail that cannot be sent is logged and recorded, and never stops a backup.</summary>
    private async Task AlertAsync(string subject, string text, CancellationToken ct)
    {
        if (!mail.Configured || options.AlertEmails.Count == 0) return;
        try
        {
            await mail.SendAsync(options.AlertEmails, subject, text, ct);
        }
        catch (Exception ex) when (MailSender.IsSendFailure(ex))
        {
            BackupLog.AlertFailed(logger, subject, ex.GetType().Name);
            await recorder.RecordSystemAsync("notification-failed", "system", "failed", $"backup alert \"{subject}\" could not be e-mailed ({ex.GetType().Name})", CancellationToken.None);
        }
    }

    private async Task MaintainAsync(IBackupStore store, CancellationToken ct)
    {
        var now = time.GetUtcNow();
        if (now - _lastPrune > TimeSpan.FromHours(1))
        {
            _lastPrune = now;
            var pruned = await BackupRetention.PruneAsync(store, keys.Keyring, options.Retention, ct);
            if (pruned.ManifestsRemoved + pruned.ObjectsRemoved + pruned.Locked + pruned.Unreadable > 0)
                BackupLog.Pruned(logger, store.Display, pruned.ManifestsRemoved, pruned.ObjectsRemoved, pruned.Locked, pruned.Unreadable);
            if (pruned.RunningBackup is { } lease) BackupLog.PruneDeferred(logger, store.Display, lease);
        }
        if (options.DrillIntervalHours > 0)
        {
            var last = (await status.DrillsAsync(1, ct)).FirstOrDefault();
            if (last is null || now - last.At > TimeSpan.FromHours(options.DrillIntervalHours))
            {
                _current.Start("drill");
                try
                {
                    await AlertIfFailedAsync(await drills.RunAsync(store, options, "schedule", _current, ct), ct);
                }
                finally
                {
                    _current.Stop();
                }
            }
        }
    }
}

/// <summary>The latest progress report, kept for readers on other threads (Progress&lt;T&gt; would post to a context instead).</summary>
internal sealed class CurrentProgress : IProgress<BackupProgress>
{
    private volatile BackupProgress? _value;
    private volatile string? _activity;

    public BackupProgress? Value => _value;

    public string? Activity => _activity;

    public void Start(string activity)
    {
        _activity = activity;
        _value = new BackupProgress("starting", 0, 0);
    }

    public void Stop()
    {
        _activity = null;
        _value = null;
    }

    public void Report(BackupProgress value) => _value = value;
}

/// <summary>A PostgreSQL session advisory lock held on its own connection (always granted on SQLite, where one process owns the file).</summary>
internal sealed class LeaderLock : IAsyncDisposable
{
    private readonly System.Data.Common.DbConnection? _connection;

    private LeaderLock(System.Data.Common.DbConnection? connection) => _connection = connection;

    public static async Task<LeaderLock?> TryTakeAsync(SqlDialect dialect, string name, CancellationToken ct)
    {
        if (dialect.InProcess) return new LeaderLock(null);
        var c = await dialect.OpenAsync(ct);
        try
        {
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT pg_try_advisory_lock(@k)";
            Migrations.AddParam(cmd, "@k", BitConverter.ToInt64(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(name))));
            if (await cmd.ExecuteScalarAsync(ct) is true) return new LeaderLock(c);
        }
        catch
        {
            // A database fault or a stop while asking: the connection goes back, it must not leak from the pool.
            await c.DisposeAsync();
            throw;
        }
        await c.DisposeAsync();
        return null;
    }

    public async ValueTask DisposeAsync()
    {
        if (_connection is null) return;
        try
        {
            await using var cmd = _connection.CreateCommand();
            cmd.CommandText = "SELECT pg_advisory_unlock_all()";
            await cmd.ExecuteScalarAsync();
        }
        finally
        {
            await _connection.DisposeAsync();
        }
    }
}
