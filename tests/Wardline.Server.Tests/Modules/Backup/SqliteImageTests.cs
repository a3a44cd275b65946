using Wardline.Backup.Format;
using Wardline.Crypto;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Backup.Infrastructure;
using Wardline.Server.Tests.Modules.Ledger.Infrastructure;
using static Wardline.Server.Tests.Modules.Backup.Infrastructure.BackupTestKit;

namespace Wardline.Server.Tests.Modules.Backup;

/// <summary>
/// A SQLite store's full backup is its database file, copied through SQLite's online backup and shipped in sealed
/// pieces; incremental backups on top of it are row segments. The chain restores into SQLite (the pieces become the
/// file) and into PostgreSQL (the image's rows are copied in), proven both ways; a damaged piece stops the restore
/// even when told to skip, and a manifest that misplaces pieces is refused.
/// </summary>
[Collection(BackupStaticsCollection.Name)]
public sealed class SqliteImageTests() : StoreAndTarget(StoreKind.Sqlite)
{
    private Seeded _seeded = null!;
    private Manifest _full = null!;
    private Manifest _incremental = null!;
    private List<string> _answers = null!;

    protected override async Task ArrangeAsync()
    {
        SqliteImage.ChunkBytes = 64 * 1024;
        try
        {
            await using var server = await StartAsync(Store);
            _seeded = await SeedAsync(server.Client, observations: 30);
            await server.Service<Wardline.Server.Modules.Ledger.TreeHeads>().PublishAsync(force: true, CancellationToken.None);
            var full = await BackupAsync(server, Target.Store);
            Assert.True(full.Status == "completed", full.Error);
            _full = full.Manifest!;
            var idle = await BackupAsync(server, Target.Store);
            Assert.Equal("unchanged", idle.Status);
            await WriteMoreAsync(server.Client, _seeded, "2024-09-09");
            await server.Service<Wardline.Server.Modules.Ledger.TreeHeads>().PublishAsync(force: true, CancellationToken.None);
            var incremental = await BackupAsync(server, Target.Store);
            Assert.True(incremental.Status == "completed", incremental.Error);
            _incremental = incremental.Manifest!;
            _answers = await AskAllAsync(server, _seeded);
        }
        finally
        {
            SqliteImage.ChunkBytes = 64 << 20;
        }
    }

    [Fact]
    public void Full_backup_is_the_database_file_in_pieces_and_the_incremental_adds_row_segments()
    {
        Assert.Equal(2, _full.Format);
        Assert.All(_full.Objects, o => Assert.Equal(ManifestObject.ImageKind, o.Kind));
        Assert.True(_full.Objects.Count >= 3, $"{_full.Objects.Count} pieces of 64 KiB");
        long at = 0;
        foreach (var piece in _full.Objects)
        {
            Assert.Equal(at, piece.From);
            Assert.True(piece.To - piece.From is > 0 and <= 64 * 1024, piece.Name);
            at = piece.To!.Value;
        }
        Assert.Equal(0, at % 4096);
        // Every whole table is fingerprinted from the image, so the idle run above found nothing to ship.
        Assert.Equal(BackupTables.Whole.Order(StringComparer.Ordinal), _full.ImageTables!.Keys.Order(StringComparer.Ordinal));
        // The copy the image was read from is gone.
        Assert.Empty(Directory.GetFiles(Store.Options.DataDirectory!, "*.image-*"));

        Assert.Equal(2, _incremental.Format);
        Assert.Equal(_full.Objects, _incremental.Objects.Take(_full.Objects.Count));
        Assert.Contains(_incremental.Objects, o => o.Kind == "ledger");
        Assert.Contains(_incremental.Objects, o => o.Kind == "resources");
        Assert.DoesNotContain(_incremental.Objects.Skip(_full.Objects.Count), o => o.Kind == ManifestObject.ImageKind);
        foreach (var table in BackupTables.Whole)
        {
            var shipped = _incremental.Objects.Any(o => o.Kind == "table" && o.Table == table);
            Assert.True(shipped != (_incremental.ImageTables?.ContainsKey(table) ?? false), $"{table} must be either held by the image or shipped, once");
        }
    }

    [Theory]
    [InlineData(StoreKind.Sqlite)]
    [InlineData(StoreKind.Postgres)]
    public async Task Chain_restores_proven_and_answers_as_the_original(StoreKind destinationKind)
    {
        await using var destination = await TestStore.CreateAsync(destinationKind);

        var report = await RestoreIntoAsync(Target.Store, _incremental, destination, Store);

        Assert.Empty(report.Damaged);
        Assert.Equal((_incremental.LedgerSize, _incremental.LedgerRoot), await LedgerStateAsync(destination));
        var verdict = await VerifyAsync(destination, _incremental, WitnessPath(Store));
        Assert.True(verdict.Proven, string.Join("\n", verdict.Report.Problems));
        // The source's run log was not restored with its file.
        Assert.Equal(0, await CountAsync(destination, "SELECT COUNT(*) FROM backup_runs"));
        if (destinationKind == StoreKind.Sqlite)
        {
            Assert.Equal("wal", await LedgerTestKit.ScalarAsync(destination.Options, "PRAGMA journal_mode"));
            Assert.Equal("ok", await LedgerTestKit.ScalarAsync(destination.Options, "PRAGMA integrity_check"));
            if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("File modes are checked on Unix.");
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(Path.Combine(destination.Options.DataDirectory!, "wardline.db")));
        }
        ReleasePools();
        // (The source server published a newer head when it stopped, so the restored store is read-only here: it lacks
        // the entries made after the backup. That writes resume after a restore is the round-trip tests' concern.)
        await using (var restored = await StartAsync(destination))
        {
            Assert.Equal(_answers, await AskAllAsync(restored, _seeded));
        }
        ReleasePools();
        Assert.Empty(Directory.GetFiles(Path.GetTempPath(), $"wardline-restore-{_full.Id}-*"));
    }

    [Fact]
    public async Task Damaged_piece_stops_the_restore_even_when_told_to_skip_and_verify_names_it()
    {
        var damaged = _full.Objects[1];
        var path = Target.PathOf(damaged.Name);
        var bytes = await File.ReadAllBytesAsync(path);
        bytes[bytes.Length / 2] ^= 0x01;
        await File.WriteAllBytesAsync(path, bytes);
        var keyring = Keyring.Load(KeyringPath(Store), null);
        await using var destination = await TestStore.CreateAsync(StoreKind.Sqlite);

        var refused = await Assert.ThrowsAsync<BackupRefusedException>(() => RestoreIntoAsync(Target.Store, _incremental, destination, Store, skipDamaged: true));
        var check = await BackupChecker.CheckAsync(Target.Store, keyring, null, CancellationToken.None);

        Assert.Contains(damaged.Name, refused.Message, StringComparison.Ordinal);
        Assert.Contains("SHA-256", refused.Message, StringComparison.Ordinal);
        Assert.Contains("cannot be restored in part", refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("--skip-damaged", refused.Message, StringComparison.Ordinal);
        var problem = Assert.Single(check.Problems);
        Assert.Contains(damaged.Name, problem, StringComparison.Ordinal);
        Assert.Contains("database image", problem, StringComparison.Ordinal);
        ReleasePools();
    }

    [Fact]
    public async Task Manifest_that_lists_pieces_after_row_segments_or_as_format_1_is_refused()
    {
        var keyring = Keyring.Load(KeyringPath(Store), null);
        var authenticator = Authenticator(keyring);
        var pieces = _incremental.Objects.Where(o => o.Kind == ManifestObject.ImageKind);
        var misplaced = _incremental with { Objects = [.. _incremental.Objects.Where(o => o.Kind != ManifestObject.ImageKind), .. pieces] };
        await File.WriteAllBytesAsync(Target.PathOf(_incremental.Name), misplaced.Seal(authenticator));
        await using var destination = await TestStore.CreateAsync(StoreKind.Sqlite);

        var refused = await Assert.ThrowsAsync<BackupFormatException>(() => RestoreIntoAsync(Target.Store, misplaced, destination, Store));
        var formatOne = _full with { Format = 1 };
        var openFormatOne = Assert.Throws<BackupFormatException>(() => Manifest.Open(authenticator, _full.Name, formatOne.Seal(authenticator)));

        Assert.Contains("an image can only start a chain", refused.Message, StringComparison.Ordinal);
        Assert.Equal(0, await CountAsync(destination, "SELECT COUNT(*) FROM sqlite_master WHERE type = 'table'"));
        Assert.Contains("need format 2", openFormatOne.Message, StringComparison.Ordinal);
        ReleasePools();
    }
}
