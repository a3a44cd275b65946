using System.CommandLine;
using System.Globalization;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging.Abstractions;
using Spectre.Console;
using Wardline.Backup;
using Wardline.Crypto;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Cli;

/// <summary><c>wardline backup now|list|status|verify|drill|prune</c> and <c>wardline restore</c> (docs/operations/backup.md).</summary>
internal static class BackupCommand
{
    private static Option<string?> TargetOption() => new("--target")
    {
        Description = "Backup target: file:///path, azure://account/container[/prefix] or s3://bucket[/prefix] (default: Wardline:Backup:Target). Credentials come from the config file or the environment, never the command line.",
    };

    public static Command Create()
    {
        var command = new Command("backup", "Encrypted, incremental backups of the store to a folder, Azure Blob Storage or S3.");
        command.Subcommands.Add(Now());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Status());
        command.Subcommands.Add(Verify());
        command.Subcommands.Add(Drill());
        command.Subcommands.Add(Prune());
        return command;
    }

    private static Command Now()
    {
        var full = new Option<bool>("--full") { Description = "Take a full backup (a new chain) rather than shipping only what is new." };
        return TargetCommand("now", "Back up what is new since the last backup on the target (or everything, with --full).", async (parse, options, backupStore, ct) =>
        {
            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var result = await WithProgressAsync("backing up", p => sp.GetRequiredService<BackupWriter>().RunAsync(backupStore, options.Backup, parse.GetValue(full), "cli", p, ct));
            var recorder = sp.GetRequiredService<LedgerRecorder>();
            if (result.Status == "failed")
            {
                await recorder.RecordSystemAsync("backup-failed", "operator", "failed", $"backup {result.RunId} to {result.Target} failed: {result.Error}", ct);
                AnsiConsole.MarkupLine($"[red]backup failed[/]: {Markup.Escape(result.Error ?? "")}");
                AnsiConsole.MarkupLine("no backup was marked complete; segments already stored are reused by the next run");
                return 1;
            }
            if (result.Status == "unchanged")
            {
                AnsiConsole.MarkupLine($"nothing new since backup {Markup.Escape(result.Manifest!.Id)} ({result.Manifest.LedgerSize} ledger entries)");
                return 0;
            }
            await recorder.RecordSystemAsync("backup-completed", "operator", "succeeded",
                $"{result.Kind} backup {result.RunId} to {result.Target}: entries up to {result.Manifest!.LedgerSize}, {result.Stored} objects stored ({result.StoredBytes} bytes), {result.Reused} reused", ct);
            AnsiConsole.MarkupLine($"[green]{result.Kind} backup {Markup.Escape(result.RunId)}[/] to {Markup.Escape(result.Target)}: ledger entries {result.Manifest.LedgerFrom}..{result.Manifest.LedgerSize}, " +
                $"{result.Stored} objects stored ({Bytes(result.StoredBytes)}), {result.Reused} reused, {result.Elapsed.TotalSeconds:0.0} s");
            if (result.FullBecause is { } why) AnsiConsole.MarkupLine($"a new chain: {Markup.Escape(why)}");
            AnsiConsole.MarkupLine($"immutability: {Markup.Escape(backupStore.Immutability.Description)}");
            return 0;
        }, full);
    }

    private static Command List()
    {
        return TargetCommand("list", "List the backups on the target: when, full or incremental, up to which ledger entry, and their size.", async (parse, options, backupStore, ct) =>
        {
            var keyring = LoadKeyring(options.KeyringFile());
            var authenticator = new ContentAuthenticator(keyring, BackupCatalog.ManifestPurpose);
            var names = await BackupCatalog.ManifestNamesAsync(backupStore, ct);
            var table = new Table().AddColumns("backup", "taken (UTC)", "kind", "ledger entries", "objects", "size");
            foreach (var name in names)
            {
                try
                {
                    var m = await BackupCatalog.ReadAsync(backupStore, authenticator, name, ct);
                    table.AddRow(Markup.Escape(m.Id), m.Created.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss", CultureInfo.InvariantCulture), m.Kind,
                        m.LedgerSize.ToString(CultureInfo.InvariantCulture), m.Objects.Count.ToString(CultureInfo.InvariantCulture), Bytes(m.Objects.Sum(o => o.Bytes)));
                }
                catch (Wardline.Backup.Format.BackupFormatException ex)
                {
                    table.AddRow(Markup.Escape(name), "", "[red]unreadable[/]", "", "", Markup.Escape(ex.Message));
                }
            }
            AnsiConsole.Write(table);
            AnsiConsole.MarkupLine($"{names.Count} backups on {Markup.Escape(backupStore.Display)}");
            return 0;
        });
    }

    private static Command Status()
    {
        var store = new StoreArgs();
        var command = new Command("status", "The age of the last good backup, the last attempt, recent runs and restore drills.");
        store.AddTo(command);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var options = store.Resolve(parse);
            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var view = await sp.GetRequiredService<BackupStatus>().ReadAsync(10, ct);
            var colour = view.Health == "ok" ? "green" : "red";
            AnsiConsole.MarkupLine($"target: {Markup.Escape(view.Target ?? "(none configured)")}; status: [{colour}]{Markup.Escape(view.Health)}[/]");
            AnsiConsole.MarkupLine(view.LastGood is { } good
                ? $"last good backup: [{colour}]{Age(view.LastGoodAgeSeconds!.Value)} ago[/] ({Markup.Escape(good.Id)}, {good.Kind}, ledger entries up to {good.LedgerSize})"
                : "[red]no backup has completed[/]");
            if (view.LastAttempt is { Status: "failed" } failed) AnsiConsole.MarkupLine($"last attempt failed: {Markup.Escape(failed.Error ?? "")}");
            if (view.Immutability is { } immutability) AnsiConsole.MarkupLine($"immutability: {Markup.Escape(immutability)}");
            var runs = new Table().AddColumns("run", "target", "kind", "status", "entries", "stored", "reused");
            foreach (var r in view.History)
                runs.AddRow(Markup.Escape(r.Id), Markup.Escape(r.Target), r.Kind, r.Status, $"{r.LedgerFrom}..{r.LedgerSize}", Bytes(r.StoredBytes), r.Reused.ToString(CultureInfo.InvariantCulture));
            AnsiConsole.Write(runs);
            var drills = new Table().AddColumns("drill", "status", "RTO", "RPO", "entries", "versions");
            foreach (var d in view.Drills)
                drills.AddRow(Markup.Escape(d.Id), d.Status, $"{d.RtoMs / 1000.0:0.0} s", $"{d.RpoMs / 1000.0:0.0} s", d.LedgerSize.ToString(CultureInfo.InvariantCulture), d.Versions.ToString(CultureInfo.InvariantCulture));
            AnsiConsole.Write(drills);
            return view.Health == "ok" ? 0 : 1;
        }));
        return command;
    }

    private static Command Verify()
    {
        return TargetCommand("verify", "Read every backup on the target back: each manifest's signature, and every segment's size, SHA-256, encryption and content. Exit code 1 names what is wrong.", async (parse, options, backupStore, ct) =>
        {
            var keyring = LoadKeyring(options.KeyringFile());
            var report = await WithProgressAsync("reading back", p => BackupChecker.CheckAsync(backupStore, keyring, p, ct));
            AnsiConsole.MarkupLine($"{report.Manifests} backups, {report.Objects} segments ({Bytes(report.Bytes)}) read back from {Markup.Escape(backupStore.Display)}");
            if (report.Problems.Count == 0)
            {
                AnsiConsole.MarkupLine("[green]verified[/]: every manifest is signed by this keyring and every segment is intact");
                return 0;
            }
            foreach (var p in report.Problems) AnsiConsole.MarkupLine($"[red]problem[/]: {Markup.Escape(p)}");
            return 1;
        });
    }

    private static Command Drill()
    {
        return TargetCommand("drill", "Restore the newest backup into a scratch store, verify it, and record the recovery time and point in the ledger.", async (parse, options, backupStore, ct) =>
        {
            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var result = await WithProgressAsync("restore drill", p => sp.GetRequiredService<BackupDrills>().RunAsync(backupStore, options.Backup, "operator", p, ct));
            var colour = result.Status == "passed" ? "green" : "red";
            AnsiConsole.MarkupLine($"drill [{colour}]{result.Status}[/]: backup {Markup.Escape(result.Manifest ?? "none")}; {result.LedgerSize} entries and {result.Versions} versions verified" +
                (options.Backup.DrillDerived ? ", with every resource's access facts, care relations and search index" : "") + "; " +
                $"RTO {result.RtoMs / 1000.0:0.0} s (restore {result.RestoreMs / 1000.0:0.0} s + verify {result.VerifyMs / 1000.0:0.0} s), RPO {result.RpoMs / 1000.0:0.0} s");
            foreach (var p in result.Problems) AnsiConsole.MarkupLine($"[red]problem[/]: {Markup.Escape(p)}");
            return result.Status == "passed" ? 0 : 1;
        });
    }

    private static Command Prune()
    {
        return TargetCommand("prune", "Apply the retention policy (Wardline:Backup:Retention): remove backups and segments no kept backup needs. Objects the target holds locked stay.", async (parse, options, backupStore, ct) =>
        {
            var keyring = LoadKeyring(options.KeyringFile());
            var report = await BackupRetention.PruneAsync(backupStore, keyring, options.Backup.Retention, ct);
            AnsiConsole.MarkupLine($"kept {report.ManifestsKept} backups; removed {report.ManifestsRemoved} backups and {report.ObjectsRemoved} segments; {report.Locked} objects kept because the target holds them locked");
            if (report.RunningBackup is { } lease)
                AnsiConsole.MarkupLine($"[yellow]a backup is running on the target[/] ({Markup.Escape(lease)}): no segment was removed, since it may be reusing ones no backup lists yet; prune again once it has ended");
            return 0;
        });
    }

    /// <summary>A subcommand on a store (--data, --db, --config, ...) and a backup target (--target or Wardline:Backup:Target).</summary>
    private static Command TargetCommand(string name, string description, Func<System.CommandLine.ParseResult, WardlineOptions, IBackupStore, CancellationToken, Task<int>> body, params Option[] extra)
    {
        var store = new StoreArgs();
        var target = TargetOption();
        var command = new Command(name, description);
        store.AddTo(command);
        command.Options.Add(target);
        foreach (var o in extra) command.Options.Add(o);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var options = store.Resolve(parse);
            await using var backupStore = OpenTarget(parse.GetValue(target), options);
            return await body(parse, options, backupStore, ct);
        }));
        return command;
    }

    /// <summary><c>wardline restore</c>: a backup into an empty store, then proof that it is the data the backup held.</summary>
    public static Command Restore()
    {
        var from = new Option<string>("--from") { Description = "The backup target to restore from (file:///, azure://, s3://).", Required = true };
        var toDir = new Option<string?>("--to") { Description = "Folder of the embedded store to restore into: a new folder, or the folder of a store whose database files were destroyed (damaged files are moved aside, never deleted)." };
        var toDb = new Option<string?>("--to-db") { Description = "An empty PostgreSQL database to restore into (connection string); needs --keyring." };
        var keyringOpt = new Option<string?>("--keyring") { Description = "The keyring (or its escrow copy) that made the backup; default keyring.json in the --to folder. Its passphrase comes from WARDLINE_KEYRING_PASSPHRASE or WARDLINE_ESCROW_PASSPHRASE." };
        var witnessOpt = new Option<string?>("--witness")
        {
            Description = "The witness of the signed tree heads to verify against: a folder, or a blob container or bucket (azure://, s3://, file:///; credentials as Wardline:Ledger:WitnessStore). " +
                "Default: Wardline:Ledger:WitnessTarget from --config, else witness in the --to folder, if there is one.",
        };
        var adopt = new Option<bool>("--adopt-witness")
        {
            Description = "The --witness is the restored store's own (PostgreSQL, or a witness kept outside the data folder): after a proven restore its heads beyond the backup are set aside (never deleted) so the store can take writes. " +
                "Without it only the --to folder's own witness is re-based; any other (given, or configured in --config) is only read.",
        };
        var at = new Option<string?>("--at") { Description = "Restore the newest backup taken at or before this time (ISO 8601, e.g. 2026-11-29T06:00:00Z)." };
        var treeSize = new Option<long?>("--tree-size") { Description = "Restore the newest backup whose ledger has at most this many entries." };
        var skip = new Option<bool>("--skip-damaged") { Description = "Go on past a missing or corrupted segment and report exactly what is missing (the result then fails verification)." };
        var config = new Option<FileInfo?>("--config") { Description = "JSON configuration file with a \"Wardline\" section (for the target's credentials)." };
        var derived = new Option<bool>("--derived")
        {
            Description = "Also hold each restored resource's access facts, care relations and search index to its content, as 'ledger verify --derived' does " +
                "(about a minute more per million resources; the access settings come from --config). A backup of a store whose derived rows were changed behind Wardline's back carries the change: only this finds it.",
        };
        var command = new Command("restore", "Restore a backup into an empty SQLite or PostgreSQL store and verify it against the ledger and the witness's signed heads. Exit code 1 names what differs.");
        foreach (var o in new Option[] { from, toDir, toDb, keyringOpt, witnessOpt, adopt, at, treeSize, skip, config, derived }) command.Options.Add(o);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var dir = parse.GetValue(toDir) is { } d ? Path.GetFullPath(d) : null;
            var db = parse.GetValue(toDb);
            if ((dir is null) == (db is null)) throw new CliException("Give exactly one of --to FOLDER and --to-db CONNECTION-STRING.");
            if (parse.GetValue(at) is not null && parse.GetValue(treeSize) is not null) throw new CliException("Give at most one of --at and --tree-size.");
            DateTimeOffset? atTime = null;
            if (parse.GetValue(at) is { } atText)
            {
                if (!DateTimeOffset.TryParse(atText, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal, out var t)) throw new CliException($"--at '{atText}' is not a time (use ISO 8601, e.g. 2026-11-29T06:00:00Z).");
                atTime = t;
            }
            if (parse.GetValue(treeSize) is < 0) throw new CliException("--tree-size cannot be negative.");
            var keyringPath = parse.GetValue(keyringOpt) is { } k ? Path.GetFullPath(k) : dir is not null ? Path.Combine(dir, "keyring.json") : throw new CliException("--keyring is required with --to-db.");
            if (!File.Exists(keyringPath)) throw new CliException($"There is no keyring at {keyringPath}: give the keyring (or its escrow copy) that made the backup with --keyring.");
            var keyring = LoadKeyring(keyringPath);
            // The restored store is opened below as the server opens it (WARDLINE_KEYRING_PASSPHRASE): an escrow copy's
            // passphrase serves for the rest of this process.
            if (Environment.GetEnvironmentVariable("WARDLINE_KEYRING_PASSPHRASE") is null && Environment.GetEnvironmentVariable("WARDLINE_ESCROW_PASSPHRASE") is { } escrowPassphrase)
                Environment.SetEnvironmentVariable("WARDLINE_KEYRING_PASSPHRASE", escrowPassphrase);
            var options = new WardlineOptions();
            // Credentials from the --config file and WARDLINE__* variables, as every store command reads them (the witness's,
            // Wardline:Ledger:WitnessStore, come from nowhere else).
            var builder = new ConfigurationBuilder();
            if (parse.GetValue(config) is { } file)
            {
                if (!file.Exists) throw new CliException($"The configuration file {file.FullName} does not exist.");
                builder.AddJsonFile(file.FullName, optional: false);
            }
            var configuration = builder.AddEnvironmentVariables("WARDLINE__").Build();
            configuration.GetSection(WardlineOptions.Section).Bind(options);
            configuration.Bind(options);
            await using var backupStore = OpenTarget(parse.GetValue(from), options);

            // The witness the restore is proven against, checked before any work: a blob container or bucket, or a folder;
            // given, else the one the --config file configures, else the --to folder's own.
            var witnessArg = parse.GetValue(witnessOpt);
            var witnessUri = witnessArg is not null ? (witnessArg.Contains("://", StringComparison.Ordinal) ? witnessArg : null) : options.Ledger.WitnessTarget;
            var witnessDir = witnessUri is not null ? null
                : witnessArg is { } w ? Path.GetFullPath(w)
                : options.Ledger.WitnessPath is { } configuredPath ? Path.GetFullPath(configuredPath)
                : dir is not null && File.Exists(Path.Combine(dir, "witness", "key.pub")) ? Path.Combine(dir, "witness") : null;
            IAdoptableWitness? witness;
            try
            {
                witness = witnessUri is not null ? (IAdoptableWitness)options.Ledger.OpenWitness(witnessUri, TimeProvider.System)
                    : witnessDir is null ? null : new FolderWitness(witnessDir);
            }
            catch (ArgumentException ex)
            {
                throw new CliException($"--witness: {ex.Message}");
            }
            await using var witnessLease = witness as IAsyncDisposable;
            using var folderLease = witness as IDisposable;

            // Before any work: the right keyring, a backup to restore, and every key it needs.
            var manifest = await BackupRestorer.ChooseAsync(backupStore, new ContentAuthenticator(keyring, BackupCatalog.ManifestPurpose), atTime, parse.GetValue(treeSize), ct,
                reason => AnsiConsole.MarkupLine($"[yellow]passed over[/]: {Markup.Escape(reason)}"));
            BackupRestorer.CheckKeys(manifest, keyring);
            AnsiConsole.MarkupLine($"restoring backup {Markup.Escape(manifest.Id)} ({manifest.Kind}, taken {manifest.Created.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC, {manifest.LedgerSize} ledger entries) from {Markup.Escape(backupStore.Display)}");

            var dbFile = dir is null ? null : Path.Combine(dir, "wardline.db");
            if (dir is not null) Directory.CreateDirectory(dir);
            // Held until the proof is done and recorded: a second restore into the folder is refused, not let loose on this one's files.
            using var folderLock = dbFile is null ? null : RestoreMarker.LockFolder(dbFile);
            SqlDialect target;
            if (dbFile is not null)
            {
                MoveAsideDamaged(dbFile);
                target = SqlDialect.Sqlite(dbFile);
            }
            else target = SqlDialect.Postgres(db!);
            RestoreReport report;
            await using (target)
            {
                report = await WithProgressAsync("restoring", p => BackupRestorer.RestoreAsync(backupStore, manifest, target, new EnvelopeCipher(keyring), parse.GetValue(skip), p, ct));
            }
            AnsiConsole.MarkupLine(report.Manifest.Objects.Any(o => o.Kind == Wardline.Backup.Format.ManifestObject.ImageKind) && target.InProcess
                ? $"restored {report.Objects} segments ({Bytes(report.Bytes)}; the full backup as the database file in {report.ImageElapsed.TotalSeconds:0.0} s, {report.Rows} rows of later backups and the final flush in {(report.Elapsed - report.ImageElapsed).TotalSeconds:0.0} s) in {report.Elapsed.TotalSeconds:0.0} s"
                : $"restored {report.Objects} segments, {report.Rows} rows ({Bytes(report.Bytes)}) in {report.Elapsed.TotalSeconds:0.0} s");
            foreach (var damaged in report.Damaged) AnsiConsole.MarkupLine($"[red]missing[/]: {Markup.Escape(damaged)}");

            if (dir is not null && parse.GetValue(keyringOpt) is not null && !File.Exists(Path.Combine(dir, "keyring.json")))
            {
                File.Copy(keyringPath, Path.Combine(dir, "keyring.json"));
                AnsiConsole.MarkupLine("the keyring was copied into the store folder (keep the escrow copy in the key safe; serve with its passphrase in WARDLINE_KEYRING_PASSPHRASE)");
            }
            var restoredOptions = new WardlineOptions { DataDirectory = dir, PostgresConnectionString = db, KeyringPath = dir is null ? keyringPath : null };
            if (witnessUri is not null)
            {
                restoredOptions.Ledger.WitnessTarget = witnessUri;
                restoredOptions.Ledger.WitnessStore = options.Ledger.WitnessStore;
            }
            else if (witnessDir is not null) restoredOptions.Ledger.WitnessPath = witnessDir;
            else if (db is not null) restoredOptions.Ledger.WitnessPath = Path.Combine(Path.GetTempPath(), "wardline-no-witness");
            await using var sp = await StoreArgs.OpenAsync(restoredOptions, ct, unproven: true);
            var withDerived = parse.GetValue(derived);
            var verdict = await WithProgressAsync("verifying", _ => RestoreCheck.VerifyAsync(sp.GetRequiredService<SqlDialect>(), new RecordKeys(keyring, null, NullLogger<RecordKeys>.Instance),
                witness, manifest, ct, withDerived ? new Wardline.Server.Modules.Access.Facts.FactsExtractor(options.Access) : null));
            AnsiConsole.MarkupLine($"verified against the {Markup.Escape(verdict.WitnessDescription)}: {verdict.Report.Size} ledger entries, {verdict.Report.HeadsChecked} signed heads, {verdict.Report.VersionsChecked} resource versions" +
                (withDerived ? ", and every present resource's access facts, care relations and search index" : "") + $" in {verdict.Report.Elapsed.TotalSeconds:0.0} s");
            if (verdict.WitnessBeyond is { } beyond)
                AnsiConsole.MarkupLine($"[yellow]the witness saw the ledger reach {beyond.Size} entries[/] ({beyond.Timestamp.UtcDateTime:yyyy-MM-dd HH:mm:ss} UTC): the {beyond.Size - manifest.LedgerSize} entries after this backup are not in it (they fall within the recovery point)");
            var recorder = sp.GetRequiredService<LedgerRecorder>();
            var restored = sp.GetRequiredService<SqlDialect>();
            if (!verdict.Proven || report.Damaged.Count > 0)
            {
                // The mark stays, now saying the proof failed: no server serves this store until someone decides to.
                var started = (await RestoreMarker.FindAsync(restored, ct))?.Started ?? DateTimeOffset.UtcNow;
                await RestoreMarker.SetAsync(restored, manifest.Id, started, RestorePending.NotProven, ct);
                foreach (var p in verdict.Report.Problems) AnsiConsole.MarkupLine($"[red]differs[/]: {Markup.Escape(p)}");
                await recorder.RecordSystemAsync("restore-completed", "operator", "failed", $"restore of backup {manifest.Id} from {backupStore.Display}: {verdict.Report.Problems.Count} problems, {report.Damaged.Count} segments missing", ct);
                AnsiConsole.MarkupLine("[red]the restored store is NOT proven to be the backed-up data[/]: do not serve it before the problems above are understood");
                return 1;
            }
            var lost = "";
            // Only the --to folder's own witness is re-based unasked: a configured one may be a running server's, and a restore
            // into a scratch folder with the production config must not set its heads aside (--adopt-witness says it is this store's).
            var ownWitness = dir is not null && witnessDir == Path.Combine(dir, "witness");
            if (verdict.WitnessBeyond is { } after && witness is not null)
            {
                lost = $"; the witness had seen {after.Size} entries: {after.Size - manifest.LedgerSize} entries after the backup are lost";
                if (ownWitness || parse.GetValue(adopt))
                {
                    // The witness remembers entries the old database held after this backup; they are gone (the RPO), so
                    // its heads beyond the restored size are archived and the restored store can take writes again.
                    var archive = await witness.RebaseAsync(manifest.LedgerSize, ct);
                    lost += $"; its heads beyond {manifest.LedgerSize} were set aside ({archive})";
                    AnsiConsole.MarkupLine($"the witness's heads beyond {manifest.LedgerSize} entries were set aside: {Markup.Escape(archive ?? "")}");
                }
                else
                {
                    AnsiConsole.MarkupLine($"[yellow]the {Markup.Escape(witness.Describe())} was left unchanged[/]: it is not this store's own. If it is (the store's configured witness), run the restore again with --adopt-witness into an empty store, or the restored server will start read-only.");
                }
            }
            else if (witness is null && dir is not null)
            {
                // No witness survived: the restored store starts a new one from its signed heads, which the manifest vouched for.
                var seeded = await SeedWitnessAsync(sp, Path.Combine(dir, "witness"), ct);
                if (seeded > 0) AnsiConsole.MarkupLine($"no witness was given: a new witness was started in {Markup.Escape(Path.Combine(dir, "witness"))} from the {seeded} signed heads the backup vouches for");
                lost = $"; no witness was available, a new one was started from {seeded} restored heads";
            }
            await recorder.RecordSystemAsync("restore-completed", "operator", "succeeded",
                $"restore of backup {manifest.Id} from {backupStore.Display}: {verdict.Report.Size} entries and {verdict.Report.VersionsChecked} versions verified{lost}", ct);
            await RestoreMarker.ClearAsync(restored, CancellationToken.None); // proven and recorded: a Ctrl-C now must not leave it marked
            AnsiConsole.MarkupLine("[green]proven[/]: the restored store is the unaltered data of the backup");
            return 0;
        }));
        return command;
    }

    /// <summary>Publishes the restored store's signed heads to a new folder witness (pinning the restored head-signing key).</summary>
    private static async Task<int> SeedWitnessAsync(ServiceProvider sp, string folder, CancellationToken ct)
    {
        var dialect = sp.GetRequiredService<SqlDialect>();
        await using var c = await dialect.OpenAsync(ct);
        var heads = await LedgerNodes.ReadHeadsAsync(c, null, newestOnly: false, ct);
        if (heads.Count == 0) return 0;
        var keys = new List<byte[]>();
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT public_key FROM ledger_keys ORDER BY created, key_id";
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) keys.Add((byte[])r.GetValue(0));
        }
        using var witness = new FolderWitness(folder);
        var published = 0;
        foreach (var head in heads.OrderBy(h => h.Size))
        {
            var key = keys.FirstOrDefault(k => head.IsSignedBy(k));
            if (key is null) continue;
            await witness.PublishAsync(head, key, ct);
            published++;
        }
        return published;
    }

    /// <summary>Database files that are not a Wardline store (overwritten, encrypted by ransomware) are moved aside with a timestamp, never deleted: they may be evidence.</summary>
    private static void MoveAsideDamaged(string db)
    {
        var mark = RestoreMarker.FileOf(db);
        if (File.Exists(mark))
        {
            // An earlier restore into this folder stopped part-way or was not proven: its store is set aside (evidence), not merged into.
            var at = DateTime.UtcNow.ToString("yyyyMMddTHHmmssfffZ", CultureInfo.InvariantCulture);
            foreach (var f in new[] { db, db + "-wal", db + "-shm", db + "-journal", mark + ".tmp", mark })
            {
                if (File.Exists(f)) File.Move(f, $"{f}.unfinished-{at}");
            }
            AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(db)} held an earlier restore that was not proven; moved aside as *.unfinished-{at}[/]");
            return;
        }
        if (!File.Exists(db)) return;
        if (LooksLikeSqlite(db) && new FileInfo(db).Length > 0)
        {
            // A readable database: the restorer refuses it unless it is empty; never move a working store.
            return;
        }
        var stamp = DateTime.UtcNow.ToString("yyyyMMddTHHmmssZ", CultureInfo.InvariantCulture);
        foreach (var suffix in new[] { "", "-wal", "-shm" })
        {
            var f = db + suffix;
            if (File.Exists(f)) File.Move(f, $"{f}.damaged-{stamp}");
        }
        AnsiConsole.MarkupLine($"[yellow]{Markup.Escape(db)} is not a database any more; moved aside as *.damaged-{stamp}[/]");
    }

    private static bool LooksLikeSqlite(string file)
    {
        Span<byte> header = stackalloc byte[16];
        using var s = File.OpenRead(file);
        return s.Read(header) == 16 && header.SequenceEqual("SQLite format 3\0"u8);
    }

    internal static IBackupStore OpenTarget(string? uri, WardlineOptions options)
    {
        var target = uri ?? options.Backup.Target ?? throw new CliException("No backup target: give --target (or --from) or set Wardline:Backup:Target.");
        try
        {
            return BackupTargets.Open(target, options.Backup.Store.WithEnvironment());
        }
        catch (ArgumentException ex)
        {
            throw new CliException(ex.Message);
        }
    }

    private static Keyring LoadKeyring(string path)
    {
        if (!File.Exists(path)) throw new CliException($"There is no keyring at {path}.");
        var passphrase = Environment.GetEnvironmentVariable("WARDLINE_KEYRING_PASSPHRASE");
        var escrow = Environment.GetEnvironmentVariable("WARDLINE_ESCROW_PASSPHRASE");
        try
        {
            return Keyring.Load(path, passphrase ?? escrow);
        }
        catch (KeyringException) when (passphrase is not null && escrow is not null)
        {
            return Keyring.Load(path, escrow);
        }
    }

    private static async Task<T> WithProgressAsync<T>(string title, Func<IProgress<BackupProgress>?, Task<T>> work)
    {
        if (Console.IsOutputRedirected) return await work(null);
        T result = default!;
        await AnsiConsole.Progress().Columns(new TaskDescriptionColumn(), new ProgressBarColumn(), new PercentageColumn(), new RemainingTimeColumn())
            .StartAsync(async ctx =>
            {
                var task = ctx.AddTask(title, maxValue: 1);
                var progress = new Progress<BackupProgress>(p =>
                {
                    task.Description = p.Phase;
                    task.MaxValue = Math.Max(1, p.Total);
                    task.Value = Math.Min(p.Done, task.MaxValue);
                });
                result = await work(progress);
                task.Value = task.MaxValue;
            });
        return result;
    }

    private static string Bytes(long n) => n switch
    {
        < 1024 => $"{n} B",
        < 1024 * 1024 => $"{n / 1024.0:0.0} KiB",
        < 1024L * 1024 * 1024 => $"{n / 1048576.0:0.0} MiB",
        _ => $"{n / 1073741824.0:0.00} GiB",
    };

    private static string Age(double seconds) => seconds switch
    {
        < 120 => $"{seconds:0} s",
        < 7200 => $"{seconds / 60:0} min",
        < 172_800 => $"{seconds / 3600:0.0} h",
        _ => $"{seconds / 86400:0.0} days",
    };
}
