using Wardline.Server.Modules.Backup;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Backup.Infrastructure;
using static Wardline.Server.Tests.Modules.Backup.Infrastructure.BackupTestKit;

namespace Wardline.Server.Tests.Modules.Backup;

/// <summary>
/// Backups taken while clinicians keep writing and tree heads keep being signed. The ledger segments are read on a
/// connection of their own, whose snapshot is newer than the run's: each backup must still hold exactly the run's
/// snapshot (no entry, version or head past its size) and the chain must restore and prove.
/// </summary>
[Collection(BackupStaticsCollection.Name)]
public abstract class BackupUnderWritesConformance(StoreKind kind) : StoreAndTarget(kind)
{
    [Fact]
    public Task Backups_taken_under_writes_hold_exactly_their_snapshot_and_the_chain_proves() => UnderWritesAsync(RowSegments);

    /// <summary>A full backup (with <paramref name="fullOptions"/>) and three incrementals while writes go on; the restored chain is proven.</summary>
    protected async Task UnderWritesAsync(BackupOptions fullOptions)
    {
        BackupWriter.EntriesPerSegment = 16;
        BackupWriter.ResourcesPerSegment = 4;
        try
        {
            var runs = new List<BackupRunResult>();
            var written = 0;
            await using (var server = await StartAsync(Store))
            {
                var seeded = await SeedAsync(server.Client, observations: 20);
                using var stop = new CancellationTokenSource();
                var heads = server.Service<TreeHeads>();
                var writer = Task.Run(async () =>
                {
                    for (var i = 0; !stop.IsCancellationRequested; i++)
                    {
                        await server.Client.CreateAsync("Observation", FhirTest.Observation(i % 2 == 0 ? seeded.Patient : seeded.OtherPatient, value: 70 + (i % 50), date: "2024-06-01T10:00:00Z"));
                        if (i % 5 == 0) await heads.PublishAsync(force: true, CancellationToken.None);
                        Interlocked.Increment(ref written);
                    }
                });
                while (Volatile.Read(ref written) < 5) await Task.Delay(10);
                runs.Add(await BackupAsync(server, Target.Store, full: true, options: fullOptions));
                for (var i = 0; i < 3; i++)
                {
                    var before = Volatile.Read(ref written);
                    while (Volatile.Read(ref written) < before + 3) await Task.Delay(10);
                    runs.Add(await BackupAsync(server, Target.Store, options: RowSegments));
                }
                // Writes go on after the last backup: the second one to finish from here started after the backup returned,
                // so the store ends with more than the backup holds. (Stopping at once could leave nothing after it, when the
                // writer was inside a head's publication for the whole backup, as it seems to have been in stop 19's CI run.)
                var afterLast = Volatile.Read(ref written);
                while (Volatile.Read(ref written) < afterLast + 2) await Task.Delay(10);
                await stop.CancelAsync();
                await writer;
            }
            Assert.All(runs, r => Assert.True(r.Status == "completed", r.Error));
            Assert.Equal(["full", "incremental", "incremental", "incremental"], runs.Select(r => r.Manifest!.Kind));
            var newest = runs[^1].Manifest!;
            var (storeSize, _) = await LedgerStateAsync(Store);
            Assert.True(storeSize > newest.LedgerSize, $"the writes went on after the last backup ({storeSize} entries in the store, {newest.LedgerSize} in the backup)");

            await using var restored = await TestStore.CreateAsync(Kind);
            await RestoreIntoAsync(Target.Store, newest, restored, Store);
            var verdict = await VerifyAsync(restored, newest, WitnessPath(Store));

            Assert.True(verdict.Proven, string.Join("\n", verdict.Report.Problems));
            Assert.Equal(newest.LedgerSize, await CountAsync(restored, "SELECT COUNT(*) FROM ledger_entries"));
            Assert.Equal(0, await CountAsync(restored, $"SELECT COUNT(*) FROM ledger_heads WHERE size > {newest.LedgerSize}"));
            Assert.True(await CountAsync(restored, "SELECT COUNT(*) FROM ledger_heads") > 0, "no signed head was backed up");
            Assert.Equal(await CountAsync(restored, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'write'"), await CountAsync(restored, "SELECT COUNT(*) FROM resource_versions"));
            ReleasePools();
        }
        finally
        {
            BackupWriter.EntriesPerSegment = 8192;
            BackupWriter.ResourcesPerSegment = 8192;
        }
    }
}

public sealed class SqliteBackupUnderWritesTests() : BackupUnderWritesConformance(StoreKind.Sqlite)
{
    /// <summary>The same with the full backup as a database image (the default on SQLite), copied while the writes go on.</summary>
    [Fact]
    public async Task An_image_full_backup_taken_under_writes_and_its_incrementals_prove()
    {
        await UnderWritesAsync(new BackupOptions());
    }
}

public sealed class PostgresBackupUnderWritesTests() : BackupUnderWritesConformance(StoreKind.Postgres);
