using Wardline.Crypto;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Backup.Infrastructure;
using Xunit.Abstractions;
using static Wardline.Server.Tests.Modules.Backup.Infrastructure.BackupTestKit;

namespace Wardline.Server.Tests.Modules.Backup;

/// <summary>
/// Retention and a backup run on one target at once (<see cref="BackupLease"/>): the server's backup and a
/// <c>wardline backup prune</c> run elsewhere. A running backup may be reusing what a failed run stored, which no
/// manifest lists until the run ends: the prune must not remove it, or the backup's manifest would list objects that
/// are gone. The run is a SQLite full backup resuming a failed one's image pieces, each test on a fresh store and target.
/// </summary>
[Collection(BackupStaticsCollection.Name)]
public sealed class BackupLeaseTests(ITestOutputHelper output) : StoreAndTarget(StoreKind.Sqlite)
{
    private static readonly BackupRetentionOptions KeepNewest = new() { Hourly = 1, Daily = 0, Weekly = 0, Monthly = 0 };

    [Fact]
    public async Task A_prune_while_a_backup_reuses_a_failed_runs_pieces_removes_none_of_them_and_the_backup_proves()
    {
        await WithSmallPiecesAsync(async () =>
        {
            await using var server = await StartAsync(Store);
            var seeded = await SeedAsync(server.Client, observations: 30);
            var first = await BackupAsync(server, Target.Store);
            Assert.True(first.Status == "completed", first.Error);
            await WriteMoreAsync(server.Client, seeded, "2024-04-01");
            var failed = await FailAtManifestAsync(server, full: true);
            var failedObjects = Files($"segments/{failed.RunId}");
            // Stored two days ago by the target's clock: past retention's grace for segments no backup lists.
            Age($"segments/{failed.RunId}", TimeSpan.FromDays(2));
            var keyring = Keyring.Load(KeyringPath(Store), null);
            PruneReport? during = null;
            // The prune runs when the run has decided what it reuses and stored everything else: just before its manifest.
            var target = new FailingPutStore(Target.Store, beforePut: async name =>
            {
                if (name.StartsWith("manifests/", StringComparison.Ordinal))
                    during = await BackupRetention.PruneAsync(Target.Store, keyring, KeepNewest, CancellationToken.None);
            });

            var next = await BackupAsync(server, target, full: true);

            Assert.True(next.Status == "completed", next.Error);
            var reused = next.Manifest!.Objects.Where(o => o.Name.StartsWith($"segments/{failed.RunId}/", StringComparison.Ordinal)).ToList();
            output.WriteLine($"the failed run stored {failedObjects.Count} objects; the next run reused {reused.Count} and stored {next.Stored}");
            Assert.NotEmpty(reused);
            Assert.Equal(reused.Count, next.Reused);
            Assert.All(reused, o => Assert.True(File.Exists(Target.PathOf(o.Name)), $"{o.Name} was removed while the backup listing it ran"));
            Assert.NotNull(during);
            Assert.Equal(0, during.ObjectsRemoved);
            Assert.StartsWith("leases/backup-", during.RunningBackup);
            await using (var restored = await TestStore.CreateAsync(StoreKind.Sqlite))
            {
                await RestoreIntoAsync(Target.Store, next.Manifest, restored, Store);
                var verdict = await VerifyAsync(restored, next.Manifest, WitnessPath(Store));
                Assert.True(verdict.Proven, string.Join("\n", verdict.Report.Problems));
            }

            // The run's lease went with it, and the next prune removes what neither backup lists: the failed run's other objects.
            Assert.Empty(Files("leases"));
            var after = await BackupRetention.PruneAsync(Target.Store, keyring, KeepNewest, CancellationToken.None);
            Assert.Null(after.RunningBackup);
            Assert.Equal(failedObjects.Count - reused.Count, after.ObjectsRemoved);
            Assert.Equal(reused.Select(o => Target.PathOf(o.Name)).Order(StringComparer.Ordinal), Files($"segments/{failed.RunId}"));
            Assert.Empty(Files("leases"));
        });
    }

    [Fact]
    public async Task A_backup_that_finds_a_prune_running_reuses_nothing_and_a_lease_left_by_a_dead_process_counts_for_nothing_and_is_removed()
    {
        await WithSmallPiecesAsync(async () =>
        {
            await using var server = await StartAsync(Store);
            await SeedAsync(server.Client, observations: 30);
            var failed = await FailAtManifestAsync(server);
            const string pruneLease = "leases/prune-20261130-101010101-0badcafe.json";
            await Target.Store.PutAsync(pruneLease, "{}"u8.ToArray(), null, CancellationToken.None);

            var next = await BackupAsync(server, Target.Store);

            Assert.True(next.Status == "completed", next.Error);
            Assert.Equal(0, next.Reused);
            Assert.DoesNotContain(next.Manifest!.Objects, o => o.Name.StartsWith($"segments/{failed.RunId}/", StringComparison.Ordinal));
            await using (var restored = await TestStore.CreateAsync(StoreKind.Sqlite))
            {
                await RestoreIntoAsync(Target.Store, next.Manifest, restored, Store);
                var verdict = await VerifyAsync(restored, next.Manifest, WitnessPath(Store));
                Assert.True(verdict.Proven, string.Join("\n", verdict.Report.Problems));
            }

            // The same lease, written eight days before by the target's clock: its prune died long ago. The next full
            // backup after a failed one reuses the failed run's pieces again, and a prune removes the dead lease.
            File.SetLastWriteTimeUtc(Target.PathOf(pruneLease), DateTime.UtcNow.AddDays(-8));
            var failedAgain = await FailAtManifestAsync(server, full: true);
            var resumed = await BackupAsync(server, Target.Store, full: true);
            Assert.True(resumed.Status == "completed", resumed.Error);
            Assert.True(resumed.Reused > 0, "nothing reused");
            Assert.Contains(resumed.Manifest!.Objects, o => o.Name.StartsWith($"segments/{failedAgain.RunId}/", StringComparison.Ordinal));
            var keyring = Keyring.Load(KeyringPath(Store), null);
            var pruned = await BackupRetention.PruneAsync(Target.Store, keyring, KeepNewest, CancellationToken.None);
            Assert.Null(pruned.RunningBackup);
            Assert.Empty(Files("leases"));
        });
    }

    [Fact]
    public async Task On_a_target_that_will_not_let_leases_be_deleted_they_are_marked_ended_and_stop_nothing()
    {
        await using var server = await StartAsync(Store);
        var seeded = await SeedAsync(server.Client);
        var locking = new LockingStore(Target.Store, BackupLease.Prefix);
        var first = await BackupAsync(server, locking);
        await WriteMoreAsync(server.Client, seeded, "2024-04-01");
        var second = await BackupAsync(server, locking, full: true);
        Assert.True(first.Status == "completed" && second.Status == "completed", first.Error ?? second.Error);
        var keyring = Keyring.Load(KeyringPath(Store), null);

        var pruned = await BackupRetention.PruneAsync(locking, keyring, KeepNewest, CancellationToken.None);

        // Both backups' leases are still there, each with its end marked; neither stops the prune, whose own lease is ended too.
        var leases = Files("leases").Select(Path.GetFileName).ToList();
        Assert.Equal(6, leases.Count);
        Assert.Equal(3, leases.Count(n => n!.EndsWith(".json.ended", StringComparison.Ordinal)));
        Assert.Null(pruned.RunningBackup);
        Assert.Equal(1, pruned.ManifestsRemoved);

        // Once the target lets them go (their retention over), the next prune removes the ended leases and then their markers.
        var later = await BackupRetention.PruneAsync(Target.Store, keyring, KeepNewest, CancellationToken.None);
        Assert.Null(later.RunningBackup);
        Assert.Empty(Files("leases"));
    }

    private async Task<BackupRunResult> FailAtManifestAsync(TestServer server, bool full = false)
    {
        // Every piece goes up; the manifest, last, does not.
        var failed = await BackupAsync(server, new FailingPutStore(Target.Store, refuse: name => name.StartsWith("manifests/", StringComparison.Ordinal)), full);
        Assert.Equal("failed", failed.Status);
        return failed;
    }

    private List<string> Files(string folder) =>
        Directory.Exists(Target.PathOf(folder)) ? [.. Directory.GetFiles(Target.PathOf(folder)).Order(StringComparer.Ordinal)] : [];

    private void Age(string folder, TimeSpan by)
    {
        foreach (var file in Files(folder)) File.SetLastWriteTimeUtc(file, DateTime.UtcNow - by);
    }

    private static async Task WithSmallPiecesAsync(Func<Task> body)
    {
        SqliteImage.ChunkBytes = 64 * 1024;
        try
        {
            await body();
        }
        finally
        {
            SqliteImage.ChunkBytes = 64 << 20;
        }
    }
}
