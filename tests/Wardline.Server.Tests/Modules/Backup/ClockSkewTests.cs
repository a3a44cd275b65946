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
/// A backup taken while the server's clock ran three hours ahead, then a normal one: backups are ordered by the
/// ledger's size, not by anybody's clock, so the later backup is the newest for restore and for retention.
/// </summary>
public abstract class ClockSkewConformance(StoreKind kind) : StoreAndTarget(kind)
{

    [Fact]
    public async Task Backup_from_a_clock_three_hours_ahead_does_not_hide_a_later_backup()
    {
        BackupRunResult ahead, later;
        string late;
        await using (var server = await StartAsync(Store))
        {
            var seeded = await SeedAsync(server.Client);
            var skewed = new BackupWriter(server.Service<SqlDialect>(), server.Service<RecordKeys>(), new SkewedClock(TimeSpan.FromHours(3)), NullLogger<BackupWriter>.Instance);
            ahead = await skewed.RunAsync(Target.Store, new BackupOptions(), false, "test", null, CancellationToken.None);
            late = await WriteMoreAsync(server.Client, seeded, "2024-04-01");
            later = await BackupAsync(server, Target.Store);
        }

        Assert.True(ahead.Status == "completed", ahead.Error);
        Assert.True(later.Status == "completed", later.Error);
        Assert.True(ahead.Manifest!.Created > later.Manifest!.Created.AddHours(2), "the skewed backup should carry the skewed time");
        Assert.Equal("incremental", later.Kind);
        Assert.Equal(ahead.Manifest.Name, later.Manifest.Parent);
        var keyring = Keyring.Load(KeyringPath(Store), null);
        var authenticator = Authenticator(keyring);

        var newest = await BackupRestorer.ChooseAsync(Target.Store, authenticator, null, null, CancellationToken.None);
        var atNow = await BackupRestorer.ChooseAsync(Target.Store, authenticator, DateTimeOffset.UtcNow, null, CancellationToken.None);
        var manifests = new List<Wardline.Backup.Format.Manifest>();
        foreach (var name in await BackupCatalog.ManifestNamesAsync(Target.Store, CancellationToken.None))
            manifests.Add(await BackupCatalog.ReadAsync(Target.Store, authenticator, name, CancellationToken.None));
        var kept = BackupRetention.Keep(manifests, new BackupRetentionOptions { Hourly = 1, Daily = 0, Weekly = 0, Monthly = 0 });

        Assert.Equal(later.Manifest.Name, newest.Name);
        Assert.Equal(later.Manifest.Name, atNow.Name);
        Assert.Contains(kept, m => m.Name == later.Manifest.Name);
        await using var restored = await TestStore.CreateAsync(Kind);
        await RestoreIntoAsync(Target.Store, newest, restored, Store);
        var verdict = await VerifyAsync(restored, newest, WitnessPath(Store));
        Assert.True(verdict.Proven, string.Join("\n", verdict.Report.Problems));
        Assert.Equal(1, await CountAsync(restored, $"SELECT COUNT(*) FROM resources WHERE res_type = 'Observation' AND res_id = '{late}'"));
        ReleasePools();
    }
}

public sealed class SqliteClockSkewTests() : ClockSkewConformance(StoreKind.Sqlite);

public sealed class PostgresClockSkewTests() : ClockSkewConformance(StoreKind.Postgres);
