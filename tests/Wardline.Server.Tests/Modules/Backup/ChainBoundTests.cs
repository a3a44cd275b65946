using Wardline.Backup.Format;
using Wardline.Server.Modules.Backup;

namespace Wardline.Server.Tests.Modules.Backup;

/// <summary>
/// When a chain's incremental backups have stored more than <c>MaxIncrementalPercent</c> of its full backup's bytes (and
/// at least <c>MinIncrementalMiB</c>), the next backup starts a new chain: restoring rows costs far more per byte than
/// restoring the full backup, so this bounds restore time by what changed.
/// </summary>
public sealed class ChainBoundTests
{
    private const long MiB = 1L << 20;

    [Theory]
    [InlineData(2000, 80, 5, 64, false)]   // 4% of the full backup: under 5%
    [InlineData(2000, 100, 5, 64, false)]  // exactly 5%: not more than it
    [InlineData(2000, 101, 5, 64, true)]   // 5.05%, and over the 64 MiB floor
    [InlineData(100, 60, 5, 64, false)]    // 60%, but under the floor: a small store restores quickly anyway
    [InlineData(100, 64, 5, 64, true)]     // at the floor
    [InlineData(1000, 900, 0, 0, false)]   // 0% turns the rule off
    [InlineData(0, 1, 5, 0, true)]         // a chain without bytes of its own (never written so): any incremental outweighs it
    public void A_new_chain_starts_when_the_incrementals_outweigh_the_share_and_the_floor(long fullMiB, long incrementalMiB, int percent, int floorMiB, bool expected)
    {
        var manifest = Chain("20261130-010000000-aaaaaaaa", fullMiB * MiB, incrementalMiB * MiB);
        var options = new BackupOptions { MaxIncrementalPercent = percent, MinIncrementalMiB = floorMiB };

        Assert.Equal(expected, BackupCatalog.IncrementalsOutweighFull(manifest, options));
        Assert.Equal((fullMiB * MiB, incrementalMiB * MiB), BackupCatalog.ChainBytes(manifest));
    }

    [Fact]
    public void The_full_backups_bytes_are_its_own_objects_with_those_it_reused_from_a_failed_run_and_whole_tables_the_incrementals_reuse()
    {
        const string chain = "20261130-010000000-aaaaaaaa";
        var manifest = Manifest(chain,
            Object($"segments/{chain}/image-000000.seg", 700, ManifestObject.ImageKind),
            Object($"segments/{chain}/image-000001.seg", 300, ManifestObject.ImageKind),
            Object($"segments/{chain}/table-accounts.seg", 5, "table"),
            // Stored by a run that failed before the full backup, which reused it: the full backup's.
            Object("segments/20261130-005959000-ffffffff/ledger-0000000000000000-0000000000000010.seg", 40, "ledger"),
            Object("segments/20261130-020000000-bbbbbbbb/ledger-0000000000000010-0000000000000020.seg", 30, "ledger"),
            Object("segments/20261130-030000000-cccccccc/resources-000000.seg", 20, "resources"),
            Object("segments/20261130-030000000-cccccccc/table-users.seg", 1, "table"));

        Assert.Equal((1045L, 51L), BackupCatalog.ChainBytes(manifest));
        Assert.True(BackupCatalog.OfFullBackup(manifest, manifest.Objects[3]));
        Assert.False(BackupCatalog.OfFullBackup(manifest, manifest.Objects[4]));
        // 51 of 1,045 bytes: 4.9%.
        Assert.True(BackupCatalog.IncrementalsOutweighFull(manifest, new BackupOptions { MaxIncrementalPercent = 4, MinIncrementalMiB = 0 }));
        Assert.False(BackupCatalog.IncrementalsOutweighFull(manifest, new BackupOptions { MaxIncrementalPercent = 5, MinIncrementalMiB = 0 }));
    }

    [Fact]
    public void A_full_backup_says_why_and_each_bound_is_named()
    {
        const string chain = "20261130-010000000-aaaaaaaa";
        var began = DateTimeOffset.Parse("2026-11-30T01:00:00Z", System.Globalization.CultureInfo.InvariantCulture);
        var options = new BackupOptions { FullEveryDays = 7, MaxChainObjects = 10, MaxIncrementalPercent = 5, MinIncrementalMiB = 0 };
        var young = Chain(chain, 1000, 10);

        Assert.Null(BackupWriter.FullBecause(false, young, options, began.AddDays(1)));
        Assert.Equal("a full backup was asked for", BackupWriter.FullBecause(true, young, options, began.AddDays(1)));
        Assert.Equal("the target holds no backup yet", BackupWriter.FullBecause(false, null, options, began));
        Assert.Equal($"the store's schema changed since the chain began (version 1, now {Wardline.Server.Modules.Records.Storage.Migrations.Latest})",
            BackupWriter.FullBecause(false, young with { Schema = 1 }, options, began.AddDays(1)));
        Assert.Null(BackupWriter.FullBecause(false, young, options, began.AddDays(7)));
        Assert.Equal("the chain began more than 7 days ago (FullEveryDays)", BackupWriter.FullBecause(false, young, options, began.AddDays(7).AddSeconds(1)));
        var many = young with { Objects = [.. Enumerable.Range(0, 11).Select(i => Object($"segments/{chain}/image-{i:D6}.seg", 100, ManifestObject.ImageKind))] };
        Assert.Equal("the chain has 11 objects, more than 10 (MaxChainObjects)", BackupWriter.FullBecause(false, many, options, began.AddDays(1)));
        Assert.Equal("the chain's incremental backups have stored 6.2% of its full backup's bytes, more than 5% (MaxIncrementalPercent)",
            BackupWriter.FullBecause(false, Chain(chain, 1000, 62), options, began.AddDays(1)));
    }

    [Theory]
    [InlineData(-1, 64, "MaxIncrementalPercent must be between 0 (off) and 10000")]
    [InlineData(10_001, 64, "MaxIncrementalPercent must be between 0 (off) and 10000")]
    [InlineData(5, -1, "MinIncrementalMiB must be between 0 and 1048576")]
    [InlineData(5, 1_048_577, "MinIncrementalMiB must be between 0 and 1048576")]
    public void Out_of_range_settings_are_named(int percent, int floorMiB, string problem)
    {
        var problems = new BackupOptions { MaxIncrementalPercent = percent, MinIncrementalMiB = floorMiB }.Validate();

        Assert.Contains(problems, p => p.Contains(problem, StringComparison.Ordinal));
    }

    [Fact]
    public void The_defaults_are_valid_and_bound_a_chain_at_five_percent_above_64_MiB()
    {
        var options = new BackupOptions();

        Assert.Empty(options.Validate());
        Assert.Equal(5, options.MaxIncrementalPercent);
        Assert.Equal(64, options.MinIncrementalMiB);
    }

    private static Manifest Chain(string chain, long fullBytes, long incrementalBytes)
    {
        var objects = new List<ManifestObject>();
        if (fullBytes > 0) objects.Add(Object($"segments/{chain}/image-000000.seg", fullBytes, ManifestObject.ImageKind));
        if (incrementalBytes > 0) objects.Add(Object("segments/20261130-020000000-bbbbbbbb/resources-000000.seg", incrementalBytes, "resources"));
        return Manifest(chain, [.. objects]);
    }

    private static Manifest Manifest(string chain, params ManifestObject[] objects) => new()
    {
        Id = "20261130-040000000-dddddddd",
        Created = DateTimeOffset.Parse("2026-11-30T04:00:00Z", System.Globalization.CultureInfo.InvariantCulture),
        Kind = "incremental",
        Chain = chain,
        Engine = "sqlite",
        Schema = Wardline.Server.Modules.Records.Storage.Migrations.Latest,
        LedgerFrom = 10,
        LedgerSize = 20,
        LedgerRoot = new string('0', 64),
        Keks = ["k1"],
        Objects = objects,
    };

    private static ManifestObject Object(string name, long bytes, string kind) =>
        new() { Name = name, Sha256 = new string('0', 64), Bytes = bytes, Kind = kind, Fingerprint = "" };
}
