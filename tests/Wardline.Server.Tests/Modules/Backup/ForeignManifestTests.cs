using Wardline.Backup.Format;
using Wardline.Crypto;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Backup.Infrastructure;
using static Wardline.Server.Tests.Modules.Backup.Infrastructure.BackupTestKit;

namespace Wardline.Server.Tests.Modules.Backup;

/// <summary>
/// Backups the keyring cannot vouch for are refused before any work: a manifest made by another store's keyring,
/// a backup encrypted under a key the keyring lacks, a manifest renamed on the target, and a destination that
/// already holds data.
/// </summary>
public abstract class ForeignManifestConformance(StoreKind kind) : StoreAndTarget(kind)
{
    private Manifest _manifest = null!;
    private Keyring _keyring = null!;

    protected override async Task ArrangeAsync()
    {
        await using var server = await StartAsync(Store);
        await SeedAsync(server.Client);
        var run = await BackupAsync(server, Target.Store);
        Assert.True(run.Status == "completed", run.Error);
        _manifest = run.Manifest!;
        _keyring = Keyring.Load(KeyringPath(Store), null);
    }

    [Fact]
    public async Task A_restore_checked_against_another_stores_witness_is_not_proven_and_says_what_differs()
    {
        await using var other = await TestStore.CreateAsync(Kind);
        await using (var server = await StartAsync(other))
        {
            await SeedAsync(server.Client, observations: 12);
            await server.Service<Wardline.Server.Modules.Ledger.TreeHeads>().PublishAsync(force: true, CancellationToken.None);
        }
        await using var restored = await TestStore.CreateAsync(Kind);
        await RestoreIntoAsync(Target.Store, _manifest, restored, Store);

        // Our backup, held to the heads another store signed: another key (its heads beyond our size are not held to our tree).
        var verdict = await VerifyAsync(restored, _manifest, WitnessPath(other));

        Assert.False(verdict.Proven);
        Assert.Contains(verdict.Report.Problems, p => p.Contains("the head-signing key in the database is not the key the witness pinned", StringComparison.Ordinal));
        // Against its own witness the same restore is proven.
        Assert.True((await VerifyAsync(restored, _manifest, WitnessPath(Store))).Proven);
        ReleasePools();
    }

    [Fact]
    public async Task Manifest_made_with_another_keyring_is_passed_over_and_named_and_blocks_neither_restore_nor_backup()
    {
        await using var other = await TestStore.CreateAsync(Kind);
        await using var theirTarget = new FolderTarget();
        await using (var server = await StartAsync(other))
        {
            // More records than ours, so the other store's backup is the newest once copied onto our target.
            await SeedAsync(server.Client, observations: 30);
            var theirs = await BackupAsync(server, theirTarget.Store);
            Assert.True(theirs.Status == "completed", theirs.Error);
            Assert.True(theirs.Manifest!.LedgerSize > _manifest.LedgerSize);
            File.Copy(theirTarget.PathOf(theirs.Manifest.Name), Target.PathOf(theirs.Manifest.Name));
        }

        // Anyone who can write to the target can put a manifest there: it is named and passed over, and ours is restored.
        var passed = new List<string>();
        var chosen = await BackupRestorer.ChooseAsync(Target.Store, Authenticator(_keyring), null, null, CancellationToken.None, passed.Add);

        Assert.Equal(_manifest.Name, chosen.Name);
        var reason = Assert.Single(passed);
        Assert.Contains("not signed by this keyring", reason, StringComparison.Ordinal);
        Assert.Contains("manifests/", reason, StringComparison.Ordinal);
        // Our own server chains its next backup onto its own newest manifest, not onto the foreign one.
        await using (var ours = await StartAsync(Store))
        {
            await SeedAsync(ours.Client, observations: 2);
            var run = await BackupAsync(ours, Target.Store);
            Assert.True(run.Status == "completed", run.Error);
            Assert.True(run.Manifest!.LedgerSize > _manifest.LedgerSize);
            Assert.Equal(run.Manifest.Name, (await BackupRestorer.ChooseAsync(Target.Store, Authenticator(_keyring), null, null, CancellationToken.None)).Name);
        }
        ReleasePools();
    }

    [Fact]
    public async Task Retention_removes_no_segment_while_a_manifest_it_cannot_read_may_list_it()
    {
        // Another installation's manifest (or one the target will not hand over) beside a segment no manifest of ours lists.
        var unreadable = Manifest.NameFor(_manifest.LedgerSize + 5, Manifest.NewId(DateTimeOffset.UtcNow));
        File.WriteAllText(Target.PathOf(unreadable), "{\"format\":1}\nhmac-sha256 00\n");
        const string theirs = "segments/20200101-000000000-0badf00d/ledger-00000000000000000000.seg";
        Directory.CreateDirectory(Path.GetDirectoryName(Target.PathOf(theirs))!);
        File.WriteAllBytes(Target.PathOf(theirs), new byte[64]);
        File.SetLastWriteTimeUtc(Target.PathOf(theirs), DateTime.UtcNow.AddDays(-3));
        var keepNewest = new BackupRetentionOptions { Hourly = 1, Daily = 0, Weekly = 0, Monthly = 0 };

        var held = await BackupRetention.PruneAsync(Target.Store, _keyring, keepNewest, CancellationToken.None);

        Assert.Equal(1, held.Unreadable);
        Assert.Equal(0, held.ObjectsRemoved);
        Assert.True(File.Exists(Target.PathOf(theirs)));
        // Once it is gone, the segment nobody lists is removed as before.
        File.Delete(Target.PathOf(unreadable));
        var pruned = await BackupRetention.PruneAsync(Target.Store, _keyring, keepNewest, CancellationToken.None);
        Assert.Equal(1, pruned.ObjectsRemoved);
        Assert.False(File.Exists(Target.PathOf(theirs)));
        Assert.True((await VerifyTargetAsync()).All(m => m.Ok));
    }

    private async Task<List<(string Name, bool Ok)>> VerifyTargetAsync()
    {
        var results = new List<(string, bool)>();
        foreach (var name in await BackupCatalog.ManifestNamesAsync(Target.Store, CancellationToken.None))
        {
            var m = await BackupCatalog.ReadAsync(Target.Store, Authenticator(_keyring), name, CancellationToken.None);
            var ok = true;
            foreach (var o in m.Objects) ok &= await Target.Store.StatAsync(o.Name, CancellationToken.None) is not null;
            results.Add((name, ok));
        }
        return results;
    }

    [Fact]
    public async Task Planted_objects_under_manifests_neither_block_nor_get_read_whole()
    {
        // A name Wardline never writes, one of the right form that does not authenticate, and one far larger than any manifest.
        File.WriteAllText(Target.PathOf("manifests/zz.json"), "not a manifest");
        var planted = Manifest.NameFor(_manifest.LedgerSize + 1_000_000, Manifest.NewId(DateTimeOffset.UtcNow));
        File.WriteAllText(Target.PathOf(planted), "{\"format\":1}\nhmac-sha256 00\n");
        var huge = Manifest.NameFor(_manifest.LedgerSize + 2_000_000, Manifest.NewId(DateTimeOffset.UtcNow));
        using (var big = File.Create(Target.PathOf(huge))) big.SetLength(BackupCatalog.MaxManifestBytes + 1);

        var passed = new List<string>();
        var chosen = await BackupRestorer.ChooseAsync(Target.Store, Authenticator(_keyring), null, null, CancellationToken.None, passed.Add);

        Assert.Equal(_manifest.Name, chosen.Name);
        Assert.Equal(2, passed.Count);
        Assert.Contains(passed, p => p.Contains(huge, StringComparison.Ordinal) && p.Contains("more than any manifest", StringComparison.Ordinal));
        Assert.Contains(passed, p => p.Contains(planted, StringComparison.Ordinal));
        Assert.DoesNotContain(passed, p => p.Contains("zz.json", StringComparison.Ordinal));
        await using (var ours = await StartAsync(Store))
        {
            var run = await BackupAsync(ours, Target.Store);
            Assert.True(run.Status == "completed", run.Error);
        }
        ReleasePools();
    }

    [Fact]
    public async Task Keyring_lacking_a_key_the_manifest_lists_is_refused_naming_the_key_id()
    {
        var folder = Directory.CreateTempSubdirectory("wardline-other-keyring-").FullName;
        try
        {
            var other = Keyring.LoadOrCreate(Path.Combine(folder, "keyring.json"), null);

            var refused = Assert.Throws<BackupRefusedException>(() => BackupRestorer.CheckKeys(_manifest, other));

            Assert.Contains($"'{_keyring.ActiveKekId}'", refused.Message, StringComparison.Ordinal);
            Assert.DoesNotContain(other.ActiveKekId, refused.Message, StringComparison.Ordinal);
            Assert.Contains("--keyring", refused.Message, StringComparison.Ordinal);
            // The right keyring passes.
            BackupRestorer.CheckKeys(_manifest, _keyring);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
        await Task.CompletedTask;
    }

    [Fact]
    public async Task Escrow_copy_made_before_a_key_rotation_is_refused_naming_the_new_key_and_the_current_keyring_restores()
    {
        var escrow = Path.Combine(Store.Folder, "escrow-before-rotation.json");
        File.Copy(KeyringPath(Store), escrow);
        var rotated = Keyring.Load(KeyringPath(Store), null).Rotate(null);
        BackupRunResult run;
        await using (var server = await StartAsync(Store))
        {
            await server.Client.CreateAsync("Patient", FhirTest.Patient("AfterRotation"));
            run = await BackupAsync(server, Target.Store);
        }
        Assert.True(run.Status == "completed", run.Error);
        Assert.Contains(rotated.ActiveKekId, run.Manifest!.Keks);
        Assert.Contains(_keyring.ActiveKekId, run.Manifest.Keks);

        var refused = Assert.Throws<BackupRefusedException>(() => BackupRestorer.CheckKeys(run.Manifest, Keyring.Load(escrow, null)));

        Assert.Contains($"'{rotated.ActiveKekId}'", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain($"'{_keyring.ActiveKekId}'", refused.Message, StringComparison.Ordinal);
        await using var restored = await TestStore.CreateAsync(Kind);
        await RestoreIntoAsync(Target.Store, run.Manifest, restored, Store);
        var verdict = await VerifyAsync(restored, run.Manifest, WitnessPath(Store));
        Assert.True(verdict.Proven, string.Join("\n", verdict.Report.Problems));
        ReleasePools();
    }

    [Fact]
    public async Task Restore_into_a_store_that_holds_data_is_refused_and_leaves_it_untouched()
    {
        var before = await LedgerStateAsync(Store);
        var resources = await CountAsync(Store, "SELECT COUNT(*) FROM resources");

        await using (var dialect = Dialect(Store))
        {
            var refused = await Assert.ThrowsAsync<BackupRefusedException>(() =>
                BackupRestorer.RestoreAsync(Target.Store, _manifest, dialect, new EnvelopeCipher(_keyring), skipDamaged: false, null, CancellationToken.None));
            Assert.Contains("is not empty", refused.Message, StringComparison.Ordinal);
        }

        Assert.Equal(before, await LedgerStateAsync(Store));
        Assert.Equal(resources, await CountAsync(Store, "SELECT COUNT(*) FROM resources"));
    }

    [Fact]
    public async Task Manifest_renamed_on_the_target_is_refused()
    {
        // Renamed to pass for a backup of a larger ledger: the name sorts it newest.
        var renamed = Manifest.NameFor(_manifest.LedgerSize + 1000, _manifest.Id);
        File.Move(Target.PathOf(_manifest.Name), Target.PathOf(renamed));

        var passed = new List<string>();
        var refused = await Assert.ThrowsAsync<BackupRefusedException>(() => BackupRestorer.ChooseAsync(Target.Store, Authenticator(_keyring), null, null, CancellationToken.None, passed.Add));

        // Passed over and named; with no other backup, the restore refuses, saying so.
        var reason = Assert.Single(passed);
        Assert.Contains(renamed, reason, StringComparison.Ordinal);
        Assert.Contains("renamed", reason, StringComparison.Ordinal);
        Assert.Contains("passed over", refused.Message, StringComparison.Ordinal);
    }
}

public sealed class SqliteForeignManifestTests() : ForeignManifestConformance(StoreKind.Sqlite);

public sealed class PostgresForeignManifestTests() : ForeignManifestConformance(StoreKind.Postgres);
