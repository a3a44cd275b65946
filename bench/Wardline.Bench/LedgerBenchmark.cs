using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;
using Wardline.Ledger;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;

namespace Wardline.Bench;

/// <summary>
/// The audit ledger's benchmarks (issue 4), each through the server's own services (AddStores):
///
///   Wardline.Bench ledger append  [--db CONNSTRING] [--writers 1,16,64] [--seconds 10] [--warmup 3]
///       durable appends/s: N tasks each call LedgerRecorder.RecordAsync with one access record at a time
///       (the path every FHIR request takes), on a fresh store per N; appends/s and p50/p99 latency.
///   Wardline.Bench ledger profile [--db CONNSTRING] [--groups 1,16,64,256] [--seconds 3] [--patients 50000]
///       where an append's time goes: encode and hash (the caller's thread) vs the group's SQL (state read,
///       inserts, tree) vs its commit (fsync), replaying GroupCommitter's steps with the real LedgerAppender.
///   Wardline.Bench ledger build   --data DIR --entries N [--small]
///       appends N entries to the SQLite store in DIR (kept, so later runs reuse it) in groups of 20,000.
///   Wardline.Bench ledger verify  --data DIR
///       LedgerVerifier at Depth.Startup (every leaf rehashed, the tree rebuilt, the root checked): bytes hashed/s.
///   Wardline.Bench ledger proofs  --data DIR [--samples 1000]
///       LedgerProofs inclusion and consistency proofs at random indexes and sizes, each checked with ProofVerifier
///       and chained to the recorded root; median and p99 per proof.
///   Wardline.Bench ledger ceiling [--db CONNSTRING] [--groups 1,16,64,256,1024] [--seconds 5]
///       the floor under any design that makes every entry durable before its response: groups of G entries of the
///       append benchmark's size made durable with nothing else done (no encoding, hashing, tree, columns or
///       indexes): appended to a file and fsync'd; inserted into a three-column SQLite table and committed (the
///       store's pragmas); copied into a three-column PostgreSQL table and committed. With W writers each awaiting
///       its own entry, a group holds at most W entries, so G = W bounds the W-writer figure on this disk.
///   Wardline.Bench ledger hash    [BenchmarkDotNet arguments]
///       BenchmarkDotNet: MerkleHash.Leaf of a 300-byte entry vs SHA256.HashData of the same bytes.
/// Every result line starts with "WL " and holds key=value pairs for the report.
/// </summary>
internal static class LedgerBenchmark
{
    public static async Task<int> RunAsync(string[] args)
    {
        if (args.Length == 0)
        {
            Console.Error.WriteLine("usage: Wardline.Bench ledger append|profile|build|verify|proofs|hash [options]");
            return 2;
        }
        var o = Args.Parse(args[1..]);
        s_patients = o.Long("--patients", 50_000);
        Console.WriteLine($"runtime {Environment.Version}, {Environment.ProcessorCount} cores, server GC {System.Runtime.GCSettings.IsServerGC}");
        switch (args[0])
        {
            case "append": await AppendAsync(o); return 0;
            case "profile": await ProfileAsync(o); return 0;
            case "build": await BuildAsync(o); return 0;
            case "verify": return await VerifyAsync(o);
            case "proofs": return await ProofsAsync(o);
            case "ceiling": await CeilingAsync(o); return 0;
            case "hash": LeafHashBenchmarks.Run(args[1..]); return 0;
            default:
                Console.Error.WriteLine($"unknown ledger benchmark '{args[0]}'");
                return 2;
        }
    }

    // ---------------------------------------------------------------- appends

    private static async Task AppendAsync(Args o)
    {
        var seconds = o.Double("--seconds", 10);
        var warmup = o.Double("--warmup", 3);
        var engine = o.Get("--db") is null ? "sqlite" : "postgres";
        var sample = LedgerRecorder.ToEntry(Record(0, 0)).Encode().Length;
        Console.WriteLine($"{engine}: one access record per RecordAsync call, entry {sample} bytes; {warmup} s warm-up, {seconds} s measured");
        foreach (var writers in o.Ints("--writers", [1, 16, 64]))
        {
            await using var store = await BenchStore.CreateAsync(o.Get("--db"), null);
            var recorder = store.Services.GetRequiredService<LedgerRecorder>();
            var integrity = store.Services.GetRequiredService<LedgerIntegrity>();
            var flags = new Flags();
            var tasks = Enumerable.Range(0, writers).Select(w => Task.Run(async () =>
            {
                var latencies = new List<long>(1 << 16);
                long i = 0;
                while (!flags.Stop)
                {
                    var record = Record(w, i++);
                    var t0 = Stopwatch.GetTimestamp();
                    await recorder.RecordAsync([record], default);
                    var t = Stopwatch.GetTimestamp() - t0;
                    if (flags.Measuring) latencies.Add(t);
                }
                return latencies;
            })).ToArray();
            await Task.Delay(TimeSpan.FromSeconds(warmup));
            var (size0, _) = await integrity.StateAsync(default);
            var started = Stopwatch.GetTimestamp();
            flags.Measuring = true;
            await Task.Delay(TimeSpan.FromSeconds(seconds));
            flags.Measuring = false;
            var elapsed = Stopwatch.GetElapsedTime(started).TotalSeconds;
            var (size1, _) = await integrity.StateAsync(default);
            flags.Stop = true;
            var all = (await Task.WhenAll(tasks)).SelectMany(l => l).Order().ToArray();
            var rate = all.Length / elapsed;
            Console.WriteLine($"{engine} writers={writers}: {all.Length:N0} appends in {elapsed:F1} s = {rate:N0}/s, p50 {Ms(Q(all, 50)):F2} ms, p99 {Ms(Q(all, 99)):F2} ms (ledger grew by {size1 - size0:N0})");
            Console.WriteLine(Invariant($"WL {engine}.append.w{writers}.rate={rate:F0} {engine}.append.w{writers}.p50_ms={Ms(Q(all, 50)):F3} {engine}.append.w{writers}.p99_ms={Ms(Q(all, 99)):F3} {engine}.append.w{writers}.n={all.Length} {engine}.append.entry_bytes={sample}"));
        }
    }

    private sealed class Flags
    {
        public volatile bool Stop;
        public volatile bool Measuring;
    }

    /// <summary>How many patients the records spread over (--patients; 50,000 by default): each group's entries land on that many pages of the patient index.</summary>
    private static long s_patients = 50_000;

    /// <summary>A realistic access record: a clinician's permitted read of an observation, as the pipeline writes it.</summary>
    internal static AccessRecord Record(int writer, long n) =>
        new(DateTimeOffset.UtcNow, $"dr.user{writer:D3}", new FhirInteraction(FhirAction.Read, "Observation", $"obs-{writer:D3}-{n:D9}"), "decision",
            new AccessDecision(true, "care-team-read", "the requester is on the care team of the patient's current encounter"), 200, null,
            $"0HN{writer:D3}{n:X10}:00000001", "10.20.30.40")
        {
            Patient = $"Patient/pat-{(n * 7919 + writer) % s_patients:D6}",
            Roles = ["physician", "tier1"],
            Departments = ["cardiology"],
            Client = "ehr",
            Purpose = "TREAT",
        };

    // ---------------------------------------------------------------- profile

    private static async Task ProfileAsync(Args o)
    {
        var seconds = o.Double("--seconds", 3);
        var engine = o.Get("--db") is null ? "sqlite" : "postgres";

        // The caller's part, one thread: record -> entry, entry -> canonical bytes, bytes -> leaf hash.
        const int n = 200_000;
        var records = Enumerable.Range(0, n).Select(i => Record(i % 64, i)).ToArray();
        var entries = new LedgerEntry[n];
        var bytes = new byte[n][];
        for (var round = 0; round < 2; round++)
        {
            var t0 = Stopwatch.GetTimestamp();
            for (var i = 0; i < n; i++) entries[i] = LedgerRecorder.ToEntry(records[i]);
            var t1 = Stopwatch.GetTimestamp();
            for (var i = 0; i < n; i++) bytes[i] = entries[i].Encode();
            var t2 = Stopwatch.GetTimestamp();
            for (var i = 0; i < n; i++) MerkleHash.Leaf(bytes[i]);
            var t3 = Stopwatch.GetTimestamp();
            for (var i = 0; i < n; i++) _ = new LedgerRow(entries[i]);
            var t4 = Stopwatch.GetTimestamp();
            if (round == 1)
            {
                Console.WriteLine($"per entry, one thread: ToEntry {Us(t1 - t0, n):F2} us, Encode {Us(t2 - t1, n):F2} us, Leaf hash {Us(t3 - t2, n):F2} us; new LedgerRow (encode + hash + split) {Us(t4 - t3, n):F2} us");
                Console.WriteLine(Invariant($"WL cpu.to_entry_us={Us(t1 - t0, n):F3} cpu.encode_us={Us(t2 - t1, n):F3} cpu.leaf_us={Us(t3 - t2, n):F3} cpu.row_us={Us(t4 - t3, n):F3}"));
            }
        }

        // The writer's part: GroupCommitter.CommitGroupAsync's steps for one group of g entries, timed one by one.
        foreach (var g in o.Ints("--groups", [1, 16, 64, 256]))
        {
            await using var store = await BenchStore.CreateAsync(o.Get("--db"), null);
            var dialect = store.Services.GetRequiredService<SqlDialect>();
            var appender = store.Services.GetRequiredService<LedgerAppender>();
            long groups = 0, tRows = 0, tOpen = 0, tAppend = 0, tCommit = 0;
            var until = Stopwatch.GetTimestamp() + (long)((seconds + 1) * Stopwatch.Frequency);
            var warm = Stopwatch.GetTimestamp() + Stopwatch.Frequency;
            var k = 0L;
            while (Stopwatch.GetTimestamp() < until)
            {
                var a = Stopwatch.GetTimestamp();
                var rows = new List<LedgerRow>(g);
                for (var i = 0; i < g; i++) rows.Add(new LedgerRow(LedgerRecorder.ToEntry(Record(i, k++))));
                var b = Stopwatch.GetTimestamp();
                await using (var gate = await dialect.EnterWriteAsync(default))
                await using (var c = await dialect.OpenAsync(default))
                await using (var tx = await dialect.BeginWriteTransactionAsync(c, default))
                {
                    var d = Stopwatch.GetTimestamp();
                    var appended = await appender.AppendAsync(c, tx, rows, default);
                    var e = Stopwatch.GetTimestamp();
                    await tx.CommitAsync(default);
                    var f = Stopwatch.GetTimestamp();
                    appender.Committed(appended);
                    if (a > warm)
                    {
                        groups++;
                        tRows += b - a;
                        tOpen += d - b;
                        tAppend += e - d;
                        tCommit += f - e;
                    }
                }
            }
            var total = tRows + tOpen + tAppend + tCommit;
            var ceiling = groups * g / ((double)total / Stopwatch.Frequency);
            Console.WriteLine($"{engine} group of {g}: {groups} groups; per group: rows (encode+hash) {Us(tRows, groups):F0} us, open+begin {Us(tOpen, groups):F0} us, " +
                $"append (state, frontier, INSERTs, UPDATE) {Us(tAppend, groups):F0} us, commit (fsync) {Us(tCommit, groups):F0} us; " +
                $"one writer at this group size: {ceiling:N0} entries/s, commit is {100.0 * tCommit / total:F0}% of the time");
            Console.WriteLine(Invariant($"WL {engine}.group{g}.groups={groups} {engine}.group{g}.rows_us={Us(tRows, groups):F1} {engine}.group{g}.open_us={Us(tOpen, groups):F1} {engine}.group{g}.append_us={Us(tAppend, groups):F1} {engine}.group{g}.commit_us={Us(tCommit, groups):F1} {engine}.group{g}.ceiling={ceiling:F0}"));
        }
    }

    // ---------------------------------------------------------------- ceiling

    private static async Task CeilingAsync(Args o)
    {
        var seconds = o.Double("--seconds", 5);
        var groups = o.Ints("--groups", [1, 16, 64, 256, 1024]);
        var entry = LedgerRecorder.ToEntry(Record(0, 0)).Encode();
        var leaf = MerkleHash.Leaf(entry);
        Console.WriteLine($"ceiling: groups of G entries of {entry.Length} bytes (+ a 32-byte leaf) made durable, nothing else done; {seconds} s per G, after 1 s unmeasured");

        // One timed loop: body(g, first index) makes one group durable.
        async Task Measure(string what, int g, Func<int, long, Task> body)
        {
            long n = 0, k = 0;
            var warm = Stopwatch.GetTimestamp() + Stopwatch.Frequency;
            while (Stopwatch.GetTimestamp() < warm) { await body(g, k); k += g; }
            var t0 = Stopwatch.GetTimestamp();
            var until = t0 + (long)(seconds * Stopwatch.Frequency);
            while (Stopwatch.GetTimestamp() < until) { await body(g, k); k += g; n++; }
            var elapsed = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            var rate = n * g / elapsed;
            Console.WriteLine($"{what} G={g}: {n:N0} groups, {elapsed / n * 1e6:N0} us a group, {rate:N0} entries/s");
            Console.WriteLine(Invariant($"WL ceiling.{what}.g{g}.group_us={elapsed / n * 1e6:F1} ceiling.{what}.g{g}.rate={rate:F0}"));
        }

        var dir = Directory.CreateTempSubdirectory("wl-ledger-ceiling-").FullName;
        try
        {
            // (a) A file: the group's bytes appended with one write, then fsync (FileStream.Flush(true)).
            foreach (var g in groups)
            {
                var buffer = new byte[g * (entry.Length + leaf.Length)];
                await using var file = new FileStream(Path.Combine(dir, $"journal-{g}.bin"), FileMode.Create, FileAccess.Write, FileShare.None, 1, FileOptions.None);
                await Measure("file", g, (_, _) =>
                {
                    file.Write(buffer);
                    file.Flush(flushToDisk: true);
                    return Task.CompletedTask;
                });
            }

            // (b) SQLite with the store's pragmas (WAL, synchronous=FULL): one prepared INSERT per entry, one COMMIT per group.
            foreach (var g in groups)
            {
                await using var c = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(dir, $"ceiling-{g}.db")};Pooling=False");
                await c.OpenAsync();
                await using (var setup = c.CreateCommand())
                {
                    setup.CommandText = "PRAGMA journal_mode=WAL; PRAGMA synchronous=FULL; PRAGMA cache_size=-65536; PRAGMA wal_autocheckpoint=16384; " +
                        "CREATE TABLE entries (idx INTEGER PRIMARY KEY, entry BLOB NOT NULL, leaf BLOB NOT NULL);";
                    await setup.ExecuteNonQueryAsync();
                }
                await Measure("sqlite", g, async (g, first) =>
                {
                    await using var tx = c.BeginTransaction();
                    await using var insert = c.CreateCommand();
                    insert.Transaction = tx;
                    insert.CommandText = "INSERT INTO entries (idx, entry, leaf) VALUES ($i, $e, $l)";
                    var pi = insert.Parameters.Add("$i", Microsoft.Data.Sqlite.SqliteType.Integer);
                    insert.Parameters.AddWithValue("$e", entry);
                    insert.Parameters.AddWithValue("$l", leaf);
                    insert.Prepare();
                    for (var i = 0; i < g; i++)
                    {
                        pi.Value = first + i;
                        insert.ExecuteNonQuery();
                    }
                    await tx.CommitAsync();
                });
            }

            // (c) PostgreSQL: one binary COPY per group and its COMMIT (synchronous_commit on, the server's default).
            if (o.Get("--db") is { } db)
            {
                await using var source = NpgsqlDataSource.Create(db);
                await using (var setup = source.CreateCommand("DROP TABLE IF EXISTS wl_ceiling_entries; CREATE TABLE wl_ceiling_entries (idx bigint PRIMARY KEY, entry bytea NOT NULL, leaf bytea NOT NULL)"))
                    await setup.ExecuteNonQueryAsync();
                try
                {
                    await using var c = await source.OpenConnectionAsync();
                    foreach (var g in groups)
                    {
                        await Measure("postgres", g, async (g, first) =>
                        {
                            await using var tx = await c.BeginTransactionAsync();
                            await using (var copy = await c.BeginBinaryImportAsync("COPY wl_ceiling_entries (idx, entry, leaf) FROM STDIN (FORMAT BINARY)"))
                            {
                                for (var i = 0; i < g; i++)
                                {
                                    await copy.StartRowAsync();
                                    await copy.WriteAsync(first + i + (long)g * 1_000_000_000, NpgsqlTypes.NpgsqlDbType.Bigint);
                                    await copy.WriteAsync(entry, NpgsqlTypes.NpgsqlDbType.Bytea);
                                    await copy.WriteAsync(leaf, NpgsqlTypes.NpgsqlDbType.Bytea);
                                }
                                await copy.CompleteAsync();
                            }
                            await tx.CommitAsync();
                        });
                    }
                }
                finally
                {
                    await using var drop = source.CreateCommand("DROP TABLE IF EXISTS wl_ceiling_entries");
                    await drop.ExecuteNonQueryAsync();
                }
            }
        }
        finally
        {
            Directory.Delete(dir, true);
        }
    }

    // ---------------------------------------------------------------- build, verify, proofs

    private static async Task BuildAsync(Args o)
    {
        var target = o.Long("--entries", 1_000_000);
        var small = o.Has("--small");
        await using var store = await BenchStore.CreateAsync(null, o.Get("--data") ?? throw new ArgumentException("--data DIR is required"));
        var committer = store.Services.GetRequiredService<GroupCommitter>();
        var integrity = store.Services.GetRequiredService<LedgerIntegrity>();
        var (size, _) = await integrity.StateAsync(default);
        var clock = Stopwatch.StartNew();
        const int chunk = 20_000;
        var at = DateTimeOffset.UtcNow;
        Task? pending = null;
        for (var next = size; next < target; next += chunk)
        {
            var count = (int)Math.Min(chunk, target - next);
            var first = next;
            // Encode and hash the next chunk on the pool while the previous one is written.
            var rows = await Task.Run(() =>
            {
                var list = new List<LedgerRow>(count);
                for (var i = 0; i < count; i++)
                {
                    var n = first + i;
                    list.Add(small
                        ? new LedgerRow(new LedgerEntry { Type = "access", At = at, Event = "decision", User = "u" + (n % 997), Resource = "Observation/" + n, Action = "Read", Permitted = true })
                        : new LedgerRow(LedgerRecorder.ToEntry(Record((int)(n % 64), n))));
                }
                return list;
            });
            if (pending is not null) await pending;
            pending = committer.RunAsync((c, tx, entries, ct) =>
            {
                entries.AddRange(rows);
                return Task.FromResult(rows.Count);
            }, isolated: false);
            if ((next / chunk) % 25 == 0) Console.WriteLine($"  {next:N0} entries, {clock.Elapsed.TotalSeconds:F0} s");
        }
        if (pending is not null) await pending;
        var (done, root) = await integrity.StateAsync(default);
        Console.WriteLine($"ledger in {store.Describe()}: {done:N0} entries (added {done - size:N0} in {clock.Elapsed.TotalSeconds:F1} s), root {Convert.ToHexStringLower(root)[..16]}...");
        Console.WriteLine(Invariant($"WL build.entries={done} build.added={done - size} build.seconds={clock.Elapsed.TotalSeconds:F1}"));
    }

    private static async Task<int> VerifyAsync(Args o)
    {
        await using var store = await BenchStore.CreateAsync(null, o.Get("--data") ?? throw new ArgumentException("--data DIR is required"));
        var dialect = store.Services.GetRequiredService<SqlDialect>();
        long n, entryBytes;
        await using (var c = await dialect.OpenAsync(default))
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT COUNT(*), COALESCE(SUM(LENGTH(entry)), 0) FROM ledger_entries";
            await using var r = await cmd.ExecuteReaderAsync();
            await r.ReadAsync();
            (n, entryBytes) = (r.GetInt64(0), r.GetInt64(1));
        }
        // Leaves hash 0x00 || entry; the n - 1 interior nodes hash 0x01 || left || right (65 bytes).
        var hashed = entryBytes + n + 65 * Math.Max(0, n - 1);
        var verifier = store.Services.GetRequiredService<LedgerVerifier>();
        var rounds = o.Int("--rounds", 2);
        for (var round = 1; round <= rounds; round++)
        {
            var report = await verifier.VerifyAsync(LedgerVerifier.Depth.Startup, default);
            var s = report.Elapsed.TotalSeconds;
            Console.WriteLine($"verify round {round}: {report.Size:N0} entries ({entryBytes / (double)n:F0} bytes each on average) in {s:F2} s = {report.Size / s:N0} entries/s, " +
                $"{hashed / s / 1e6:F1} MB/s hashed (leaves and nodes; entries alone {entryBytes / s / 1e6:F1} MB/s); problems: {report.Problems.Count}");
            foreach (var p in report.Problems.Take(3)) Console.WriteLine("  problem: " + p);
            Console.WriteLine(Invariant($"WL verify.r{round}.entries={report.Size} verify.r{round}.seconds={s:F3} verify.r{round}.hashed_bytes={hashed} verify.r{round}.entry_bytes={entryBytes} verify.r{round}.mbps={hashed / s / 1e6:F1} verify.r{round}.problems={report.Problems.Count}"));
            if (report.Problems.Count > 0) return 1;
        }

        // The read alone, no hashing: the verifier's query (every column, which Depth.Full needs) and the three columns Startup uses.
        foreach (var (label, columns) in new[] { ("all_columns", "idx, entry, leaf, at, type, event, user_name, client, actor, patient, resource, res_type, res_id, version, action, purpose, permitted, rule, status, outcome, detail, correlation, source"), ("three_columns", "idx, entry, leaf") })
        {
            var t0 = Stopwatch.GetTimestamp();
            long rows = 0;
            await using (var c = await dialect.OpenAsync(default))
            await using (var cmd = c.CreateCommand())
            {
                cmd.CommandText = $"SELECT {columns} FROM ledger_entries ORDER BY idx";
                await using var r = await cmd.ExecuteReaderAsync(System.Data.CommandBehavior.SequentialAccess);
                while (await r.ReadAsync())
                {
                    _ = r.GetInt64(0);
                    _ = (byte[])r.GetValue(1);
                    _ = (byte[])r.GetValue(2);
                    rows++;
                }
            }
            var t = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            Console.WriteLine($"read only ({label.Replace('_', ' ')}): {rows:N0} rows in {t:F2} s");
            Console.WriteLine(Invariant($"WL verify.read.{label}.seconds={t:F3}"));
        }

        // The three columns stepped through SQLitePCL, as the verifier reads them on SQLite (each blob copied out of the row).
        await using (var c = await dialect.OpenAsync(default))
        {
            if (c is Microsoft.Data.Sqlite.SqliteConnection sqlite)
            {
                var t0 = Stopwatch.GetTimestamp();
                long rows = 0;
                SQLitePCL.raw.sqlite3_prepare_v2(sqlite.Handle, "SELECT idx, entry, leaf FROM ledger_entries ORDER BY idx", out var stmt);
                using (stmt)
                {
                    while (SQLitePCL.raw.sqlite3_step(stmt) == SQLitePCL.raw.SQLITE_ROW)
                    {
                        _ = SQLitePCL.raw.sqlite3_column_int64(stmt, 0);
                        _ = SQLitePCL.raw.sqlite3_column_blob(stmt, 1).ToArray();
                        _ = SQLitePCL.raw.sqlite3_column_blob(stmt, 2).ToArray();
                        rows++;
                    }
                }
                var t = Stopwatch.GetElapsedTime(t0).TotalSeconds;
                Console.WriteLine($"read only (three columns, SQLitePCL): {rows:N0} rows in {t:F2} s");
                Console.WriteLine(Invariant($"WL verify.read.three_columns_sqlitepcl.seconds={t:F3}"));
            }
        }

        // The hash work alone, in memory, on a sample of the same entries: what the verifier would reach with free I/O.
        var sample = new List<byte[]>();
        await using (var c = await dialect.OpenAsync(default))
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT entry FROM ledger_entries ORDER BY idx LIMIT 200000";
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync()) sample.Add((byte[])r.GetValue(0));
        }
        var leaf = new byte[MerkleHash.Size];
        for (var round = 0; round < 2; round++)
        {
            var tree = new CompactTree();
            var t0 = Stopwatch.GetTimestamp();
            foreach (var b in sample)
            {
                MerkleHash.Leaf(b, leaf);
                tree.Append(leaf.ToArray());
            }
            tree.Root();
            var t = Stopwatch.GetElapsedTime(t0).TotalSeconds;
            var bytes = sample.Sum(b => (long)b.Length + 1) + 65L * (sample.Count - 1);
            if (round == 1)
            {
                Console.WriteLine($"in memory, {sample.Count:N0} entries: leaves + tree in {t * 1000:F0} ms = {sample.Count / t:N0} entries/s, {bytes / t / 1e6:F1} MB/s hashed");
                Console.WriteLine(Invariant($"WL verify.memory.entries={sample.Count} verify.memory.seconds={t:F4} verify.memory.mbps={bytes / t / 1e6:F1}"));
            }
        }
        return 0;
    }

    private static async Task<int> ProofsAsync(Args o)
    {
        await using var store = await BenchStore.CreateAsync(null, o.Get("--data") ?? throw new ArgumentException("--data DIR is required"));
        var proofs = store.Services.GetRequiredService<LedgerProofs>();
        var integrity = store.Services.GetRequiredService<LedgerIntegrity>();
        var (size, recordedRoot) = await integrity.StateAsync(default);
        var samples = o.Int("--samples", 1000);
        var random = new Random(4);
        var inclusion = new List<long>(samples);
        var consistency = new List<long>(samples);
        var hashesIn = new List<int>();
        var hashesCons = new List<int>();
        var failures = 0;
        for (var s = -100; s < samples; s++) // 100 warm-up proofs of each kind, not counted
        {
            var second = random.NextInt64(1, size + 1);
            var first = random.NextInt64(1, second + 1);
            var index = random.NextInt64(0, first);

            var t0 = Stopwatch.GetTimestamp();
            var (inc, p1) = await proofs.InclusionAsync(index, first, default);
            var t1 = Stopwatch.GetTimestamp();
            var (con, p2) = await proofs.ConsistencyAsync(first, second, default);
            var t2 = Stopwatch.GetTimestamp();
            // A full-size proof too: its root must be the root the ledger records.
            var (full, p3) = await proofs.ConsistencyAsync(second, size, default);
            if (inc is null || con is null || full is null)
            {
                Console.WriteLine($"  refused: {p1 ?? p2 ?? p3}");
                failures++;
                continue;
            }
            var entry = await proofs.EntryAsync(index, default);
            var ok = ProofVerifier.VerifyInclusion(index, first, inc.LeafHash, inc.Hashes, inc.Root).Valid
                && entry is not null && MerkleHash.Leaf(entry).AsSpan().SequenceEqual(inc.LeafHash)
                && ProofVerifier.VerifyConsistency(first, second, con.FirstRoot, con.SecondRoot, con.Hashes).Valid
                && con.FirstRoot.AsSpan().SequenceEqual(inc.Root)
                && ProofVerifier.VerifyConsistency(second, size, full.FirstRoot, full.SecondRoot, full.Hashes).Valid
                && full.FirstRoot.AsSpan().SequenceEqual(con.SecondRoot)
                && full.SecondRoot.AsSpan().SequenceEqual(recordedRoot);
            if (!ok) failures++;
            if (s < 0) continue;
            inclusion.Add(t1 - t0);
            consistency.Add(t2 - t1);
            hashesIn.Add(inc.Hashes.Count);
            hashesCons.Add(con.Hashes.Count);
        }
        // Where a proof's time goes: the size check (its own connection and query), opening the proof's connection,
        // and the stored-hash queries plus folding (LedgerNodes.RangeHashesAsync), each timed alone over the same kind of sample.
        var dialect = store.Services.GetRequiredService<SqlDialect>();
        var tState = new List<long>();
        var tOpen = new List<long>();
        var tHashes = new List<long>();
        var stored = new List<int>();
        for (var s = 0; s < Math.Min(samples, 300); s++)
        {
            var first = random.NextInt64(1, size + 1);
            var index = random.NextInt64(0, first);
            var t0 = Stopwatch.GetTimestamp();
            await integrity.StateAsync(default);
            var t1 = Stopwatch.GetTimestamp();
            await using var c = await dialect.OpenAsync(default);
            var t2 = Stopwatch.GetTimestamp();
            var ranges = MerkleTree.InclusionRanges(index, first).Append(new MerkleTree.Range(index, index + 1)).Append(new MerkleTree.Range(0, first)).ToList();
            await LedgerNodes.RangeHashesAsync(c, null, ranges, null, default);
            var t3 = Stopwatch.GetTimestamp();
            tState.Add(t1 - t0);
            tOpen.Add(t2 - t1);
            tHashes.Add(t3 - t2);
            stored.Add(ranges.SelectMany(r => MerkleTree.CompleteSubtrees(r.Start, r.End)).Distinct().Sum(x => 1 << (x.Level % LedgerNodes.Stride)));
        }
        long Med(List<long> l) => Q([.. l.Order()], 50);
        Console.WriteLine($"inclusion breakdown (median of {tState.Count}): size check {Ms(Med(tState)):F3} ms, open connection {Ms(Med(tOpen)):F3} ms, " +
            $"stored-hash queries + folding {Ms(Med(tHashes)):F3} ms ({stored.Average():F0} stored hashes read on average)");
        Console.WriteLine(Invariant($"WL proofs.breakdown.state_ms={Ms(Med(tState)):F4} proofs.breakdown.open_ms={Ms(Med(tOpen)):F4} proofs.breakdown.hashes_ms={Ms(Med(tHashes)):F4} proofs.breakdown.stored_hashes={stored.Average():F0}"));

        var inc1 = inclusion.Order().ToArray();
        var con1 = consistency.Order().ToArray();
        Console.WriteLine($"{size:N0} entries, {samples} random proofs of each kind (index < size1 <= size2 <= {size:N0}); each checked with ProofVerifier, " +
            $"its leaf against the entry's bytes, and chained by a consistency proof to the recorded root; failures: {failures}");
        Console.WriteLine($"inclusion:   median {Ms(Q(inc1, 50)):F3} ms, p99 {Ms(Q(inc1, 99)):F3} ms, max {Ms(inc1[^1]):F3} ms ({hashesIn.Average():F1} hashes on average)");
        Console.WriteLine($"consistency: median {Ms(Q(con1, 50)):F3} ms, p99 {Ms(Q(con1, 99)):F3} ms, max {Ms(con1[^1]):F3} ms ({hashesCons.Average():F1} hashes on average)");
        Console.WriteLine(Invariant($"WL proofs.size={size} proofs.samples={samples} proofs.failures={failures} proofs.inclusion.p50_ms={Ms(Q(inc1, 50)):F4} proofs.inclusion.p99_ms={Ms(Q(inc1, 99)):F4} proofs.consistency.p50_ms={Ms(Q(con1, 50)):F4} proofs.consistency.p99_ms={Ms(Q(con1, 99)):F4}"));
        return failures == 0 ? 0 : 1;
    }

    // ---------------------------------------------------------------- helpers

    private static long Q(long[] sorted, double p) => sorted.Length == 0 ? 0 : sorted[Math.Min(sorted.Length - 1, (int)(p / 100 * sorted.Length))];

    private static double Ms(long ticks) => ticks * 1000.0 / Stopwatch.Frequency;

    private static double Us(long ticks, long n) => n == 0 ? 0 : ticks * 1e6 / Stopwatch.Frequency / n;

    private static string Invariant(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private sealed class Args(Dictionary<string, string?> values)
    {
        public static Args Parse(string[] args)
        {
            var d = new Dictionary<string, string?>();
            for (var i = 0; i < args.Length; i++)
            {
                if (!args[i].StartsWith("--", StringComparison.Ordinal)) continue;
                d[args[i]] = i + 1 < args.Length && !args[i + 1].StartsWith("--", StringComparison.Ordinal) ? args[++i] : null;
            }
            return new Args(d);
        }

        public string? Get(string name) => values.GetValueOrDefault(name);

        public bool Has(string name) => values.ContainsKey(name);

        public int Int(string name, int fallback) => Get(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;

        public long Long(string name, long fallback) => Get(name) is { } v ? long.Parse(v.Replace("_", "", StringComparison.Ordinal), CultureInfo.InvariantCulture) : fallback;

        public double Double(string name, double fallback) => Get(name) is { } v ? double.Parse(v, CultureInfo.InvariantCulture) : fallback;

        public int[] Ints(string name, int[] fallback) => Get(name) is { } v ? [.. v.Split(',').Select(x => int.Parse(x, CultureInfo.InvariantCulture))] : fallback;
    }

    /// <summary>A store opened through AddStores: a fresh SQLite folder or PostgreSQL database (dropped afterwards), or a kept SQLite folder.</summary>
    private sealed class BenchStore : IAsyncDisposable
    {
        private readonly string? _tempDir;
        private readonly string? _admin;
        private readonly string? _database;
        private readonly string _describe;

        private BenchStore(ServiceProvider services, string? tempDir, string? admin, string? database, string describe)
        {
            Services = services;
            _tempDir = tempDir;
            _admin = admin;
            _database = database;
            _describe = describe;
        }

        public ServiceProvider Services { get; }

        public string Describe() => _describe;

        public static async Task<BenchStore> CreateAsync(string? postgres, string? keptDir)
        {
            string? temp = null, database = null;
            WardlineOptions options;
            if (postgres is not null)
            {
                temp = Directory.CreateTempSubdirectory("wl-ledger-bench-").FullName;
                database = $"wlledger_{Environment.ProcessId}_{Guid.NewGuid():N}"[..40];
                await using (var admin = new NpgsqlConnection(postgres))
                {
                    await admin.OpenAsync();
                    await using var create = new NpgsqlCommand($"CREATE DATABASE {database}", admin);
                    await create.ExecuteNonQueryAsync();
                }
                options = new WardlineOptions
                {
                    PostgresConnectionString = new NpgsqlConnectionStringBuilder(postgres) { Database = database, MaxPoolSize = 100 }.ConnectionString,
                    KeyringPath = Path.Combine(temp, "keyring.json"),
                };
            }
            else
            {
                var dir = keptDir ?? (temp = Directory.CreateTempSubdirectory("wl-ledger-bench-").FullName);
                options = new WardlineOptions { DataDirectory = dir };
            }
            var services = new ServiceCollection().AddLogging().AddSingleton(Options.Create(options)).AddStores(options).BuildServiceProvider();
            await services.GetRequiredService<RecordStore>().MigrateAsync(default);
            var describe = database is not null ? $"PostgreSQL database {database}" : $"SQLite {options.DataDirectory}/wardline.db";
            return new BenchStore(services, temp, postgres, database, describe);
        }

        public async ValueTask DisposeAsync()
        {
            await Services.DisposeAsync();
            if (_database is not null)
            {
                NpgsqlConnection.ClearAllPools();
                await using var admin = new NpgsqlConnection(_admin);
                await admin.OpenAsync();
                await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {_database} WITH (FORCE)", admin);
                await drop.ExecuteNonQueryAsync();
            }
            if (_tempDir is not null) Directory.Delete(_tempDir, true);
        }
    }
}
