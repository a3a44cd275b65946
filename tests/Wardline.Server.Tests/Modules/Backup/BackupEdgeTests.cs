using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging.Abstractions;
using Wardline.Crypto;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Backup.Infrastructure;
using static Wardline.Server.Tests.Modules.Backup.Infrastructure.BackupTestKit;

namespace Wardline.Server.Tests.Modules.Backup;

/// <summary>
/// Edges where the last line of defence must still hold: an object planted on the target, retention running
/// while a backup is in progress after a clock ran ahead, and a restore that skipped part of the resources' state.
/// </summary>
public abstract class BackupEdgeConformance(StoreKind kind) : StoreAndTarget(kind)
{

    [Fact]
    public async Task Restore_is_not_blocked_by_a_planted_manifest_beyond_the_newest_backup()
    {
        BackupRunResult run;
        await using (var server = await StartAsync(Store))
        {
            await SeedAsync(server.Client);
            run = await BackupAsync(server, Target.Store);
        }
        Assert.True(run.Status == "completed", run.Error);
        // Someone with write access to the target (but, under an immutability policy, no right to delete) plants a "newer" manifest.
        var planted = Wardline.Backup.Format.Manifest.NameFor(run.Manifest!.LedgerSize + 1000, "20991231-000000000-deadbeef");
        await Target.Store.PutAsync(planted, "{\"format\":1}\nhmac-sha256 00\n"u8.ToArray(), null, CancellationToken.None);
        var authenticator = Authenticator(Keyring.Load(KeyringPath(Store), null));

        var passed = new List<string>();
        var newest = await BackupRestorer.ChooseAsync(Target.Store, authenticator, null, null, CancellationToken.None, passed.Add);
        var chosen = await BackupRestorer.ChooseAsync(Target.Store, authenticator, null, run.Manifest.LedgerSize, CancellationToken.None);

        // The planted one is named and passed over; beyond --tree-size it is not even read.
        Assert.Equal(run.Manifest.Name, newest.Name);
        Assert.Contains(planted, Assert.Single(passed), StringComparison.Ordinal);
        Assert.Equal(run.Manifest.Name, chosen.Name);
    }

    [Fact]
    public async Task Prune_during_a_run_never_removes_its_segments_even_after_a_backup_from_a_clock_ahead()
    {
        BackupRunResult ahead, during;
        PruneReport? pruned = null;
        var keyring = (Keyring?)null;
        await using (var server = await StartAsync(Store))
        {
            var seeded = await SeedAsync(server.Client);
            keyring = KeyringOf(server);
            var skewed = new BackupWriter(server.Service<SqlDialect>(), server.Service<RecordKeys>(), new SkewedClock(TimeSpan.FromHours(3)), NullLogger<BackupWriter>.Instance);
            ahead = await skewed.RunAsync(Target.Store, new BackupOptions(), false, "test", null, CancellationToken.None);
            await WriteMoreAsync(server.Client, seeded, "2024-04-01");
            var k = keyring;
            var pruning = new BeforeManifestStore(Target.Store, async inner =>
                pruned = await BackupRetention.PruneAsync(inner, k, new BackupRetentionOptions { Hourly = 1, Daily = 0, Weekly = 0, Monthly = 0 }, CancellationToken.None));
            during = await BackupAsync(server, pruning);
        }
        Assert.True(ahead.Status == "completed", ahead.Error);
        Assert.True(during.Status == "completed", during.Error);
        Assert.NotNull(pruned);

        var check = await BackupChecker.CheckAsync(Target.Store, keyring, null, CancellationToken.None);

        Assert.Empty(check.Problems);
        Assert.Equal(0, pruned.ObjectsRemoved);
    }

    [Fact]
    public async Task Continuous_backups_with_an_unreadable_older_manifest_on_the_target_do_not_stop_the_server()
    {
        await using (var server = await StartAsync(Store))
        {
            await SeedAsync(server.Client);
            var run = await BackupAsync(server, Target.Store);
            Assert.True(run.Status == "completed", run.Error);
        }
        // An object under manifests/ that sorts before the real backups: not the newest, so runs still chain onto the real one.
        await Target.Store.PutAsync(Wardline.Backup.Format.Manifest.NameFor(0, "20200101-000000000-deadbeef"), "garbage"u8.ToArray(), null, CancellationToken.None);
        var options = ServerOptions(Store);
        options.Backup.Target = Target.Uri;
        options.Backup.IntervalSeconds = 1;
        options.Backup.DrillIntervalHours = 0;

        await using var continuous = await TestServer.StartAsync(options);
        await continuous.Client.CreateAsync("Patient", FhirTest.Patient("Continuous"));
        var lifetime = continuous.Service<IHostApplicationLifetime>();
        var deadline = DateTime.UtcNow.AddSeconds(20);
        while (DateTime.UtcNow < deadline && !lifetime.ApplicationStopping.IsCancellationRequested
            && await CountAsync(Store, "SELECT COUNT(*) FROM backup_runs WHERE trigger_by = 'schedule' AND status <> 'running'") < 2)
            await Task.Delay(200);
        await Task.Delay(1000);

        Assert.False(lifetime.ApplicationStopping.IsCancellationRequested, "the server stopped while applying retention to the target");
    }

    [Fact]
    public async Task Restore_that_skips_a_damaged_resources_segment_is_not_proven()
    {
        BackupRunResult run;
        await using (var server = await StartAsync(Store))
        {
            await SeedAsync(server.Client);
            run = await BackupAsync(server, Target.Store, options: RowSegments);
        }
        Assert.True(run.Status == "completed", run.Error);
        var damaged = run.Manifest!.Objects.First(o => o.Kind == "resources");
        await using (var f = new FileStream(Target.PathOf(damaged.Name), FileMode.Open, FileAccess.Write))
            f.SetLength(f.Length / 2);
        await using var restored = await TestStore.CreateAsync(Kind);

        var report = await RestoreIntoAsync(Target.Store, run.Manifest, restored, Store, skipDamaged: true);
        var verdict = await VerifyAsync(restored, run.Manifest, WitnessPath(Store));

        Assert.Contains("the current state", Assert.Single(report.Damaged), StringComparison.Ordinal);
        Assert.Equal(0, await CountAsync(restored, "SELECT COUNT(*) FROM resources"));
        Assert.False(verdict.Proven, "a restore lacking every resource's current state (index, search rows, data keys) was proven");
        ReleasePools();
    }
}

public sealed class SqliteBackupEdgeTests() : BackupEdgeConformance(StoreKind.Sqlite);

public sealed class PostgresBackupEdgeTests() : BackupEdgeConformance(StoreKind.Postgres);
