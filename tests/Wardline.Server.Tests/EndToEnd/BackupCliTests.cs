using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Wardline.Server.Hosting;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.EndToEnd;

/// <summary>A store of two imported Synthea bundles with one full backup in a folder target, made once for the CLI tests.</summary>
public sealed class BackedUpStore : IAsyncLifetime
{
    public string Folder { get; } = Directory.CreateTempSubdirectory("wardline-backup-cli-").FullName;

    public string Data => Path.Combine(Folder, "store");

    public string Target => Path.Combine(Folder, "target");

    /// <summary>The same store backed up as row segments (<c>Wardline:Backup:SqliteImage</c> false) instead of a database image.</summary>
    public string RowsTarget => Path.Combine(Folder, "rows-target");

    public string Keyring => Path.Combine(Data, "keyring.json");

    public WardlineOptions Options => new() { DataDirectory = Data };

    public async Task InitializeAsync()
    {
        var import = await WardlineCli.RunAsync(["import", "--data", Data, .. SyntheaSamples.Files.Take(2)]);
        Assert.True(import.ExitCode == 0, import.Output);
        // A signed head in the witness, so restores have a witness to verify against.
        var head = await WardlineCli.RunAsync(["ledger", "head", "--data", Data]);
        Assert.True(head.ExitCode == 0, head.Output);
        var backup = await WardlineCli.RunAsync(["backup", "now", "--data", Data, "--target", "file://" + Target]);
        Assert.True(backup.ExitCode == 0, backup.Output);
        var config = Path.Combine(Folder, "rows.json");
        await File.WriteAllTextAsync(config, """{"Wardline": {"Backup": {"SqliteImage": false}}}""");
        var rows = await WardlineCli.RunAsync(["backup", "now", "--data", Data, "--config", config, "--target", "file://" + RowsTarget]);
        Assert.True(rows.ExitCode == 0, rows.Output);
    }

    public Task DisposeAsync()
    {
        Directory.Delete(Folder, recursive: true);
        return Task.CompletedTask;
    }

    /// <summary>A copy of the target (or of the row-segment one) for a test that damages it or adds to it.</summary>
    public string CopyTarget(string to, bool rows = false)
    {
        var from = rows ? RowsTarget : Target;
        foreach (var file in Directory.EnumerateFiles(from, "*", SearchOption.AllDirectories))
        {
            var copy = Path.Combine(to, Path.GetRelativePath(from, file));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(file, copy);
        }
        return to;
    }

    /// <summary>
    /// A copy of the store's witness: a restore re-bases the witness it is given, and the tests' store must keep its own.
    /// </summary>
    public string CopyWitness(string to)
    {
        Directory.CreateDirectory(to);
        foreach (var file in Directory.EnumerateFiles(Path.Combine(Data, "witness"))) File.Copy(file, Path.Combine(to, Path.GetFileName(file)));
        return to;
    }
}

/// <summary>
/// The real `wardline backup now|list|status|verify|drill|prune` and `wardline restore`: the happy paths on an imported
/// store, and every bad input an operator can give them, each refused with a clear message, the right exit code, no
/// secret in the output, and nothing written.
/// </summary>
public sealed class BackupCliTests(BackedUpStore store) : IClassFixture<BackedUpStore>, IDisposable
{
    // Looks like an Azure account key (base64 of 64 bytes); it must never reach the output.
    private const string SecretKey = "U2VjcmV0S2V5VGhhdE11c3ROZXZlckxlYWtTZWNyZXRLZXlUaGF0TXVzdE5ldmVyTGVhaw==";

    private readonly string _folder = Directory.CreateTempSubdirectory("wardline-backup-cli-test-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private string Target => "file://" + store.Target;

    [Fact]
    public async Task Backup_now_list_status_verify_drill_and_prune_work_on_an_imported_store()
    {
        var target = "file://" + Path.Combine(_folder, "target");

        var full = await RunAsync("backup", "now", "--data", store.Data, "--target", target);
        Assert.True(full.ExitCode == 0, full.Output);
        Assert.Contains("full backup", full.Flat, StringComparison.Ordinal);
        Assert.Contains("a new chain: the target holds no backup yet", full.Flat, StringComparison.Ordinal);
        Assert.Contains("not supported by this target (folder)", full.Flat, StringComparison.Ordinal);
        // The first run's own ledger entry ("backup-completed") is what the next run ships.
        var incremental = await RunAsync("backup", "now", "--data", store.Data, "--target", target);
        Assert.True(incremental.ExitCode == 0, incremental.Output);
        Assert.Contains("incremental backup", incremental.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain("a new chain", incremental.Flat, StringComparison.Ordinal);

        var list = await RunAsync("backup", "list", "--data", store.Data, "--target", target);
        Assert.True(list.ExitCode == 0, list.Output);
        Assert.Contains("2 backups on " + target, list.Flat, StringComparison.Ordinal);
        Assert.Contains("full", list.Output, StringComparison.Ordinal);
        Assert.Contains("incremental", list.Output, StringComparison.Ordinal);

        var status = await RunAsync("backup", "status", "--data", store.Data);
        Assert.True(status.ExitCode == 0, status.Output);
        Assert.Contains("status: ok", status.Flat, StringComparison.Ordinal);
        Assert.Contains("last good backup:", status.Flat, StringComparison.Ordinal);
        Assert.Contains("immutability: not supported by this target (folder)", status.Flat, StringComparison.Ordinal);

        var verify = await RunAsync("backup", "verify", "--data", store.Data, "--target", target);
        Assert.True(verify.ExitCode == 0, verify.Output);
        Assert.Contains("2 backups", verify.Flat, StringComparison.Ordinal);
        Assert.Contains("verified", verify.Flat, StringComparison.Ordinal);

        var drillsBefore = await CountAsync(store.Options, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'restore-drill'");
        var drill = await RunAsync("backup", "drill", "--data", store.Data, "--target", target);
        Assert.True(drill.ExitCode == 0, drill.Output);
        Assert.Contains("drill passed", drill.Flat, StringComparison.Ordinal);
        Assert.Contains("RTO", drill.Flat, StringComparison.Ordinal);
        Assert.Equal(drillsBefore + 1, await CountAsync(store.Options, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'restore-drill'"));
        Assert.Equal("passed", await ScalarAsync(store.Options, "SELECT status FROM backup_drills ORDER BY at DESC LIMIT 1"));

        var prune = await RunAsync("backup", "prune", "--data", store.Data, "--target", target);
        Assert.True(prune.ExitCode == 0, prune.Output);
        // Both backups fall in the same hour: retention keeps the newest of it, and the segments its chain still needs.
        Assert.Contains("kept 1 backups; removed 1 backups and 0 segments", prune.Flat, StringComparison.Ordinal);
        Assert.Contains("1 backups on", (await RunAsync("backup", "list", "--data", store.Data, "--target", target)).Flat, StringComparison.Ordinal);
        Assert.Equal(0, (await RunAsync("backup", "verify", "--data", store.Data, "--target", target)).ExitCode);
        var restore = await RunAsync("restore", "--from", target, "--to", Path.Combine(_folder, "restored"), "--keyring", store.Keyring);
        Assert.True(restore.ExitCode == 0, restore.Output);
        Assert.Contains("proven", restore.Flat, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(_folder, "restored", "wardline.db.restore-pending")), "a proven store keeps its restore mark");
        // The chain is the full backup's database image and the incremental's rows: the CLI says how long each took.
        Assert.Matches(@"the full backup as the database file in \d+\.\d s, [1-9]\d* rows of later backups and the final flush in \d+\.\d s\) in \d+\.\d s", restore.Flat);

        var ledger = await VerifyAsync(store.Options);
        Assert.True(ledger.ExitCode == 0, ledger.Output);
    }

    [Fact]
    public async Task Derived_rows_changed_behind_Wardlines_back_before_a_backup_are_named_by_restore_derived_and_fail_the_drill()
    {
        // A copy of the store whose condition was moved to another department by one UPDATE (no version touched), then backed up.
        var data = Path.Combine(_folder, "tampered");
        foreach (var file in Directory.EnumerateFiles(store.Data, "*", SearchOption.AllDirectories))
        {
            var copy = Path.Combine(data, Path.GetRelativePath(store.Data, file));
            Directory.CreateDirectory(Path.GetDirectoryName(copy)!);
            File.Copy(file, copy);
        }
        var options = new WardlineOptions { DataDirectory = data };
        var condition = (string)(await ScalarAsync(options, "SELECT res_id FROM resources WHERE res_type = 'Condition' AND deleted = 0 ORDER BY rid LIMIT 1"))!;
        Assert.Equal(1, await ExecAsync(options,
            "UPDATE access_facts SET department = 'oncology' WHERE rid = (SELECT rid FROM resources WHERE res_type = 'Condition' AND res_id = @id)", ("@id", condition)));
        var target = "file://" + Path.Combine(_folder, "tampered-target");
        var backup = await RunAsync("backup", "now", "--data", data, "--target", target);
        Assert.True(backup.ExitCode == 0, backup.Output);
        var keyring = Path.Combine(data, "keyring.json");

        // The ledger and every version are intact: without the derived check the restore is proven.
        var plain = await RunAsync("restore", "--from", target, "--to", Path.Combine(_folder, "plain"), "--keyring", keyring);
        Assert.True(plain.ExitCode == 0, plain.Output);
        var derived = await RunAsync("restore", "--from", target, "--to", Path.Combine(_folder, "derived"), "--keyring", keyring, "--derived");
        Assert.True(derived.ExitCode == 1, derived.Output);
        Assert.Contains($"Condition/{condition}: its access facts (department) are not what its content", derived.Flat, StringComparison.Ordinal);
        Assert.Contains("NOT proven", derived.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain("oncology", derived.Output, StringComparison.Ordinal);

        // Drills hold the derived rows to the content by default (Wardline:Backup:DrillDerived).
        var drill = await RunAsync("backup", "drill", "--data", data, "--target", target);
        Assert.True(drill.ExitCode != 0, drill.Output);
        Assert.Contains("access facts (department)", drill.Flat, StringComparison.Ordinal);
        Assert.Equal("failed", await ScalarAsync(options, "SELECT status FROM backup_drills ORDER BY at DESC LIMIT 1"));
    }

    [Fact]
    public async Task Restore_with_a_wrong_keyring_passphrase_exits_3_naming_the_keyring_and_writes_nothing()
    {
        const string passphrase = "the right passphrase for this keyring";
        var data = Path.Combine(_folder, "protected");
        var target = "file://" + Path.Combine(_folder, "target");
        Assert.Equal(0, (await RunAsync(Env(("WARDLINE_KEYRING_PASSPHRASE", passphrase)), "import", "--data", data, SyntheaSamples.Files[2])).ExitCode);
        Assert.Equal(0, (await RunAsync(Env(("WARDLINE_KEYRING_PASSPHRASE", passphrase)), "backup", "now", "--data", data, "--target", target)).ExitCode);
        var to = Path.Combine(_folder, "restored");
        var keyring = Path.Combine(data, "keyring.json");

        var wrong = await RunAsync(Env(("WARDLINE_KEYRING_PASSPHRASE", "not the passphrase at all")), "restore", "--from", target, "--to", to, "--keyring", keyring);
        var none = await RunAsync("restore", "--from", target, "--to", to, "--keyring", keyring);

        Assert.True(wrong.ExitCode == 3, wrong.Output);
        Assert.Contains("wrong passphrase", wrong.Flat, StringComparison.Ordinal);
        Assert.Contains(keyring, wrong.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain("not the passphrase at all", wrong.Output, StringComparison.Ordinal);
        Assert.True(none.ExitCode == 3, none.Output);
        Assert.Contains(keyring, none.Flat, StringComparison.Ordinal);
        Assert.False(Directory.Exists(to));

        var right = await RunAsync(Env(("WARDLINE_KEYRING_PASSPHRASE", passphrase)), "restore", "--from", target, "--to", to, "--keyring", keyring);
        Assert.True(right.ExitCode == 0, right.Output);
        Assert.Contains("proven", right.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Restore_into_a_store_that_is_not_empty_exits_2_and_leaves_it_as_it_was()
    {
        var before = await CountAsync(store.Options, "SELECT COUNT(*) FROM ledger_entries");
        var versions = await CountAsync(store.Options, "SELECT COUNT(*) FROM resource_versions");

        var result = await RunAsync("restore", "--from", Target, "--to", store.Data);

        Assert.True(result.ExitCode == 2, result.Output);
        Assert.Contains("not empty", result.Flat, StringComparison.Ordinal);
        Assert.Equal(before, await CountAsync(store.Options, "SELECT COUNT(*) FROM ledger_entries"));
        Assert.Equal(versions, await CountAsync(store.Options, "SELECT COUNT(*) FROM resource_versions"));
        Assert.Empty(Directory.GetFiles(store.Data, "*.damaged-*"));
    }

    [Fact]
    public async Task Restore_from_backups_made_with_another_keyring_is_refused_before_anything_is_written()
    {
        var other = Path.Combine(_folder, "other");
        Assert.Equal(0, (await RunAsync("users", "add", "other.admin", "--data", other)).ExitCode);
        var to = Path.Combine(_folder, "restored");

        var result = await RunAsync("restore", "--from", Target, "--to", to, "--keyring", Path.Combine(other, "keyring.json"));

        Assert.NotEqual(0, result.ExitCode);
        Assert.Contains("not signed by this keyring", result.Flat, StringComparison.Ordinal);
        Assert.Contains("another keyring", result.Flat, StringComparison.Ordinal);
        Assert.False(Directory.Exists(to));
        Assert.DoesNotContain("Exception", result.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("ftp://x", "scheme 'ftp'")]
    [InlineData("azure://devstoreaccount1/backups", "needs a connection string")]
    [InlineData("azure://", "names no container")]
    [InlineData("s3://bucket", "needs an access key")]
    [InlineData("file://relative/path", "not an absolute folder")]
    [InlineData("not a uri at all", "")]
    public async Task A_bad_target_exits_2_with_a_clear_message_and_writes_nothing(string uri, string message)
    {
        var to = Path.Combine(_folder, "restored");
        var runsBefore = await CountAsync(store.Options, "SELECT COUNT(*) FROM backup_runs");
        var bare = Env(("WARDLINE_BACKUP_AZURE_CONNECTION_STRING", null), ("AWS_ACCESS_KEY_ID", null), ("AWS_SECRET_ACCESS_KEY", null));

        foreach (var args in new[]
        {
            new[] { "backup", "now", "--data", store.Data, "--target", uri },
            ["backup", "list", "--data", store.Data, "--target", uri],
            ["backup", "verify", "--data", store.Data, "--target", uri],
            ["restore", "--from", uri, "--to", to, "--keyring", store.Keyring],
        })
        {
            var result = await RunAsync(bare, args);

            Assert.True(result.ExitCode == 2, $"{string.Join(' ', args)}: {result.Output}");
            Assert.Contains("error:", result.Flat, StringComparison.Ordinal);
            Assert.Contains(message, result.Flat, StringComparison.Ordinal);
            Assert.DoesNotContain("Exception", result.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("   at ", result.Output, StringComparison.Ordinal);
        }
        Assert.False(Directory.Exists(to));
        Assert.Equal(runsBefore, await CountAsync(store.Options, "SELECT COUNT(*) FROM backup_runs"));
    }

    [Theory]
    [InlineData("azure://devstoreaccount1/witness", "--witness: azure://devstoreaccount1/witness needs a connection string: set Wardline:Ledger:WitnessStore:AzureConnectionString.")]
    [InlineData("s3://witness-bucket", "set Wardline:Ledger:WitnessStore:S3AccessKey and S3SecretKey.")]
    [InlineData("ftp://witness", "--witness: Unknown backup target scheme 'ftp'")]
    public async Task A_bad_witness_is_refused_by_name_before_anything_is_restored(string witness, string message)
    {
        var target = new Uri(Path.Combine(_folder, "witness-case-target")).AbsoluteUri;
        var backup = await RunAsync("backup", "now", "--data", store.Data, "--target", target);
        Assert.True(backup.ExitCode == 0, backup.Output);
        var to = Path.Combine(_folder, "restored-" + Guid.NewGuid().ToString("N")[..8]);
        // The backup's own credentials in the environment are not the witness's.
        var env = Env(("WARDLINE_BACKUP_AZURE_CONNECTION_STRING", "UseDevelopmentStorage=true"), ("AWS_ACCESS_KEY_ID", "backup-key"), ("AWS_SECRET_ACCESS_KEY", "backup-secret"));

        var result = await RunAsync(env, ["restore", "--from", target, "--to", to, "--keyring", store.Keyring, "--witness", witness]);

        Assert.True(result.ExitCode == 2, result.Output);
        Assert.Contains(message, result.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain("Exception", result.Output, StringComparison.Ordinal);
        Assert.False(Directory.Exists(to));
    }

    [Fact]
    public async Task A_target_given_credentials_never_shows_them_whether_the_uri_is_bad_or_the_target_unreachable()
    {
        var config = await ConfigAsync(new { AzureConnectionString = $"DefaultEndpointsProtocol=http;AccountName=devstoreaccount1;AccountKey={SecretKey};BlobEndpoint=http://127.0.0.1:{ClosedPort()}/devstoreaccount1;", MaxRetries = 1 });
        var to = Path.Combine(_folder, "restored");

        var badUri = await RunAsync("backup", "now", "--data", store.Data, "--config", config, "--target", "azure://devstoreaccount1/x");
        var clock = Stopwatch.StartNew();
        var unreachable = await RunAsync("backup", "now", "--data", store.Data, "--config", config, "--target", "azure://devstoreaccount1/backups");
        var restore = await RunAsync("restore", "--from", "azure://devstoreaccount1/backups", "--config", config, "--to", to, "--keyring", store.Keyring);
        var elapsed = clock.Elapsed;

        Assert.True(badUri.ExitCode == 2, badUri.Output);
        Assert.Contains("not an Azure container name", badUri.Flat, StringComparison.Ordinal);
        Assert.True(unreachable.ExitCode == 1, unreachable.Output);
        Assert.Contains("backup failed", unreachable.Flat, StringComparison.Ordinal);
        Assert.Contains("did not answer", unreachable.Flat, StringComparison.Ordinal);
        Assert.Contains("no backup was marked complete", unreachable.Flat, StringComparison.Ordinal);
        Assert.True(restore.ExitCode == 5, restore.Output);
        Assert.Contains("Unreachable", restore.Flat, StringComparison.Ordinal);
        Assert.False(Directory.Exists(to));
        Assert.True(elapsed < TimeSpan.FromSeconds(60), $"two commands against a closed port took {elapsed}");
        foreach (var result in new[] { badUri, unreachable, restore })
        {
            Assert.DoesNotContain(SecretKey, result.Output, StringComparison.Ordinal);
            Assert.DoesNotContain(SecretKey[..16], result.Output, StringComparison.Ordinal);
            Assert.DoesNotContain("AccountKey", result.Output, StringComparison.Ordinal);
        }
        Assert.Equal(0, await CountAsync(store.Options, "SELECT COUNT(*) FROM backup_runs WHERE status = 'completed' AND target LIKE 'azure:%'"));
        Assert.Equal(0, await CountAsync(store.Options, "SELECT COUNT(*) FROM ledger_entries WHERE detail LIKE @k", ("@k", "%" + SecretKey[..16] + "%")));
    }

    [Theory]
    [InlineData("garbage", "is not a time")]
    [InlineData("2026-13-45T99:00:00Z", "is not a time")]
    [InlineData("1999-01-01T00:00:00Z", "holds no backup taken at or before")]
    public async Task Restore_at_a_time_that_is_not_a_time_or_before_every_backup_exits_2_and_writes_nothing(string at, string message)
    {
        var to = Path.Combine(_folder, "restored");

        var result = await RunAsync("restore", "--from", Target, "--to", to, "--keyring", store.Keyring, "--at", at);

        Assert.True(result.ExitCode == 2, result.Output);
        Assert.Contains(message, result.Flat, StringComparison.Ordinal);
        Assert.False(Directory.Exists(to));
    }

    [Fact]
    public async Task Restore_options_that_contradict_each_other_exit_2()
    {
        var to = Path.Combine(_folder, "restored");

        var both = await RunAsync("restore", "--from", Target, "--to", to, "--to-db", "Host=127.0.0.1", "--keyring", store.Keyring);
        var neither = await RunAsync("restore", "--from", Target, "--keyring", store.Keyring);
        var atAndSize = await RunAsync("restore", "--from", Target, "--to", to, "--keyring", store.Keyring, "--at", "2026-01-01T00:00:00Z", "--tree-size", "5");
        var negative = await RunAsync("restore", "--from", Target, "--to", to, "--keyring", store.Keyring, "--tree-size", "-1");
        var noKeyringForDb = await RunAsync("restore", "--from", Target, "--to-db", "Host=127.0.0.1");
        var missingKeyring = await RunAsync("restore", "--from", Target, "--to", to, "--keyring", Path.Combine(_folder, "nowhere.json"));

        foreach (var result in new[] { both, neither, atAndSize, negative, noKeyringForDb, missingKeyring })
        {
            Assert.True(result.ExitCode == 2, result.Output);
            Assert.DoesNotContain("Exception", result.Output, StringComparison.Ordinal);
        }
        Assert.Contains("exactly one of --to", both.Flat, StringComparison.Ordinal);
        Assert.Contains("at most one of --at and --tree-size", atAndSize.Flat, StringComparison.Ordinal);
        Assert.Contains("--keyring is required with --to-db", noKeyringForDb.Flat, StringComparison.Ordinal);
        Assert.Contains("nowhere.json", missingKeyring.Flat, StringComparison.Ordinal);
        Assert.False(Directory.Exists(to));
    }

    [Fact]
    public async Task Restore_into_an_empty_postgresql_database_with_to_db_and_keyring_is_proven()
    {
        await using var database = await TestStore.CreateAsync(StoreKind.Postgres);
        var witness = store.CopyWitness(Path.Combine(_folder, "witness"));

        var result = await RunAsync("restore", "--from", Target, "--to-db", database.PostgresConnectionString!, "--keyring", store.Keyring, "--witness", witness);

        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("verified against the witness folder", result.Flat, StringComparison.Ordinal);
        Assert.Contains("1 signed heads", result.Flat, StringComparison.Ordinal);
        Assert.Contains("proven", result.Flat, StringComparison.Ordinal);
        var restored = new WardlineOptions { PostgresConnectionString = database.PostgresConnectionString, KeyringPath = store.Keyring, Ledger = { WitnessPath = witness } };
        var backedUp = await CountAsync(store.Options, "SELECT COUNT(*) FROM resource_versions");
        Assert.Equal(backedUp, await CountAsync(restored, "SELECT COUNT(*) FROM resource_versions"));
        Assert.Equal(1, await CountAsync(restored, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'restore-completed' AND outcome = 'succeeded'"));
        Assert.Equal(0, await CountAsync(restored, "SELECT COUNT(*) FROM pg_tables WHERE tablename = 'restore_pending'"));
        var verify = await VerifyAsync(restored);
        Assert.True(verify.ExitCode == 0, verify.Output);
    }

    [Fact]
    public async Task A_restore_into_postgresql_that_stops_part_way_leaves_a_database_no_server_serves_and_no_restore_merges_into()
    {
        await using var database = await TestStore.CreateAsync(StoreKind.Postgres);
        var copy = store.CopyTarget(Path.Combine(_folder, "target"), rows: true);
        var segment = Directory.GetFiles(copy, "resources-*.seg", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First();
        var bytes = await File.ReadAllBytesAsync(segment);
        bytes[bytes.Length / 2] ^= 0x5a;
        await File.WriteAllBytesAsync(segment, bytes);
        var witness = store.CopyWitness(Path.Combine(_folder, "witness"));

        var stopped = await RunAsync("restore", "--from", "file://" + copy, "--to-db", database.PostgresConnectionString!, "--keyring", store.Keyring, "--witness", witness);
        var again = await RunAsync("restore", "--from", Target, "--to-db", database.PostgresConnectionString!, "--keyring", store.Keyring, "--witness", witness);

        Assert.NotEqual(0, stopped.ExitCode);
        var options = new WardlineOptions
        {
            PostgresConnectionString = database.PostgresConnectionString, KeyringPath = store.Keyring, Urls = { "http://127.0.0.1:0" },
            Ledger = { WitnessPath = witness }, Access = { PolicyPath = TestServer.AllAccessPolicy },
        };
        Assert.Equal(1, await CountAsync(options, "SELECT COUNT(*) FROM restore_pending"));
        var app = WardlineHost.Build(options);
        try
        {
            var refused = await Assert.ThrowsAsync<Wardline.Server.Modules.Backup.BackupRefusedException>(() => app.StartAsync());
            Assert.Contains("holds an unfinished restore", refused.Message, StringComparison.Ordinal);
            Assert.Contains("Drop and re-create the database", refused.Message, StringComparison.Ordinal);
            Assert.Contains("the table restore_pending", refused.Message, StringComparison.Ordinal);
        }
        finally
        {
            await app.DisposeAsync();
        }
        Assert.Equal(2, again.ExitCode);
        Assert.Contains("the destination is not empty", again.Flat, StringComparison.Ordinal);
        Assert.Contains("holds an unfinished restore", again.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_escrowed_keyring_restores_into_a_new_folder_with_the_escrow_passphrase()
    {
        const string passphrase = "an escrow passphrase kept in the key safe";
        var escrow = Path.Combine(_folder, "escrow.json");
        var to = Path.Combine(_folder, "new-site");
        var witness = store.CopyWitness(Path.Combine(_folder, "witness"));
        var escrowed = await RunAsync(Env(("WARDLINE_ESCROW_PASSPHRASE", passphrase)), "keys", "escrow", "--data", store.Data, "--out", escrow);
        Assert.True(escrowed.ExitCode == 0, escrowed.Output);

        var withoutPassphrase = await RunAsync("restore", "--from", Target, "--to", to, "--keyring", escrow);
        // The escrow passphrase is also given as the keyring's: the restore's verification opens the restored store, whose
        // keyring is now the escrow copy, with WARDLINE_KEYRING_PASSPHRASE only (reported: it should take the escrow one too).
        var result = await RunAsync(Env(("WARDLINE_ESCROW_PASSPHRASE", passphrase), ("WARDLINE_KEYRING_PASSPHRASE", passphrase)), "restore", "--from", Target, "--to", to, "--keyring", escrow, "--witness", witness);

        Assert.True(withoutPassphrase.ExitCode == 3, withoutPassphrase.Output);
        Assert.True(result.ExitCode == 0, result.Output);
        Assert.Contains("proven", result.Flat, StringComparison.Ordinal);
        Assert.True(File.Exists(Path.Combine(to, "keyring.json")));
        Assert.DoesNotContain(passphrase, result.Output, StringComparison.Ordinal);
        var restored = new WardlineOptions { DataDirectory = to };
        Assert.Equal(await CountAsync(store.Options, "SELECT COUNT(*) FROM resource_versions"), await CountAsync(restored, "SELECT COUNT(*) FROM resource_versions"));
        var verify = await RunAsync(Env(("WARDLINE_KEYRING_PASSPHRASE", passphrase)), "ledger", "verify", "--data", to, "--witness", witness);
        Assert.True(verify.ExitCode == 0, verify.Output);
    }

    [Fact]
    public async Task A_corrupted_segment_is_named_by_verify_and_stops_the_restore()
    {
        var copy = store.CopyTarget(Path.Combine(_folder, "target"), rows: true);
        var segment = Directory.GetFiles(copy, "resources-*.seg", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First();
        var name = Path.GetRelativePath(copy, segment).Replace('\\', '/');
        var bytes = await File.ReadAllBytesAsync(segment);
        bytes[bytes.Length / 2] ^= 0x5a;
        await File.WriteAllBytesAsync(segment, bytes);
        var to = Path.Combine(_folder, "restored");

        var verify = await RunAsync("backup", "verify", "--data", store.Data, "--target", "file://" + copy);
        var restore = await RunAsync("restore", "--from", "file://" + copy, "--to", to, "--keyring", store.Keyring);
        var skipping = await RunAsync("restore", "--from", "file://" + copy, "--to", Path.Combine(_folder, "skipped"), "--keyring", store.Keyring, "--skip-damaged");

        Assert.True(verify.ExitCode == 1, verify.Output);
        Assert.Contains(name, verify.Flat, StringComparison.Ordinal);
        Assert.Contains("SHA-256", verify.Flat, StringComparison.Ordinal);
        Assert.NotEqual(0, restore.ExitCode);
        Assert.Contains(name, restore.Flat, StringComparison.Ordinal);
        Assert.Contains("--skip-damaged", restore.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain("proven: ", restore.Flat, StringComparison.Ordinal);
        Assert.Equal(1, skipping.ExitCode);
        Assert.Contains("missing: segment " + name, skipping.Flat, StringComparison.Ordinal);
        Assert.Contains("NOT proven", skipping.Flat, StringComparison.Ordinal);

        // Neither store is served: the stopped restore's is unfinished, the skipping one's not proven.
        await AssertNotServedAsync(to, "an unfinished restore");
        await AssertNotServedAsync(Path.Combine(_folder, "skipped"), "a restore whose proof failed");

        // The same restore from the intact target into the stopped one's folder sets its store aside and is proven; then it is served.
        var again = await RunAsync("restore", "--from", Target, "--to", to, "--keyring", store.Keyring);
        Assert.True(again.ExitCode == 0, again.Output);
        Assert.Contains("held an earlier restore that was not proven; moved aside as *.unfinished-", again.Flat, StringComparison.Ordinal);
        Assert.Contains("proven: the restored store is the unaltered data", again.Flat, StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(to, "wardline.db.restore-pending")));
        Assert.Single(Directory.GetFiles(to, "wardline.db.restore-pending.unfinished-*"));
        Assert.Single(Directory.GetFiles(to, "wardline.db.unfinished-*"));
        await using (var served = await TestServer.StartAsync(new WardlineOptions { DataDirectory = to }))
        {
            Assert.True((await served.Client.GetAsync("metadata")).IsSuccessStatusCode);
        }
    }

    [Fact]
    public async Task A_restore_into_a_folder_another_restore_holds_is_refused_and_moves_nothing()
    {
        var to = Path.Combine(_folder, "held");
        Directory.CreateDirectory(to);
        var destroyed = Path.Combine(to, "wardline.db");
        await File.WriteAllTextAsync(destroyed, "encrypted by ransomware");
        var files = Directory.GetFiles(to).Order(StringComparer.Ordinal).ToList();

        CliResult refused;
        // The other restore: the lock it takes on the folder (an exclusive advisory lock, as the CLI takes it).
        using (new FileStream(Path.Combine(to, "wardline.db.restore-lock"), FileMode.OpenOrCreate, FileAccess.ReadWrite, FileShare.None))
        {
            refused = await RunAsync("restore", "--from", Target, "--to", to, "--keyring", store.Keyring);
        }
        var left = Directory.GetFiles(to).Order(StringComparer.Ordinal).ToList();
        var untouched = await File.ReadAllTextAsync(destroyed);
        var after = await RunAsync("restore", "--from", Target, "--to", to, "--keyring", store.Keyring);

        Assert.True(refused.ExitCode == 2, refused.Output);
        Assert.Contains("another restore into " + to + " is running", refused.Flat, StringComparison.Ordinal);
        Assert.Equal([.. files, Path.Combine(to, "wardline.db.restore-lock")], left);
        Assert.Equal("encrypted by ransomware", untouched);
        Assert.True(after.ExitCode == 0, after.Output);
        Assert.Contains("is not a database any more; moved aside", after.Flat, StringComparison.Ordinal);
        Assert.Contains("proven: the restored store is the unaltered data", after.Flat, StringComparison.Ordinal);
    }

    /// <summary>A server started on the store in <paramref name="data"/> refuses to start, saying why.</summary>
    private static async Task AssertNotServedAsync(string data, string why)
    {
        Assert.True(File.Exists(Path.Combine(data, "wardline.db.restore-pending")), "the store is not marked");
        var keyring = Path.Combine(data, "keyring.json");
        var hadKeyring = File.Exists(keyring);
        var options = new WardlineOptions { DataDirectory = data, Urls = { "http://127.0.0.1:0" } };
        options.Access.PolicyPath = TestServer.AllAccessPolicy;
        var refused = Assert.Throws<Wardline.Server.Modules.Backup.BackupRefusedException>(() => WardlineHost.Build(options));
        Assert.Contains(why, refused.Message, StringComparison.Ordinal);
        Assert.Contains("is not served", refused.Message, StringComparison.Ordinal);
        // Through the CLI, as an operator meets it: no server, and no command that would back the store up or write to it.
        var serve = await RunAsync("serve", "--data", data, "--urls", "http://127.0.0.1:0");
        Assert.True(serve.ExitCode == 2, serve.Output);
        Assert.Contains(why, serve.Flat, StringComparison.Ordinal);
        var backup = await RunAsync("backup", "now", "--data", data, "--target", "file://" + Path.Combine(data, "..", "never-written"));
        Assert.True(backup.ExitCode == 2, backup.Output);
        Assert.Contains(why, backup.Flat, StringComparison.Ordinal);
        Assert.Contains("Run `wardline restore` again into this folder", backup.Flat, StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(data, "..", "never-written")));
        Assert.True(File.Exists(keyring) == hadKeyring, "the refused server made a keyring beside the store");
    }

    [Fact]
    public async Task A_truncated_ledger_segment_is_named_by_verify_and_stops_the_restore()
    {
        var copy = store.CopyTarget(Path.Combine(_folder, "target"), rows: true);
        var segment = Directory.GetFiles(copy, "ledger-*.seg", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First();
        var name = Path.GetRelativePath(copy, segment).Replace('\\', '/');
        var bytes = await File.ReadAllBytesAsync(segment);
        await File.WriteAllBytesAsync(segment, bytes[..(bytes.Length / 3)]);

        var verify = await RunAsync("backup", "verify", "--data", store.Data, "--target", "file://" + copy);
        var restore = await RunAsync("restore", "--from", "file://" + copy, "--to", Path.Combine(_folder, "restored"), "--keyring", store.Keyring);

        Assert.True(verify.ExitCode == 1, verify.Output);
        Assert.Contains(name, verify.Flat, StringComparison.Ordinal);
        Assert.NotEqual(0, restore.ExitCode);
        Assert.Contains(name, restore.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain("proven: ", restore.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_damaged_piece_of_the_database_image_is_named_and_stops_even_a_restore_told_to_skip()
    {
        var copy = store.CopyTarget(Path.Combine(_folder, "target"));
        var piece = Directory.GetFiles(copy, "image-*.seg", SearchOption.AllDirectories).Order(StringComparer.Ordinal).First();
        var name = Path.GetRelativePath(copy, piece).Replace('\\', '/');
        var bytes = await File.ReadAllBytesAsync(piece);
        bytes[bytes.Length / 2] ^= 0x5a;
        await File.WriteAllBytesAsync(piece, bytes);

        var verify = await RunAsync("backup", "verify", "--data", store.Data, "--target", "file://" + copy);
        var skipping = await RunAsync("restore", "--from", "file://" + copy, "--to", Path.Combine(_folder, "skipped"), "--keyring", store.Keyring, "--skip-damaged");

        Assert.True(verify.ExitCode == 1, verify.Output);
        Assert.Contains(name, verify.Flat, StringComparison.Ordinal);
        Assert.Contains("database image", verify.Flat, StringComparison.Ordinal);
        Assert.NotEqual(0, skipping.ExitCode);
        Assert.Contains(name, skipping.Flat, StringComparison.Ordinal);
        Assert.Contains("cannot be restored in part", skipping.Flat, StringComparison.Ordinal);
        Assert.DoesNotContain("proven: ", skipping.Flat, StringComparison.Ordinal);
        // The pieces before the damaged one were written into the database file: no server serves what is there.
        await AssertNotServedAsync(Path.Combine(_folder, "skipped"), "an unfinished restore");
    }

    private async Task<string> ConfigAsync(object backupStore)
    {
        var path = Path.Combine(_folder, "wardline.json");
        await File.WriteAllTextAsync(path, JsonSerializer.Serialize(new { Wardline = new { Backup = new { Store = backupStore } } }));
        return path;
    }

    private static int ClosedPort()
    {
        // A port that was free a moment ago and that nothing listens on now.
        return FreePort.Next();
    }

    private static Dictionary<string, string?> Env(params (string Name, string? Value)[] variables) => variables.ToDictionary(v => v.Name, v => v.Value);

    private static Task<CliResult> RunAsync(params string[] args) => RunAsync([], args);

    /// <summary>Runs `wardline` with environment variables set (a null value removes one the tests inherited).</summary>
    private static async Task<CliResult> RunAsync(Dictionary<string, string?> environment, params string[] args)
    {
        var psi = WardlineCli.StartInfo(args);
        foreach (var (name, value) in environment)
        {
            psi.Environment.Remove(name);
            if (value is not null) psi.Environment[name] = value;
        }
        using var process = Process.Start(psi) ?? throw new InvalidOperationException("dotnet did not start");
        var output = new StringBuilder();
        var gate = new object();
        process.OutputDataReceived += (_, e) => { if (e.Data is not null) lock (gate) output.AppendLine(e.Data); };
        process.ErrorDataReceived += (_, e) => { if (e.Data is not null) lock (gate) output.AppendLine(e.Data); };
        process.BeginOutputReadLine();
        process.BeginErrorReadLine();
        using var timeout = new CancellationTokenSource(TimeSpan.FromMinutes(3));
        try
        {
            await process.WaitForExitAsync(timeout.Token);
        }
        catch (OperationCanceledException)
        {
            process.Kill(entireProcessTree: true);
            throw new TimeoutException($"wardline {string.Join(' ', args)} did not finish in time. Output so far:\n{output}");
        }
        process.WaitForExit();
        lock (gate) return new CliResult(process.ExitCode, output.ToString());
    }
}
