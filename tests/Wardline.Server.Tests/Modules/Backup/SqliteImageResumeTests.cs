using Wardline.Backup.Format;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Backup.Infrastructure;
using Xunit.Abstractions;
using static Wardline.Server.Tests.Modules.Backup.Infrastructure.BackupTestKit;

namespace Wardline.Server.Tests.Modules.Backup;

/// <summary>
/// Issue 5, bad input "a target that fails half-way (... next run resumes)", for the SQLite image a full backup ships:
/// the pieces a failed run stored are recorded with their keyed fingerprints, and the next full backup reuses every one
/// whose bytes are unchanged instead of uploading it again; the backup made of both runs' pieces restores and proves.
/// </summary>
[Collection(BackupStaticsCollection.Name)]
public sealed class SqliteImageResumeTests(ITestOutputHelper output) : StoreAndTarget(StoreKind.Sqlite)
{
    [Fact]
    public async Task A_full_backup_failing_after_its_image_was_stored_is_resumed_uploading_only_the_pieces_that_changed()
    {
        SqliteImage.ChunkBytes = 64 * 1024;
        try
        {
            await using var server = await StartAsync(Store);
            var seeded = await SeedAsync(server.Client, observations: 60);
            // Every piece goes up; the manifest, last, does not: the commonest half-way failure of a long upload.
            var failing = new FailingPutStore(Target.Store, refuse: name => name.StartsWith("manifests/", StringComparison.Ordinal));

            var failed = await BackupAsync(server, failing);

            Assert.Equal("failed", failed.Status);
            Assert.Empty(Target.Manifests());
            var recorded = await CountAsync(Store, $"SELECT COUNT(*) FROM backup_segments WHERE run_id = '{failed.RunId}' AND kind = 'image'");
            Assert.Equal(failing.Stored, recorded);
            Assert.True(recorded >= 8, $"{recorded} pieces of 64 KiB");

            var next = await BackupAsync(server, Target.Store);

            Assert.True(next.Status == "completed", next.Error);
            var manifest = next.Manifest!;
            var pieces = manifest.Objects.Where(o => o.Kind == ManifestObject.ImageKind).ToList();
            var reused = pieces.Where(o => o.Name.StartsWith($"segments/{failed.RunId}/", StringComparison.Ordinal)).ToList();
            output.WriteLine($"{pieces.Count} pieces: {reused.Count} reused from the failed run, {next.Stored} stored anew; the failed run stored {recorded}");
            Assert.Equal(reused.Count, next.Reused);
            Assert.Equal(pieces.Count - reused.Count, next.Stored);
            // The writes between the runs (the run log, the ledger's entry for the failure) touch a few pages; the rest is reused.
            Assert.True(reused.Count * 2 > pieces.Count, $"only {reused.Count} of {pieces.Count} pieces reused");
            Assert.All(pieces, o => Assert.Equal(64, o.Fingerprint.Length));
            // Reused pieces count as the full backup's: the chain has no incremental bytes.
            Assert.Equal((manifest.Objects.Sum(o => o.Bytes), 0L), BackupCatalog.ChainBytes(manifest));

            await using var restored = await TestStore.CreateAsync(StoreKind.Sqlite);
            await RestoreIntoAsync(Target.Store, manifest, restored, Store);
            var verdict = await VerifyAsync(restored, manifest, WitnessPath(Store));
            Assert.True(verdict.Proven, string.Join("\n", verdict.Report.Problems));
            Assert.Equal(1, await CountAsync(restored, $"SELECT COUNT(*) FROM resources WHERE res_type = 'Observation' AND res_id = '{seeded.Observations[^1]}'"));
        }
        finally
        {
            SqliteImage.ChunkBytes = 64 << 20;
        }
    }

    [Fact]
    public async Task A_piece_whose_object_is_gone_or_cut_short_on_the_target_is_uploaded_again()
    {
        SqliteImage.ChunkBytes = 64 * 1024;
        try
        {
            await using var server = await StartAsync(Store);
            await SeedAsync(server.Client, observations: 30);
            var failing = new FailingPutStore(Target.Store, refuse: name => name.StartsWith("manifests/", StringComparison.Ordinal));
            var failed = await BackupAsync(server, failing);
            Assert.Equal("failed", failed.Status);
            var names = Directory.GetFiles(Path.Combine(Target.Folder, "segments", failed.RunId)).Order(StringComparer.Ordinal).ToList();
            File.Delete(names[0]);
            await File.WriteAllBytesAsync(names[1], (await File.ReadAllBytesAsync(names[1]))[..100]);

            var next = await BackupAsync(server, Target.Store);

            Assert.True(next.Status == "completed", next.Error);
            var reusedNames = next.Manifest!.Objects.Select(o => o.Name).Where(n => n.StartsWith($"segments/{failed.RunId}/", StringComparison.Ordinal)).ToList();
            Assert.DoesNotContain($"segments/{failed.RunId}/{Path.GetFileName(names[0])}", reusedNames);
            Assert.DoesNotContain($"segments/{failed.RunId}/{Path.GetFileName(names[1])}", reusedNames);
            await using var restored = await TestStore.CreateAsync(StoreKind.Sqlite);
            await RestoreIntoAsync(Target.Store, next.Manifest!, restored, Store);
            Assert.True((await VerifyAsync(restored, next.Manifest!, WitnessPath(Store))).Proven);
        }
        finally
        {
            SqliteImage.ChunkBytes = 64 << 20;
        }
    }
}
