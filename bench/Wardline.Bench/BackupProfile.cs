using System.Diagnostics;
using System.Globalization;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Wardline.Backup;
using Wardline.Backup.Format;
using Wardline.Crypto;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;
using ZstdSharp;

namespace Wardline.Bench;

/// <summary>
/// Where a full backup's and a restore's time goes (bench/backup.sh profile), by replaying their steps with the
/// same code and SQL as <see cref="BackupWriter"/> and <see cref="BackupRestorer"/>, one stopwatch per step:
///
///   Wardline.Bench backup profile-backup --data DIR --target file:///SCRATCH [--from N] [--repeat K]
///       a full backup's segments (ledger entries with their versions, then resources with their index rows):
///       SQL read, row encoding, fingerprint (HMAC), zstd, AES-GCM sealing, SHA-256, upload; written, no manifest.
///       With --from N, an incremental's: ledger entries from N on and the resources they wrote (rid IN lists);
///       --repeat K runs it K times in one process (the first pass pays the JIT, the later ones do not).
///   Wardline.Bench backup profile-run --data DIR --target URI [--full]
///       one real run of BackupWriter.RunAsync (what `wardline backup now` runs), with the time of each phase it
///       reports (reading the target, ledger entries, versions and resources (read at the same time), manifest) and of the uploads.
///   Wardline.Bench backup profile-restore --data DIR --from file:///TARGET --to NEWDIR
///       the newest backup on TARGET restored into a new SQLite store in NEWDIR as BackupRestorer's bulk load does it
///       (no flushed commits, secondary indexes dropped and built once): read, checksum, open (decrypt and decompress),
///       decode, the inserts of each table, each index build, the commits; no verification (the CLI times that phase).
/// </summary>
internal static class BackupProfile
{
    public static async Task<int> RunAsync(string[] args)
    {
        string Get(string name)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : throw new ArgumentException($"{name} is required");
        }
        var options = new WardlineOptions { DataDirectory = Get("--data") };
        await using var sp = new ServiceCollection().AddLogging().AddSingleton(Options.Create(options)).AddStores(options).BuildServiceProvider();
        await sp.GetRequiredService<RecordStore>().MigrateAsync(default);
        var keys = sp.GetRequiredService<RecordKeys>();
        if (args[0] == "profile-run")
        {
            await using var target = new TimedStore(BackupTargets.Open(Get("--target"), new BackupTargetSettings()));
            await ProfileRunAsync(sp.GetRequiredService<BackupWriter>(), target, args.Contains("--full"));
        }
        else if (args[0] == "profile-backup")
        {
            await using var target = BackupTargets.Open(Get("--target"), new BackupTargetSettings());
            var from = Array.IndexOf(args, "--from") is var f and >= 0 ? long.Parse(args[f + 1], CultureInfo.InvariantCulture) : 0;
            var repeat = Array.IndexOf(args, "--repeat") is var n and >= 0 ? int.Parse(args[n + 1], CultureInfo.InvariantCulture) : 1;
            for (var pass = 1; pass <= repeat; pass++)
            {
                Console.WriteLine($"pass {pass} of {repeat} in this process{(pass == 1 ? " (cold: first use of every path)" : " (warm)")}");
                await ProfileBackupAsync(sp.GetRequiredService<SqlDialect>(), keys, target, from);
            }
        }
        else
        {
            await using var source = BackupTargets.Open(Get("--from"), new BackupTargetSettings());
            await ProfileRestoreAsync(keys, source, Get("--to"));
        }
        return 0;
    }

    private sealed class Clock
    {
        private readonly Dictionary<string, long> _ticks = [];
        private readonly List<string> _order = [];
        private readonly Stopwatch _total = Stopwatch.StartNew();

        public T Time<T>(string step, Func<T> f)
        {
            var t0 = Stopwatch.GetTimestamp();
            try { return f(); } finally { Add(step, Stopwatch.GetTimestamp() - t0); }
        }

        public async Task<T> TimeAsync<T>(string step, Func<Task<T>> f)
        {
            var t0 = Stopwatch.GetTimestamp();
            try { return await f(); } finally { Add(step, Stopwatch.GetTimestamp() - t0); }
        }

        private void Add(string step, long ticks)
        {
            if (!_ticks.ContainsKey(step)) _order.Add(step);
            _ticks[step] = _ticks.GetValueOrDefault(step) + ticks;
        }

        public void Print(string title, long bytes)
        {
            var total = _total.Elapsed.TotalSeconds;
            Console.WriteLine(FormattableString.Invariant($"{title}: {total:F1} s in all, {bytes / 1048576.0:F0} MiB stored"));
            foreach (var step in _order)
            {
                var s = _ticks[step] * 1.0 / Stopwatch.Frequency;
                Console.WriteLine(FormattableString.Invariant($"  {step,-44} {s,8:F1} s {100 * s / total,5:F1}%"));
            }
            Console.WriteLine(FormattableString.Invariant($"WL {title.Replace(' ', '_')}.seconds={total:F1}"));
        }
    }

    private static string Sql(FormattableString s) => s.ToString(CultureInfo.InvariantCulture);

    private static async System.Threading.Tasks.Task ProfileBackupAsync(SqlDialect dialect, RecordKeys keys, IBackupStore target, long from)
    {
        var clock = new Clock();
        var cipher = keys.Cipher;
        var fingerprints = new ContentAuthenticator(keys.Keyring, BackupCatalog.FingerprintPurpose);
        await target.PrepareAsync(default);
        await using var c = await dialect.OpenAsync(default);
        await using var tx = await dialect.BeginSnapshotAsync(c, default);
        long size;
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "SELECT size FROM ledger_state WHERE id = 1";
            size = Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
        }
        long stored = 0;
        var run = "profile-" + Guid.NewGuid().ToString("N")[..8];

        async System.Threading.Tasks.Task SealAndPutAsync(string kind, string name, List<RowBlock> blocks)
        {
            var payload = clock.Time($"{kind}: encode rows (RowCodec)", () => BackupWriter.Payload(blocks));
            clock.Time($"{kind}: fingerprint (HMAC-SHA256)", () => fingerprints.Tag(payload));
            // zstd alone, to split SegmentCodec.Seal into compression and the rest (key, AES-GCM, copy).
            var zstd = clock.Time($"{kind}: zstd level {SegmentCodec.CompressionLevel} (alone, for the split)", () =>
            {
                using var z = new Compressor(SegmentCodec.CompressionLevel);
                return z.Wrap(payload).Length;
            });
            var segment = clock.Time($"{kind}: SegmentCodec.Seal (zstd + AES-GCM)", () => SegmentCodec.Seal(cipher, name, run, payload));
            clock.Time($"{kind}: SHA-256 checksum", () => SegmentCodec.Checksum(segment));
            await clock.TimeAsync($"{kind}: upload (file://, not overlapped here)", async () => { await target.PutAsync(name, segment, null, default); return 0; });
            stored += segment.Length;
            _ = zstd;
        }

        var full = from == 0;
        for (var a = from; a < size; a += BackupWriter.EntriesPerSegment)
        {
            var b = Math.Min(size, a + BackupWriter.EntriesPerSegment);
            var blocks = new List<RowBlock>
            {
                await clock.TimeAsync("ledger: SQL read ledger_entries", () => BackupTables.ReadAsync(c, tx, "ledger_entries", "insert", Sql($"SELECT * FROM ledger_entries WHERE idx >= {a} AND idx < {b} ORDER BY idx"), null, default)),
                await clock.TimeAsync("ledger: SQL read ledger_nodes", () => BackupTables.ReadAsync(c, tx, "ledger_nodes", "insert", BackupTables.NodesSql(a, b), null, default)),
                await clock.TimeAsync("ledger: SQL read resource_versions (join)", () => BackupTables.ReadAsync(c, tx, "resource_versions", "insert", Sql(
                    $"SELECT v.* FROM ledger_entries e JOIN resource_versions v ON v.res_type = e.res_type AND v.res_id = e.res_id AND v.version = e.version WHERE e.type = 'write' AND e.idx >= {a} AND e.idx < {b} ORDER BY e.idx"), null, default)),
                await clock.TimeAsync("ledger: SQL read ledger_heads", () => BackupTables.ReadAsync(c, tx, "ledger_heads", "upsert", Sql($"SELECT * FROM ledger_heads WHERE size >= {a} AND size <= {b} ORDER BY size"), ["size"], default)),
            };
            await SealAndPutAsync("ledger", Sql($"segments/{run}/ledger-{a:D16}-{b:D16}.seg"), blocks);
        }

        var rids = new List<long>();
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = full
                ? "SELECT rid FROM resources ORDER BY rid"
                : Sql($"SELECT DISTINCT r.rid FROM ledger_entries e JOIN resources r ON r.res_type = e.res_type AND r.res_id = e.res_id WHERE e.type = 'write' AND e.idx >= {from} AND e.idx < {size} ORDER BY r.rid");
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync()) rids.Add(r.GetInt64(0));
        }
        for (var i = 0; i < rids.Count; i += BackupWriter.ResourcesPerSegment)
        {
            var chunk = rids.GetRange(i, Math.Min(BackupWriter.ResourcesPerSegment, rids.Count - i));
            // As BackupWriter: a range in a full backup, the listed rids in an incremental one.
            var where = full ? Sql($"rid BETWEEN {chunk[0]} AND {chunk[^1]}") : "rid IN (" + BackupTables.IdList(chunk) + ")";
            var blocks = new List<RowBlock>
            {
                await clock.TimeAsync("resources: SQL read resources", () => BackupTables.ReadAsync(c, tx, "resources", "insert", "SELECT * FROM resources WHERE " + where + " ORDER BY rid", null, default)),
                await clock.TimeAsync("resources: SQL read data_keys (join)", () => BackupTables.ReadAsync(c, tx, "data_keys", "insert",
                    "SELECT k.* FROM data_keys k JOIN resources r ON r.res_type = k.res_type AND r.res_id = k.res_id WHERE r." + where + " ORDER BY r.rid", null, default)),
            };
            foreach (var table in new[] { "access_facts", "care_relations", "search_token", "search_ref", "search_date" })
                blocks.Add(await clock.TimeAsync($"resources: SQL read {table}", () => BackupTables.ReadAsync(c, tx, table, "insert", "SELECT * FROM " + table + " WHERE " + where, null, default)));
            await SealAndPutAsync("resources", Sql($"segments/{run}/resources-{i / BackupWriter.ResourcesPerSegment:D6}.seg"), blocks);
        }
        await tx.RollbackAsync();
        clock.Print(full ? "profile backup" : $"profile incremental from {from}", stored);
        Console.WriteLine("  (the zstd line repeats the compression inside SegmentCodec.Seal: the sum of the lines exceeds the total by it)");
        Console.WriteLine("  (replayed on one thread: BackupWriter encodes, fingerprints, seals and uploads each segment on the other core while it reads the next)");
    }

    private static async System.Threading.Tasks.Task ProfileRestoreAsync(RecordKeys keys, IBackupStore source, string to)
    {
        var clock = new Clock();
        var cipher = keys.Cipher;
        var authenticator = new ContentAuthenticator(keys.Keyring, BackupCatalog.ManifestPurpose);
        var manifest = await clock.TimeAsync("choose the manifest", () => BackupRestorer.ChooseAsync(source, authenticator, null, null, default));
        if (manifest.Objects.Any(o => o.Kind == Wardline.Backup.Format.ManifestObject.ImageKind))
        {
            Console.WriteLine("profile restore: the chain starts with a SQLite database image (ADR 0010), which is written back as the file, not replayed row by row; see the restore step's own time");
            return;
        }
        Directory.CreateDirectory(to);
        var target = SqlDialect.Sqlite(Path.Combine(to, "wardline.db"));
        await clock.TimeAsync("create the schema", () => Migrations.ApplyAsync(target, manifest.Schema, default));
        // As BackupRestorer's bulk load: commits not flushed, secondary indexes dropped while the chain's full backup
        // loads and built once before its first incremental segment, a commit every 128 MB of segments.
        await using var c = await target.OpenAsync(default);
        await BackupTables.ExecAsync(c, null, "PRAGMA synchronous=OFF; PRAGMA cache_size=-262144;", default);
        var indexes = new List<(string Name, string Sql)>();
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND sql IS NOT NULL";
            await using var r = await cmd.ExecuteReaderAsync();
            while (await r.ReadAsync()) indexes.Add((r.GetString(0), r.GetString(1)));
        }
        foreach (var (name, _) in indexes) await BackupTables.ExecAsync(c, null, "DROP INDEX " + name, default);
        var chainPrefix = $"segments/{manifest.Chain}/";
        long bytes = 0, inTransaction = 0;
        var tx = await c.BeginTransactionAsync();
        foreach (var o in manifest.Objects)
        {
            var segment = await clock.TimeAsync("read the segment (file://)", () => source.GetAsync(o.Name, default));
            clock.Time("SHA-256 checksum", () => SegmentCodec.Checksum(segment));
            var payload = clock.Time("SegmentCodec.Open (AES-GCM + zstd)", () => SegmentCodec.Open(cipher, o.Name, segment));
            var blocks = clock.Time("decode rows (RowCodec)", () => RowCodec.ReadAll(payload));
            bytes += segment.Length;
            if (indexes.Count > 0 && !o.Name.StartsWith(chainPrefix, StringComparison.Ordinal))
            {
                foreach (var (name, sql) in indexes) await clock.TimeAsync($"create index {name}", async () => { await BackupTables.ExecAsync(c, tx, sql, default); return 0; });
                indexes.Clear();
            }
            foreach (var block in blocks)
                await clock.TimeAsync($"{(o.Name.StartsWith(chainPrefix, StringComparison.Ordinal) ? "full" : "incr")}: {block.Mode} {block.Table}", async () => { await BackupTables.ApplyAsync(target, c, tx, block, default); return 0; });
            inTransaction += o.Bytes;
            if (inTransaction > 128L * 1024 * 1024)
            {
                await clock.TimeAsync("commit (every 128 MB, not flushed)", async () => { await tx.CommitAsync(); return 0; });
                await tx.DisposeAsync();
                tx = await c.BeginTransactionAsync();
                inTransaction = 0;
            }
        }
        foreach (var (name, sql) in indexes) await clock.TimeAsync($"create index {name}", async () => { await BackupTables.ExecAsync(c, tx, sql, default); return 0; });
        await clock.TimeAsync("commit (every 128 MB, not flushed)", async () => { await tx.CommitAsync(); return 0; });
        await tx.DisposeAsync();
        await clock.TimeAsync("synchronous=FULL + wal_checkpoint(TRUNCATE)", async () => { await BackupTables.ExecAsync(c, null, "PRAGMA synchronous=FULL; PRAGMA wal_checkpoint(TRUNCATE);", default); return 0; });
        clock.Print("profile restore", bytes);
        Console.WriteLine("  (replayed on one thread: BackupRestorer reads, opens and decodes the next segment on the other core while the current one is inserted)");
    }

    private static async System.Threading.Tasks.Task ProfileRunAsync(BackupWriter writer, TimedStore target, bool full)
    {
        var clock = Stopwatch.StartNew();
        var phases = new List<(string Phase, double At)>();
        var progress = new SyncProgress(p =>
        {
            lock (phases)
            {
                if (phases.Count == 0 || phases[^1].Phase != p.Phase) phases.Add((p.Phase, clock.Elapsed.TotalSeconds));
            }
        });
        var result = await writer.RunAsync(target, new BackupOptions(), full, "bench", progress, default);
        var end = clock.Elapsed.TotalSeconds;
        Console.WriteLine(FormattableString.Invariant(
            $"{result.Kind} backup {result.Status}: {result.Manifest?.LedgerFrom}..{result.Manifest?.LedgerSize}, {result.Stored} objects ({result.StoredBytes / 1048576.0:F1} MiB) in {end:F2} s (BackupWriter.RunAsync in-process){(result.Error is null ? "" : ": " + result.Error)}"));
        for (var i = 0; i < phases.Count; i++)
        {
            var until = i + 1 < phases.Count ? phases[i + 1].At : end;
            Console.WriteLine(FormattableString.Invariant($"  phase {phases[i].Phase,-32} {until - phases[i].At,8:F2} s (from {phases[i].At:F2} s)"));
        }
        Console.WriteLine(FormattableString.Invariant($"  before the first phase report (run row) {(phases.Count > 0 ? phases[0].At : end):F2} s; uploads (overlapped with reading): {target.Puts} puts, {target.PutSeconds:F2} s; reads of the target: {target.Gets} gets + lists, {target.GetSeconds:F2} s"));
        Console.WriteLine(FormattableString.Invariant($"WL profile_run.{result.Kind}.seconds={end:F2}"));
    }

    /// <summary>Reports synchronously on the caller's thread (Progress&lt;T&gt; would post to the pool and blur the times).</summary>
    private sealed class SyncProgress(Action<BackupProgress> report) : IProgress<BackupProgress>
    {
        public void Report(BackupProgress value) => report(value);
    }

    /// <summary>Times the calls into a real store; changes nothing.</summary>
    private sealed class TimedStore(IBackupStore inner) : IBackupStore
    {
        private long _putTicks, _getTicks;

        public int Puts { get; private set; }

        public int Gets { get; private set; }

        public double PutSeconds => _putTicks * 1.0 / Stopwatch.Frequency;

        public double GetSeconds => _getTicks * 1.0 / Stopwatch.Frequency;

        public string Display => inner.Display;

        public BackupImmutability Immutability => inner.Immutability;

        public Task PrepareAsync(CancellationToken ct) => inner.PrepareAsync(ct);

        public async Task PutAsync(string name, ReadOnlyMemory<byte> content, DateTimeOffset? retainUntil, CancellationToken ct)
        {
            var t0 = Stopwatch.GetTimestamp();
            await inner.PutAsync(name, content, retainUntil, ct);
            Interlocked.Add(ref _putTicks, Stopwatch.GetTimestamp() - t0);
            Puts++;
        }

        public async Task<byte[]> GetAsync(string name, CancellationToken ct)
        {
            var t0 = Stopwatch.GetTimestamp();
            var bytes = await inner.GetAsync(name, ct);
            _getTicks += Stopwatch.GetTimestamp() - t0;
            Gets++;
            return bytes;
        }

        public Task<BackupObjectInfo?> StatAsync(string name, CancellationToken ct) => inner.StatAsync(name, ct);

        public async IAsyncEnumerable<BackupObjectInfo> ListAsync(string prefix, [System.Runtime.CompilerServices.EnumeratorCancellation] CancellationToken ct)
        {
            var t0 = Stopwatch.GetTimestamp();
            await foreach (var o in inner.ListAsync(prefix, ct)) yield return o;
            _getTicks += Stopwatch.GetTimestamp() - t0;
            Gets++;
        }

        public Task DeleteAsync(string name, CancellationToken ct) => inner.DeleteAsync(name, ct);

        public ValueTask DisposeAsync() => inner.DisposeAsync();
    }
}
