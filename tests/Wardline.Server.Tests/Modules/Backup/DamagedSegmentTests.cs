using Wardline.Backup.Format;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Backup.Infrastructure;
using static Wardline.Server.Tests.Modules.Backup.Infrastructure.BackupTestKit;

namespace Wardline.Server.Tests.Modules.Backup;

/// <summary>
/// A segment on the target with one byte flipped, or cut short: restore stops naming it, <c>backup verify</c>
/// names it, and a restore told to skip damaged segments lists exactly what is missing and is not proven.
/// </summary>
[Collection(BackupStaticsCollection.Name)]
public abstract class DamagedSegmentConformance(StoreKind kind) : StoreAndTarget(kind)
{
    private Manifest _manifest = null!;

    protected override async Task ArrangeAsync()
    {
        BackupWriter.EntriesPerSegment = 16;
        try
        {
            await using var server = await StartAsync(Store);
            await SeedAsync(server.Client, observations: 40);
            var run = await BackupAsync(server, Target.Store, options: RowSegments);
            Assert.True(run.Status == "completed", run.Error);
            _manifest = run.Manifest!;
        }
        finally
        {
            BackupWriter.EntriesPerSegment = 8192;
        }
        Assert.True(_manifest.Objects.Count(o => o.Kind == "ledger") >= 3, "expected several ledger segments");
    }

    private ManifestObject SecondLedgerSegment => _manifest.Objects.Where(o => o.Kind == "ledger").ElementAt(1);

    [Fact]
    public async Task Segment_with_one_flipped_byte_stops_the_restore_naming_it()
    {
        var damaged = SecondLedgerSegment;
        FlipByte(damaged);
        await using var restored = await TestStore.CreateAsync(Kind);

        var refused = await Assert.ThrowsAsync<BackupRefusedException>(() => RestoreIntoAsync(Target.Store, _manifest, restored, Store));

        Assert.Contains(damaged.Name, refused.Message, StringComparison.Ordinal);
        Assert.Contains("SHA-256", refused.Message, StringComparison.Ordinal);
        Assert.Contains("--skip-damaged", refused.Message, StringComparison.Ordinal);
        ReleasePools();
    }

    [Fact]
    public async Task Backup_verify_names_the_corrupted_and_the_truncated_segment()
    {
        var corrupted = SecondLedgerSegment;
        var truncated = _manifest.Objects.First(o => o.Kind == "resources");
        FlipByte(corrupted);
        Truncate(truncated);
        var keyring = Wardline.Crypto.Keyring.Load(KeyringPath(Store), null);

        var report = await BackupChecker.CheckAsync(Target.Store, keyring, null, CancellationToken.None);

        Assert.Equal(1, report.Manifests);
        Assert.Equal(2, report.Problems.Count);
        Assert.Contains(report.Problems, p => p.Contains(corrupted.Name, StringComparison.Ordinal) && p.Contains("SHA-256", StringComparison.Ordinal));
        Assert.Contains(report.Problems, p => p.Contains(truncated.Name, StringComparison.Ordinal) && p.Contains("truncated", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Truncated_segment_stops_the_restore_naming_it()
    {
        var damaged = _manifest.Objects.Where(o => o.Kind == "ledger").Last();
        Truncate(damaged);
        await using var restored = await TestStore.CreateAsync(Kind);

        var refused = await Assert.ThrowsAsync<BackupRefusedException>(() => RestoreIntoAsync(Target.Store, _manifest, restored, Store));

        Assert.Contains(damaged.Name, refused.Message, StringComparison.Ordinal);
        Assert.Contains("truncated", refused.Message, StringComparison.Ordinal);
        ReleasePools();
    }

    [Fact]
    public async Task Restore_that_skips_a_damaged_segment_lists_the_missing_entries_and_is_not_proven()
    {
        var damaged = SecondLedgerSegment;
        FlipByte(damaged);
        await using var restored = await TestStore.CreateAsync(Kind);

        var report = await RestoreIntoAsync(Target.Store, _manifest, restored, Store, skipDamaged: true);
        var verdict = await VerifyAsync(restored, _manifest, WitnessPath(Store));

        var missing = Assert.Single(report.Damaged);
        Assert.Contains(damaged.Name, missing, StringComparison.Ordinal);
        Assert.Contains($"ledger entries {damaged.From} to {damaged.To - 1}", missing, StringComparison.Ordinal);
        Assert.Equal(_manifest.Objects.Count - 1, report.Objects);
        Assert.False(verdict.Proven);
        Assert.Contains(verdict.Report.Problems, p => p.Contains(damaged.From!.Value.ToString(System.Globalization.CultureInfo.InvariantCulture), StringComparison.Ordinal));
        ReleasePools();
    }

    [Fact]
    public async Task Restore_that_skips_a_damaged_table_segment_names_the_table()
    {
        var damaged = _manifest.Objects.First(o => o.Kind == "table" && o.Table == "accounts");
        Truncate(damaged);
        await using var restored = await TestStore.CreateAsync(Kind);

        var report = await RestoreIntoAsync(Target.Store, _manifest, restored, Store, skipDamaged: true);

        var missing = Assert.Single(report.Damaged);
        Assert.Contains(damaged.Name, missing, StringComparison.Ordinal);
        Assert.Contains("the table accounts", missing, StringComparison.Ordinal);
        Assert.Equal(0, await CountAsync(restored, "SELECT COUNT(*) FROM accounts"));
        ReleasePools();
    }

    private void FlipByte(ManifestObject o)
    {
        var path = Target.PathOf(o.Name);
        var bytes = File.ReadAllBytes(path);
        bytes[bytes.Length / 2] ^= 0x01;
        File.WriteAllBytes(path, bytes);
    }

    private void Truncate(ManifestObject o)
    {
        using var f = new FileStream(Target.PathOf(o.Name), FileMode.Open, FileAccess.Write);
        f.SetLength(f.Length / 2);
    }
}

public sealed class SqliteDamagedSegmentTests() : DamagedSegmentConformance(StoreKind.Sqlite);

public sealed class PostgresDamagedSegmentTests() : DamagedSegmentConformance(StoreKind.Postgres);
