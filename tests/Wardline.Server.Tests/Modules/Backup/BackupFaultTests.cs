using Wardline.Backup;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Backup.Infrastructure;
using static Wardline.Server.Tests.Modules.Backup.Infrastructure.BackupTestKit;

namespace Wardline.Server.Tests.Modules.Backup;

/// <summary>
/// A target that goes away half-way through a run, and a target whose disk is full: the run is recorded as failed
/// with the reason, no manifest makes it look like a backup, and the next run on a working target completes,
/// reusing the ledger segments the failed run had already stored.
/// </summary>
[Collection(BackupStaticsCollection.Name)]
public abstract class BackupFaultConformance(StoreKind kind) : StoreAndTarget(kind)
{

    [Fact]
    public async Task Target_failing_half_way_leaves_a_failed_run_and_no_manifest_and_the_next_run_reuses_its_segments()
    {
        BackupWriter.EntriesPerSegment = 16;
        try
        {
            await using var server = await StartAsync(Store);
            var seeded = await SeedAsync(server.Client, observations: 40);
            // The ledger segments and the resources segment are stored by two readers at once, so which put fails
            // is not fixed: of the three that succeed, at least two are ledger segments (there is one resources segment).
            var failing = new FailingPutStore(Target.Store, failFrom: 4);

            var failed = await BackupAsync(server, failing, options: RowSegments);

            Assert.Equal("failed", failed.Status);
            Assert.Null(failed.Manifest);
            Assert.Contains("unreachable", failed.Error, StringComparison.Ordinal);
            Assert.Empty(Target.Manifests());
            Assert.Equal(1, await CountAsync(Store, $"SELECT COUNT(*) FROM backup_runs WHERE id = '{failed.RunId}' AND status = 'failed' AND manifest IS NULL AND error LIKE '%unreachable%'"));
            var kept = await CountAsync(Store, $"SELECT COUNT(*) FROM backup_segments WHERE run_id = '{failed.RunId}' AND Kind = 'ledger'");
            Assert.InRange(kept, 2, 3);

            var next = await BackupAsync(server, Target.Store, options: RowSegments);

            Assert.True(next.Status == "completed", next.Error);
            Assert.Equal(kept, next.Reused);
            var manifest = next.Manifest!;
            Assert.Equal(kept, manifest.Objects.Count(o => o.Name.StartsWith($"segments/{failed.RunId}/ledger-", StringComparison.Ordinal)));
            Assert.True(manifest.Objects.Count(o => o.Kind == "ledger") >= 3, "expected several ledger segments");
            Assert.Single(Target.Manifests());
            // The failed run's segments are the full backup's: the chain has no incremental bytes yet.
            Assert.Equal((manifest.Objects.Sum(o => o.Bytes), 0L), BackupCatalog.ChainBytes(manifest));

            // The backup made of both runs' segments restores and proves.
            await using var restored = await TestStore.CreateAsync(Kind);
            await RestoreIntoAsync(Target.Store, manifest, restored, Store);
            var verdict = await VerifyAsync(restored, manifest, WitnessPath(Store));
            Assert.True(verdict.Proven, string.Join("\n", verdict.Report.Problems));
            Assert.Equal(1, await CountAsync(restored, $"SELECT COUNT(*) FROM resources WHERE res_type = 'Observation' AND res_id = '{seeded.Observations[0]}'"));
            ReleasePools();
        }
        finally
        {
            BackupWriter.EntriesPerSegment = 8192;
        }
    }

    [Fact]
    public async Task Backup_to_a_full_disk_fails_cleanly_with_no_manifest()
    {
        using var tiny = new TinyFilesystem(kibibytes: 16);
        await using var full = BackupTargets.Open(new Uri(tiny.Path).AbsoluteUri, new BackupTargetSettings());
        await using var server = await StartAsync(Store);
        await SeedAsync(server.Client, observations: 20);

        var run = await BackupAsync(server, full);

        Assert.Equal("failed", run.Status);
        Assert.Null(run.Manifest);
        Assert.Contains("no space left", run.Error, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(tiny.Path, "manifests")) && Directory.EnumerateFiles(Path.Combine(tiny.Path, "manifests")).Any());
        Assert.Equal(1, await CountAsync(Store, $"SELECT COUNT(*) FROM backup_runs WHERE id = '{run.RunId}' AND status = 'failed' AND manifest IS NULL AND error LIKE '%no space left%'"));
        // Once space is found (another target), the next run completes.
        var next = await BackupAsync(server, Target.Store);
        Assert.True(next.Status == "completed", next.Error);
    }
}

public sealed class SqliteBackupFaultTests() : BackupFaultConformance(StoreKind.Sqlite);

public sealed class PostgresBackupFaultTests() : BackupFaultConformance(StoreKind.Postgres);
