using Wardline.Backup.Format;
using Wardline.Crypto;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Backup.Infrastructure;
using static Wardline.Server.Tests.Modules.Backup.Infrastructure.BackupTestKit;

namespace Wardline.Server.Tests.Modules.Backup;

/// <summary>Which backups retention keeps by age, on synthetic manifests.</summary>
public sealed class BackupRetentionKeepTests
{
    private static readonly DateTimeOffset Now = new(2026, 11, 29, 10, 30, 0, TimeSpan.Zero);

    /// <summary>Every half hour for three hours, noon on each of the three days before, and mid-October and mid-September: oldest first.</summary>
    private static List<Manifest> History()
    {
        var times = new List<DateTimeOffset>
        {
            new(2026, 9, 15, 12, 0, 0, TimeSpan.Zero),
            new(2026, 10, 15, 12, 0, 0, TimeSpan.Zero),
            new(2026, 11, 26, 12, 0, 0, TimeSpan.Zero),
            new(2026, 11, 27, 12, 0, 0, TimeSpan.Zero),
            new(2026, 11, 28, 12, 0, 0, TimeSpan.Zero),
        };
        for (var t = Now.AddHours(-3); t <= Now; t = t.AddMinutes(30)) times.Add(t);
        return [.. times.Select((t, i) => Synthetic(100 * (i + 1), t))];
    }

    private static Manifest Synthetic(long size, DateTimeOffset created) => new()
    {
        Id = Manifest.NewId(created),
        Created = created,
        Kind = "incremental",
        Chain = "chain",
        Engine = "sqlite",
        Schema = 1,
        LedgerFrom = 0,
        LedgerSize = size,
        LedgerRoot = "00",
        Keks = ["k1"],
        Objects = [],
    };

    private static List<string> KeptTimes(BackupRetentionOptions retention) =>
        [.. BackupRetention.Keep(History(), retention).OrderBy(m => m.LedgerSize).Select(m => m.Created.ToString("MM-dd HH:mm", System.Globalization.CultureInfo.InvariantCulture))];

    [Fact]
    public void Retention_keeps_the_newest_of_each_of_the_last_hours_days_and_months()
    {
        var kept = KeptTimes(new BackupRetentionOptions { Hourly = 2, Daily = 2, Weekly = 0, Monthly = 2 });

        Assert.Equal(["10-15 12:00", "11-28 12:00", "11-29 09:30", "11-29 10:30"], kept);
    }

    [Fact]
    public void Retention_keeps_the_newest_of_each_of_the_last_weeks()
    {
        var kept = KeptTimes(new BackupRetentionOptions { Hourly = 0, Daily = 0, Weekly = 2, Monthly = 0 });

        // 26 to 29 November are all ISO week 48; mid-October is week 42.
        Assert.Equal(["10-15 12:00", "11-29 10:30"], kept);
    }

    [Fact]
    public void Retention_with_the_defaults_keeps_the_newest_backup_of_every_recent_hour()
    {
        var kept = KeptTimes(new BackupRetentionOptions());

        Assert.Equal(["09-15 12:00", "10-15 12:00", "11-26 12:00", "11-27 12:00", "11-28 12:00", "11-29 07:30", "11-29 08:30", "11-29 09:30", "11-29 10:30"], kept);
    }

    [Fact]
    public void Retention_always_keeps_the_newest_backup()
    {
        var kept = BackupRetention.Keep(History(), new BackupRetentionOptions { Hourly = 0, Daily = 0, Weekly = 0, Monthly = 0 });

        Assert.Equal(1200, Assert.Single(kept).LedgerSize);
        Assert.Empty(BackupRetention.Keep([], new BackupRetentionOptions()));
    }
}

/// <summary>Pruning a real folder target: old manifests and the segments only they used go; what the kept backup needs, and what a newer run stored, stays.</summary>
public abstract class BackupPruneConformance(StoreKind kind) : StoreAndTarget(kind)
{

    [Fact]
    public async Task Prune_removes_old_manifests_and_their_segments_but_never_a_newer_run_and_the_kept_backup_still_proves()
    {
        var runs = new List<BackupRunResult>();
        BackupRunResult failed;
        await using (var server = await StartAsync(Store))
        {
            var seeded = await SeedAsync(server.Client);
            runs.Add(await BackupAsync(server, Target.Store));
            await WriteMoreAsync(server.Client, seeded, "2024-04-01");
            runs.Add(await BackupAsync(server, Target.Store));
            await server.Service<AccountService>().CreateAsync(Account.New("day-nurse", "Day Nurse") with { Roles = ["tester"] }, null, "test", CancellationToken.None);
            runs.Add(await BackupAsync(server, Target.Store));
            await WriteMoreAsync(server.Client, seeded, "2024-04-02");
            runs.Add(await BackupAsync(server, Target.Store, full: true));
            await WriteMoreAsync(server.Client, seeded, "2024-04-03");
            failed = await BackupAsync(server, new FailingPutStore(Target.Store, failFrom: 2));
        }
        Assert.All(runs, r => Assert.True(r.Status == "completed", r.Error));
        Assert.Equal("failed", failed.Status);
        var newest = runs[^1].Manifest!;
        Assert.Equal("full", newest.Kind);
        var failedSegments = Directory.GetFiles(Target.PathOf($"segments/{failed.RunId}"));
        Assert.NotEmpty(failedSegments);
        var keyring = Keyring.Load(KeyringPath(Store), null);
        // The older chain's segments were written days ago (by the target's clock); the failed run's just now.
        foreach (var r in runs.Take(3))
        {
            foreach (var file in Directory.GetFiles(Target.PathOf($"segments/{r.RunId}")))
                File.SetLastWriteTimeUtc(file, DateTime.UtcNow.AddDays(-2));
        }

        var report = await BackupRetention.PruneAsync(Target.Store, keyring, new BackupRetentionOptions { Hourly = 1, Daily = 0, Weekly = 0, Monthly = 0 }, CancellationToken.None);

        Assert.Equal(1, report.ManifestsKept);
        Assert.Equal(3, report.ManifestsRemoved);
        Assert.Equal(0, report.Locked);
        Assert.Equal([Path.GetFileName(newest.Name)], Target.Manifests());
        var removed = runs.Take(3).Sum(r => StoredBy(r.Manifest!).Count);
        Assert.Equal(removed, report.ObjectsRemoved);
        foreach (var r in runs.Take(3))
            Assert.Empty(Directory.Exists(Target.PathOf($"segments/{r.RunId}")) ? Directory.GetFiles(Target.PathOf($"segments/{r.RunId}")) : []);
        Assert.All(newest.Objects, o => Assert.True(File.Exists(Target.PathOf(o.Name)), o.Name));
        Assert.Equal(failedSegments, Directory.GetFiles(Target.PathOf($"segments/{failed.RunId}")));

        await using var restored = await TestStore.CreateAsync(Kind);
        await RestoreIntoAsync(Target.Store, newest, restored, Store);
        var verdict = await VerifyAsync(restored, newest, WitnessPath(Store));
        Assert.True(verdict.Proven, string.Join("\n", verdict.Report.Problems));
        ReleasePools();
    }

    [Fact]
    public async Task Prune_keeps_the_segments_of_a_manifest_the_target_holds_locked()
    {
        BackupRunResult old, newest;
        await using (var server = await StartAsync(Store))
        {
            var seeded = await SeedAsync(server.Client);
            old = await BackupAsync(server, Target.Store);
            await WriteMoreAsync(server.Client, seeded, "2024-04-01");
            newest = await BackupAsync(server, Target.Store, full: true);
        }
        Assert.True(old.Status == "completed", old.Error);
        Assert.True(newest.Status == "completed", newest.Error);
        var keyring = Keyring.Load(KeyringPath(Store), null);

        var report = await BackupRetention.PruneAsync(new LockingStore(Target.Store, "manifests/"), keyring, new BackupRetentionOptions { Hourly = 1, Daily = 0, Weekly = 0, Monthly = 0 }, CancellationToken.None);
        var check = await BackupChecker.CheckAsync(Target.Store, keyring, null, CancellationToken.None);

        Assert.Equal(1, report.Locked);
        Assert.Equal(2, Target.Manifests().Count);
        Assert.Empty(check.Problems);
    }
}

public sealed class SqliteBackupPruneTests() : BackupPruneConformance(StoreKind.Sqlite);

public sealed class PostgresBackupPruneTests() : BackupPruneConformance(StoreKind.Postgres);
