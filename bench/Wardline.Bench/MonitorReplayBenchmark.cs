using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Wardline.Ledger;
using Wardline.Monitoring;
using Wardline.Monitoring.Synthetic;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Monitoring;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Bench;

/// <summary>
/// Batch detection from the store (issue 6, item 7): <c>wardline monitor replay</c>'s code, <see cref="MonitorReplay.RunAsync(DateTimeOffset, DateTimeOffset, string, CancellationToken)"/>,
/// over a SQLite store whose ledger holds the synthetic hospital's entries (the hospital of <c>monitor batch</c>, same seed and
/// scale, so the same entries and findings). Reported: entries/s end to end, CPU seconds, peak working set, findings and alerts,
/// and where the time went (waiting for rows, the engine, recording alerts).
///
///     Wardline.Bench monitor replay --data DIR [--entries N (10000000)] [--seed S (7)] [--build-only] [--read-only] [--directory synthetic|store] [--blocks keep|build|drop]
///
/// The first run on an empty DIR builds the store: the entries, with their own timestamps, through the real ledger
/// appender (GroupCommitter, 20,000 a group, encoded and hashed on the pool while the previous group is written, as
/// <c>ledger build</c> does); DIR/replay-bench.txt then records the period, and later runs reuse the store. Run the build
/// with --build-only and the replay in a second process, so the peak working set is the replay's alone.
/// <para>
/// The organisation model: <c>--directory synthetic</c> (the default) hands the replay the synthetic hospital's
/// <see cref="OrgDirectory"/> (staff, patients, stays, relationships, labels) in place of what DirectoryLoader reads from the
/// store, because the store holds only the ledger: writing the hospital's hundreds of thousands of patients, encounters and
/// care teams as FHIR resources is not done here. <c>--directory store</c> runs the replay exactly as the CLI does, with
/// DirectoryLoader's model of this store (no accounts, patients or relationships: not a realistic finding load).
/// </para>
/// Each replay starts with no alerts (the monitor tables are emptied first), so every finding is recorded as a new
/// alert or grouped, as a first replay of a period would; <c>--read-only</c> times only reading the period's rows.
/// <c>--blocks build</c> first packs every complete range into monitor blocks (what the streaming detector does behind the
/// ledger's edge), timed; <c>--blocks drop</c> deletes them, so the period is read from the rows; <c>keep</c> (the default) uses
/// whatever blocks the store holds.
/// </summary>
internal static class MonitorReplayBenchmark
{
    private const string Marker = "replay-bench.txt";

    public static async Task<int> RunAsync(string[] args)
    {
        string? data = null;
        long entries = 10_000_000;
        var seed = 7;
        bool buildOnly = false, readOnly = false, probe = false;
        var blocksMode = "keep";
        var directoryKind = "synthetic";
        for (var i = 0; i < args.Length; i++)
        {
            switch (args[i])
            {
                case "--data": data = args[++i]; break;
                case "--entries": entries = long.Parse(args[++i].Replace("_", "", StringComparison.Ordinal), CultureInfo.InvariantCulture); break;
                case "--seed": seed = int.Parse(args[++i], CultureInfo.InvariantCulture); break;
                case "--build-only": buildOnly = true; break;
                case "--read-only": readOnly = true; break;
                case "--probe": probe = true; break;
                case "--blocks": blocksMode = args[++i]; break;
                case "--directory": directoryKind = args[++i]; break;
                default: Console.Error.WriteLine($"unknown option {args[i]}"); return 2;
            }
        }
        if (data is null || directoryKind is not ("synthetic" or "store") || blocksMode is not ("keep" or "build" or "drop"))
        {
            Console.Error.WriteLine("usage: Wardline.Bench monitor replay --data DIR [--entries N] [--seed S] [--build-only] [--read-only] [--directory synthetic|store] [--blocks keep|build|drop]");
            return 2;
        }
        Directory.CreateDirectory(data);
        var sw = Stopwatch.StartNew();
        var (hospital, scale) = MonitorBenchmark.Hospital(entries, seed);
        Console.WriteLine(Invariant($"synthetic hospital (seed {seed}, scale {scale:0.0}): {hospital.Directory.StaffCount:N0} staff, {hospital.Directory.PatientCount:N0} patients, {hospital.Directory.RelationshipCount:N0} relationships, in {sw.Elapsed.TotalSeconds:0.0} s"));

        var options = new WardlineOptions { DataDirectory = data };
        await using var sp = new ServiceCollection().AddLogging().AddSingleton(Options.Create(options)).AddStores(options).BuildServiceProvider();
        await sp.GetRequiredService<RecordStore>().MigrateAsync(default);
        var dialect = sp.GetRequiredService<SqlDialect>();
        var marker = Path.Combine(data, Marker);
        if (!File.Exists(marker))
        {
            var (size, _) = await sp.GetRequiredService<LedgerIntegrity>().StateAsync(default);
            if (size > 100) throw new InvalidOperationException($"{data} holds a ledger of {size} entries not built by this benchmark; give an empty folder.");
            await BuildAsync(sp, hospital, entries, marker);
        }
        var period = File.ReadAllText(marker).Split(' ');
        long count = long.Parse(period[0], CultureInfo.InvariantCulture), fromMs = long.Parse(period[1], CultureInfo.InvariantCulture), toMs = long.Parse(period[2], CultureInfo.InvariantCulture);
        if (count != entries || int.Parse(period[3], CultureInfo.InvariantCulture) != seed)
            throw new InvalidOperationException($"{data} was built with {count} entries and seed {period[3]}; give the same --entries and --seed or an empty folder.");
        var from = DateTimeOffset.FromUnixTimeMilliseconds(fromMs);
        var to = DateTimeOffset.FromUnixTimeMilliseconds(toMs);
        Console.WriteLine(Invariant($"store SQLite {data}/wardline.db ({new FileInfo(Path.Combine(data, "wardline.db")).Length / 1048576.0:N0} MiB): {count:N0} entries, {from:O} .. {to:O}"));
        if (buildOnly) return 0;

        var blocks = sp.GetRequiredService<MonitorBlocks>();
        if (blocksMode == "drop")
        {
            await using var c = await dialect.OpenAsync(default);
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "DELETE FROM monitor_blocks";
            Console.WriteLine(Invariant($"monitor blocks dropped: {await cmd.ExecuteNonQueryAsync()}"));
        }
        else if (blocksMode == "build")
        {
            // What the streaming detector does behind the ledger's edge, all at once: read the rows, pack, tag, store.
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            sw.Restart();
            long built = 0;
            for (int n; (n = await blocks.BuildAsync(256, default)) > 0;) built += n;
            sw.Stop();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
            Console.WriteLine(Invariant($"monitor blocks built: {built:N0} ({built * MonitorBlocks.Size:N0} entries) in {sw.Elapsed.TotalSeconds:0.00} s ({cpu.TotalSeconds:0.00} s CPU), store now {new FileInfo(Path.Combine(data, "wardline.db")).Length / 1048576.0:N0} MiB"));
            Console.WriteLine(Invariant($"WL blocks.built={built} blocks.seconds={sw.Elapsed.TotalSeconds:0.00} blocks.cpu={cpu.TotalSeconds:0.00}"));
        }
        Console.WriteLine(Invariant($"monitor blocks held: {await CountBlocksAsync(dialect)} ({blocksMode})"));

        if (probe)
        {
            await ProbeAsync(dialect);
            return 0;
        }
        if (readOnly)
        {
            GC.Collect();
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            sw.Restart();
            long read = 0;
            await foreach (var batch in LedgerEvents.ReadPeriodAsync(dialect, await LedgerEvents.IndexAtAsync(dialect, fromMs, default), await LedgerEvents.IndexAtAsync(dialect, toMs, default), blocks, default)) read += batch.Count;
            sw.Stop();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
            Console.WriteLine(Invariant($"read only: {read:N0} entries in {sw.Elapsed.TotalSeconds:0.00} s = {read / sw.Elapsed.TotalSeconds:N0} entries/s ({cpu.TotalSeconds:0.00} s CPU)"));
            Console.WriteLine(Invariant($"WL read.entries={read} read.seconds={sw.Elapsed.TotalSeconds:0.00} read.rate={read / sw.Elapsed.TotalSeconds:0} read.cpu={cpu.TotalSeconds:0.00}"));
            return 0;
        }

        await ClearAlertsAsync(dialect);
        var replay = sp.GetRequiredService<MonitorReplay>();
        var directory = directoryKind == "synthetic" ? hospital.Directory : null;
        GC.Collect();
        GC.WaitForPendingFinalizers();
        var before = Process.GetCurrentProcess().TotalProcessorTime;
        var pausedBefore = GC.GetTotalPauseDuration();
        int gen0 = GC.CollectionCount(0), gen1 = GC.CollectionCount(1), gen2 = GC.CollectionCount(2);
        sw.Restart();
        var result = await replay.RunAsync(from, to, "bench", directory, default);
        sw.Stop();
        Console.WriteLine(Invariant($"garbage collector: paused {(GC.GetTotalPauseDuration() - pausedBefore).TotalSeconds:0.00} s; collections gen0 {GC.CollectionCount(0) - gen0}, gen1 {GC.CollectionCount(1) - gen1}, gen2 {GC.CollectionCount(2) - gen2}"));
        var used = Process.GetCurrentProcess().TotalProcessorTime - before;
        var rate = result.EntriesExamined / sw.Elapsed.TotalSeconds;
        var (alerts, alertEntries) = await CountAlertsAsync(dialect);
        Console.WriteLine(Invariant($"replay ({directoryKind} directory): {result.EntriesExamined:N0} entries examined ({result.EntriesWarmed:N0} warmed) in {sw.Elapsed.TotalSeconds:0.00} s = {rate:N0} entries/s ({used.TotalSeconds:0.00} s CPU), peak working set {Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0:N0} MiB"));
        Console.WriteLine(Invariant($"findings {result.Findings:N0}: new alerts {result.NewAlerts:N0}, grouped into open alerts {result.GroupedIntoExisting:N0}, already known {result.AlreadyKnown:N0}; store now holds {alerts:N0} alerts naming {alertEntries:N0} entries"));
        if (replay.LastTimings is { } t)
        {
            Console.WriteLine(Invariant($"time: waiting for rows {t.Read.TotalSeconds:0.00} s, engine {t.Examine.TotalSeconds:0.00} s, recording alerts {t.Record.TotalSeconds:0.00} s ({t.Batches:N0} batches)"));
        }
        Console.WriteLine(Invariant($"WL replay.entries={result.EntriesExamined} replay.seconds={sw.Elapsed.TotalSeconds:0.00} replay.rate={rate:0} replay.cpu={used.TotalSeconds:0.00} replay.findings={result.Findings} replay.new_alerts={result.NewAlerts} replay.peak_mib={Process.GetCurrentProcess().PeakWorkingSet64 / 1048576.0:0}"));
        return 0;
    }

    private static async Task BuildAsync(ServiceProvider sp, SyntheticHospital hospital, long entries, string marker)
    {
        var committer = sp.GetRequiredService<GroupCommitter>();
        const int chunk = 20_000;
        var clock = Stopwatch.StartNew();
        Task? pending = null;
        var buffer = new List<MonitorEvent>(chunk);
        long n = 0, firstMs = 0, lastMs = 0;
        foreach (var e in hospital.Events())
        {
            if (n == 0) firstMs = e.AtMs;
            lastMs = e.AtMs;
            buffer.Add(e);
            n++;
            if (buffer.Count == chunk || n == entries)
            {
                var events = buffer;
                buffer = new List<MonitorEvent>(chunk);
                // Encode and hash on the pool while the previous group is written.
                var rows = await Task.Run(() => events.ConvertAll(x => new LedgerRow(ToEntry(x))));
                if (pending is not null) await pending;
                pending = committer.RunAsync((c, tx, ledger, ct) =>
                {
                    ledger.AddRange(rows);
                    return Task.FromResult(rows.Count);
                }, isolated: false);
                if (n % 1_000_000 == 0) Console.WriteLine(Invariant($"  {n:N0} entries, {clock.Elapsed.TotalSeconds:0} s"));
            }
            if (n == entries) break;
        }
        if (pending is not null) await pending;
        if (n < entries) throw new InvalidOperationException($"the hospital's month holds only {n} entries");
        Console.WriteLine(Invariant($"built {n:N0} entries in {clock.Elapsed.TotalSeconds:0.0} s"));
        Console.WriteLine(Invariant($"WL build.entries={n} build.seconds={clock.Elapsed.TotalSeconds:0.0}"));
        // The period: the first entry's time to just after the last's.
        File.WriteAllText(marker, Invariant($"{n} {firstMs} {lastMs + 1} {hospital.Options.Seed}"));
    }

    /// <summary>The ledger entry a server would have written for the event (the inverse of LedgerEvents' mapping).</summary>
    private static LedgerEntry ToEntry(MonitorEvent e) => new()
    {
        Type = e.Kind switch
        {
            EntryKind.Access => "access",
            EntryKind.Security => "security",
            EntryKind.Write => "write",
            _ => "system",
        },
        At = DateTimeOffset.FromUnixTimeMilliseconds(e.AtMs),
        Event = e.Event,
        User = e.User,
        Actor = e.Actor,
        Patient = e.Patient is null ? null : "Patient/" + e.Patient,
        Resource = e.ResourceType is null ? null : e.ResourceId is null ? e.ResourceType : e.ResourceType + "/" + e.ResourceId,
        Action = e.Action,
        Purpose = e.Purpose,
        Permitted = e.Permitted,
        Rule = e.Rule,
        Status = e.Status,
        Outcome = e.Outcome,
        Detail = e.Detail,
        Client = e.Client,
        Source = e.Source,
        Correlation = e.Correlation,
    };

    private static async Task ClearAlertsAsync(SqlDialect dialect)
    {
        await using var c = await dialect.OpenAsync(default);
        foreach (var table in new[] { "monitor_notifications", "monitor_alert_events", "monitor_alert_entries", "monitor_alerts" })
        {
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "DELETE FROM " + table;
            await cmd.ExecuteNonQueryAsync();
        }
    }

    private static async Task<long> CountBlocksAsync(SqlDialect dialect)
    {
        await using var c = await dialect.OpenAsync(default);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM monitor_blocks";
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }

    private static async Task<(long Alerts, long Entries)> CountAlertsAsync(SqlDialect dialect)
    {
        await using var c = await dialect.OpenAsync(default);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT (SELECT COUNT(*) FROM monitor_alerts), (SELECT COUNT(*) FROM monitor_alert_entries)";
        await using var r = await cmd.ExecuteReaderAsync();
        await r.ReadAsync();
        return (Convert.ToInt64(r.GetValue(0), CultureInfo.InvariantCulture), Convert.ToInt64(r.GetValue(1), CultureInfo.InvariantCulture));
    }

    /// <summary>Where reading a row's time goes: SQLite's step, each column's decoding, building the event.</summary>
    private static async Task ProbeAsync(SqlDialect dialect)
    {
        const string columns = "idx, at, type, event, user_name, actor, patient, res_type, res_id, action, purpose, permitted, rule, status, outcome, detail, client, source, correlation";
        foreach (var (name, sql, fields) in new (string, string, int)[]
        {
            ("step only", "SELECT idx FROM ledger_entries WHERE idx > 0 AND idx <= 1000000 ORDER BY idx", 0),
            ("19 columns, read as values", $"SELECT {columns} FROM ledger_entries WHERE idx > 0 AND idx <= 1000000 ORDER BY idx", 19),
            ("19 columns, to events", $"SELECT {columns} FROM ledger_entries WHERE idx > 0 AND idx <= 1000000 ORDER BY idx", -1),
        })
        {
            await using var c = await dialect.OpenAsync(default);
            await using var cmd = c.CreateCommand();
            cmd.CommandText = sql;
            var cpu0 = Process.GetCurrentProcess().TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            long n = 0, sink = 0;
            await using (var r = await cmd.ExecuteReaderAsync())
            {
                while (r.Read())
                {
                    n++;
                    if (fields == -1) sink += LedgerEvents.MapForProbe(r).AtMs;
                    for (var i = 0; i < fields; i++)
                    {
                        if (!r.IsDBNull(i)) sink += r.GetValue(i) is string str ? str.Length : 1;
                    }
                }
            }
            sw.Stop();
            var cpu = Process.GetCurrentProcess().TotalProcessorTime - cpu0;
            Console.WriteLine(Invariant($"probe {name}: {n:N0} rows in {sw.Elapsed.TotalSeconds:0.00} s = {n / sw.Elapsed.TotalSeconds:N0} rows/s, {sw.Elapsed.TotalMilliseconds * 1000 / n:0.00} us a row ({cpu.TotalSeconds:0.00} s CPU) [{sink % 10}]"));
        }
    }

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);
}
