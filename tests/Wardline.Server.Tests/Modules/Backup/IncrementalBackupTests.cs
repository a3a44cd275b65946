using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Backup.Infrastructure;
using static Wardline.Server.Tests.Modules.Backup.Infrastructure.BackupTestKit;

namespace Wardline.Server.Tests.Modules.Backup;

/// <summary>
/// Incremental backups ship only what the append-only ledger added since the last one (and the small tables
/// that changed); a chain restores to its newest point, and an older point of it is chosen by ledger size or time.
/// </summary>
public abstract class IncrementalBackupConformance(StoreKind kind) : StoreAndTarget(kind)
{

    [Fact]
    public async Task Second_backup_after_a_few_writes_ships_only_ledger_and_resources_objects_and_far_fewer_bytes()
    {
        await using var server = await StartAsync(Store);
        var seeded = await SeedAsync(server.Client, observations: 40);
        var full = await BackupAsync(server, Target.Store);
        await WriteMoreAsync(server.Client, seeded, "2024-04-01");

        var incremental = await BackupAsync(server, Target.Store);

        Assert.True(full.Status == "completed", full.Error);
        Assert.True(incremental.Status == "completed", incremental.Error);
        Assert.Equal("full", full.Kind);
        Assert.Equal("incremental", incremental.Kind);
        var shipped = StoredBy(incremental.Manifest!);
        Assert.All(shipped, o => Assert.Contains(o.Kind, new[] { "ledger", "resources" }));
        Assert.Contains(shipped, o => o.Kind == "ledger");
        Assert.Contains(shipped, o => o.Kind == "resources");
        Assert.Equal(full.Manifest!.LedgerSize, incremental.Manifest!.LedgerFrom);
        Assert.Equal(full.Manifest.Name, incremental.Manifest.Parent);
        Assert.Equal(full.Manifest.Id, incremental.Manifest.Chain);
        Assert.True(incremental.StoredBytes * 3 < full.StoredBytes, $"incremental stored {incremental.StoredBytes} bytes, the full backup {full.StoredBytes}");
        // The chain's manifest still lists everything a restore needs: the full backup's objects, then the new ones.
        Assert.Equal(full.Manifest.Objects.Select(o => o.Name).Where(n => !n.Contains("/table-", StringComparison.Ordinal)),
            incremental.Manifest.Objects.Select(o => o.Name).Where(n => !n.Contains("/table-", StringComparison.Ordinal)).Take(full.Manifest.Objects.Count(o => o.Kind != "table")));
    }

    [Fact]
    public async Task Chain_whose_incrementals_outweigh_the_share_of_its_full_backup_starts_a_new_chain_and_not_before()
    {
        await using var server = await StartAsync(Store);
        var seeded = await SeedAsync(server.Client, observations: 40);
        // No floor, so that a test store's few kilobytes count; 0% would turn the rule off, so the smallest share is 1%.
        var bounded = new BackupOptions { MaxIncrementalPercent = 1, MinIncrementalMiB = 0 };
        var full = await BackupAsync(server, Target.Store, options: bounded);
        await WriteMoreAsync(server.Client, seeded, "2024-04-01");
        var incremental = await BackupAsync(server, Target.Store, options: bounded);
        Assert.True(incremental.Status == "completed", incremental.Error);
        Assert.Equal("incremental", incremental.Kind);
        Assert.Equal("the target holds no backup yet", full.FullBecause);
        Assert.Null(incremental.FullBecause);
        var (fullBytes, incrementalBytes) = BackupCatalog.ChainBytes(incremental.Manifest!);
        Assert.Equal(full.Manifest!.Objects.Sum(o => o.Bytes), fullBytes);
        Assert.Equal(StoredBy(incremental.Manifest!).Sum(o => o.Bytes), incrementalBytes);
        Assert.True(incrementalBytes * 100 > fullBytes, $"the incremental stored {incrementalBytes} bytes against the full backup's {fullBytes}: under 1%, this test proves nothing");

        await WriteMoreAsync(server.Client, seeded, "2024-05-01");
        // With the rule off (and with the default floor of 64 MiB, which a test store never reaches) the chain goes on.
        var off = await BackupAsync(server, Target.Store, options: new BackupOptions { MaxIncrementalPercent = 0, MinIncrementalMiB = 0 });
        Assert.Equal("incremental", off.Kind);
        Assert.Equal(full.Manifest.Id, off.Manifest!.Chain);
        await WriteMoreAsync(server.Client, seeded, "2024-06-01");
        var floored = await BackupAsync(server, Target.Store, options: new BackupOptions { MaxIncrementalPercent = 1 });
        Assert.Equal("incremental", floored.Kind);

        await WriteMoreAsync(server.Client, seeded, "2024-07-01");
        var fresh = await BackupAsync(server, Target.Store, options: bounded);
        Assert.True(fresh.Status == "completed", fresh.Error);
        Assert.Equal("full", fresh.Kind);
        Assert.Matches(@"^the chain's incremental backups have stored \d+(\.\d)?% of its full backup's bytes, more than 1% \(MaxIncrementalPercent\)$", fresh.FullBecause);
        Assert.Equal(fresh.Manifest!.Id, fresh.Manifest.Chain);
        Assert.Equal(0, BackupCatalog.ChainBytes(fresh.Manifest).Incremental);
    }

    [Fact]
    public async Task Backup_with_no_change_at_all_is_unchanged_and_writes_no_manifest()
    {
        await using var server = await StartAsync(Store);
        await SeedAsync(server.Client);
        var first = await BackupAsync(server, Target.Store);
        var manifests = Target.Manifests();

        var again = await BackupAsync(server, Target.Store);

        Assert.True(first.Status == "completed", first.Error);
        Assert.Equal("unchanged", again.Status);
        Assert.Equal(0, again.Stored);
        Assert.Equal(0, again.StoredBytes);
        Assert.Equal(manifests, Target.Manifests());
        Assert.Single(manifests);
        Assert.False(Directory.Exists(Target.PathOf($"segments/{again.RunId}")), "the unchanged run stored segments");
        Assert.Equal(1, await CountAsync(Store, $"SELECT COUNT(*) FROM backup_runs WHERE id = '{again.RunId}' AND status = 'unchanged' AND manifest IS NULL"));
    }

    [Fact]
    public async Task Change_only_to_an_account_ships_the_accounts_table_alone()
    {
        await using var server = await StartAsync(Store);
        await SeedAsync(server.Client);
        var first = await BackupAsync(server, Target.Store);
        var accounts = server.Service<AccountService>();
        var result = await accounts.CreateAsync(Account.New("night-nurse", "Night Nurse") with { Roles = ["tester"] }, null, "test", CancellationToken.None);
        Assert.IsType<AccountResult.Done>(result);

        var second = await BackupAsync(server, Target.Store);

        Assert.True(second.Status == "completed", second.Error);
        var shipped = StoredBy(second.Manifest!);
        Assert.Equal(["accounts"], shipped.Where(o => o.Kind == "table").Select(o => o.Table!));
        // The account's creation is audited, so its ledger entry ships too; no resource changed.
        Assert.DoesNotContain(shipped, o => o.Kind == "resources");
        Assert.Equal(first.Manifest!.Objects.Where(o => o.Kind == "table" && o.Table != "accounts").Select(o => o.Name),
            second.Manifest!.Objects.Where(o => o.Kind == "table" && o.Table != "accounts").Select(o => o.Name));
    }

    [Fact]
    public async Task Chain_restore_answers_as_the_original_after_an_update_a_rename_and_a_delete_between_backups()
    {
        await using var restored = await TestStore.CreateAsync(Kind);
        List<string> expected;
        Seeded seeded;
        string renamed;
        await using (var server = await StartAsync(Store))
        {
            seeded = await SeedAsync(server.Client);
            var full = await BackupAsync(server, Target.Store);
            await WriteMoreAsync(server.Client, seeded, "2024-04-01");
            Assert.True((await server.Client.DeleteAsync($"Observation/{seeded.Observations[0]}")).IsSuccessStatusCode);
            // A new family name: the blind-indexed search rows of the old one must go with the incremental.
            renamed = seeded.Family + "renamed";
            var put = await server.Client.PutJsonAsync($"Patient/{seeded.OtherPatient}", FhirTest.Patient(renamed, "Sam", seeded.OtherPatient, birthDate: "1955-01-09", gender: "male"));
            Assert.Equal(System.Net.HttpStatusCode.OK, put.StatusCode);
            expected = await AskAllAsync(server, seeded);
            expected.Add(await AnswerAsync(server, $"Patient?family={renamed}"));
            var incremental = await BackupAsync(server, Target.Store);
            Assert.True(full.Status == "completed", full.Error);
            Assert.True(incremental.Status == "completed", incremental.Error);
            Assert.Equal("incremental", incremental.Kind);
            await RestoreIntoAsync(Target.Store, incremental.Manifest!, restored, Store);
            var verdict = await VerifyAsync(restored, incremental.Manifest!, WitnessPath(Store));
            Assert.True(verdict.Proven, string.Join("\n", verdict.Report.Problems));
        }
        ReleasePools();

        await using (var server = await StartAsync(restored))
        {
            var answers = await AskAllAsync(server, seeded);
            answers.Add(await AnswerAsync(server, $"Patient?family={renamed}"));
            Assert.Equal(expected, answers);
            Assert.Contains(answers, a => a.StartsWith($"Observation/{seeded.Observations[0]} -> 410", StringComparison.Ordinal));
            Assert.DoesNotContain(seeded.OtherPatient, answers.Single(a => a.StartsWith($"Patient?family={seeded.Family}x", StringComparison.Ordinal)), StringComparison.Ordinal);
            Assert.Contains(seeded.OtherPatient, answers[^1], StringComparison.Ordinal);
        }
        ReleasePools();
    }

    [Fact]
    public async Task Store_rolled_back_to_an_older_backup_is_refused_an_incremental_onto_the_newer_chain_until_a_full_backup()
    {
        await using var rolledBack = await TestStore.CreateAsync(Kind);
        await using (var server = await StartAsync(Store))
        {
            var seeded = await SeedAsync(server.Client);
            var older = await BackupAsync(server, Target.Store);
            for (var i = 0; i < 15; i++) await server.Client.CreateAsync("Observation", FhirTest.Observation(seeded.Patient, value: 100 + i));
            var newer = await BackupAsync(server, Target.Store);
            Assert.True(newer.Status == "completed", newer.Error);
            await RestoreIntoAsync(Target.Store, older.Manifest!, rolledBack, Store);
            // Proven (against its manifest), so it may be served.
            Assert.True((await VerifyAsync(rolledBack, older.Manifest!, null)).Proven);
        }
        ReleasePools();

        await using (var server = await StartAsync(rolledBack))
        {
            var refused = await BackupAsync(server, Target.Store);
            var full = await BackupAsync(server, Target.Store, full: true);

            Assert.Equal("failed", refused.Status);
            Assert.Contains("rolled back", refused.Error, StringComparison.Ordinal);
            Assert.Contains("--full", refused.Error, StringComparison.Ordinal);
            Assert.True(full.Status == "completed", full.Error);
            Assert.Equal("full", full.Kind);
            // The restored history is now the newest on the target: the next run is an incremental onto it, and a restore picks it.
            await server.Client.CreateAsync("Observation", FhirTest.Observation((await SeedAsync(server.Client)).Patient, value: 200));
            var next = await BackupAsync(server, Target.Store);
            Assert.True(next.Status == "completed", next.Error);
            Assert.Equal("incremental", next.Kind);
            Assert.Equal(1, next.Manifest!.Epoch);
            var chosen = await BackupRestorer.ChooseAsync(Target.Store, Authenticator(KeyringOf(server)), null, null, CancellationToken.None);
            Assert.Equal(next.Manifest.Name, chosen.Name);
        }
        ReleasePools();
    }

    [Fact]
    public async Task Newest_of_a_chain_of_three_restores_everything_and_an_older_point_lacks_the_later_writes()
    {
        Seeded seeded;
        string late;
        BackupRunResult first, second, third;
        await using (var server = await StartAsync(Store))
        {
            seeded = await SeedAsync(server.Client);
            first = await BackupAsync(server, Target.Store);
            await WriteMoreAsync(server.Client, seeded, "2024-04-01");
            second = await BackupAsync(server, Target.Store);
            await Task.Delay(20);
            late = await WriteMoreAsync(server.Client, seeded, "2024-04-02");
            third = await BackupAsync(server, Target.Store);
        }
        Assert.All(new[] { first, second, third }, r => Assert.True(r.Status == "completed", r.Error));
        Assert.Equal(["full", "incremental", "incremental"], new[] { first.Kind, second.Kind, third.Kind });
        var keyring = Wardline.Crypto.Keyring.Load(KeyringPath(Store), null);
        var authenticator = Authenticator(keyring);

        var newest = await BackupRestorer.ChooseAsync(Target.Store, authenticator, null, null, CancellationToken.None);
        var bySize = await BackupRestorer.ChooseAsync(Target.Store, authenticator, null, third.Manifest!.LedgerSize - 1, CancellationToken.None);
        var byTime = await BackupRestorer.ChooseAsync(Target.Store, authenticator, second.Manifest!.Created.AddMilliseconds(1), null, CancellationToken.None);

        Assert.Equal(third.Manifest.Name, newest.Name);
        Assert.Equal(second.Manifest.Name, bySize.Name);
        Assert.Equal(second.Manifest.Name, byTime.Name);

        await using (var all = await TestStore.CreateAsync(Kind))
        {
            await RestoreIntoAsync(Target.Store, newest, all, Store);
            var verdict = await VerifyAsync(all, newest, WitnessPath(Store));
            Assert.True(verdict.Proven, string.Join("\n", verdict.Report.Problems));
            Assert.Equal(1, await CountAsync(all, $"SELECT COUNT(*) FROM resources WHERE res_type = 'Observation' AND res_id = '{late}'"));
            Assert.Equal(3, await CountAsync(all, $"SELECT COUNT(*) FROM resource_versions WHERE res_type = 'Condition' AND res_id = '{seeded.Condition}'"));
            ReleasePools();
        }
        await using (var older = await TestStore.CreateAsync(Kind))
        {
            await RestoreIntoAsync(Target.Store, bySize, older, Store);
            var verdict = await VerifyAsync(older, bySize, WitnessPath(Store));
            Assert.True(verdict.Proven, string.Join("\n", verdict.Report.Problems));
            Assert.Equal((second.Manifest.LedgerSize, second.Manifest.LedgerRoot), await LedgerStateAsync(older));
            Assert.Equal(0, await CountAsync(older, $"SELECT COUNT(*) FROM resources WHERE res_type = 'Observation' AND res_id = '{late}'"));
            Assert.Equal(2, await CountAsync(older, $"SELECT COUNT(*) FROM resource_versions WHERE res_type = 'Condition' AND res_id = '{seeded.Condition}'"));
            ReleasePools();
        }
    }
}

public sealed class SqliteIncrementalBackupTests() : IncrementalBackupConformance(StoreKind.Sqlite);

public sealed class PostgresIncrementalBackupTests() : IncrementalBackupConformance(StoreKind.Postgres);
