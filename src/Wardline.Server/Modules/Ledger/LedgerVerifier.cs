using System.Data;
using System.Data.Common;
using System.Diagnostics;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Runtime.ExceptionServices;
using System.Security.Cryptography;
using System.Threading.Channels;
using Microsoft.Data.Sqlite;
using SQLitePCL;
using Wardline.Crypto;
using Wardline.Ledger;
using Wardline.Server.Modules.Access.Facts;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Search;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Ledger;

/// <summary>What a verification found: the problems, each naming the entry, head or version that differs.</summary>
internal sealed record VerifyReport(long Size, int HeadsChecked, long VersionsChecked, IReadOnlyList<string> Problems, TimeSpan Elapsed);

/// <summary>
/// Recomputes the tree from the stored entries, in one pass, and holds it against everything that vouches
/// for it: each entry's stored leaf hash, the database's recorded root, the witness's signed heads (and
/// their pinned key), and, in full, the stored subtree hashes, the searchable columns beside each entry,
/// and every stored resource version against the SHA-256 its write entry recorded.
/// </summary>
/// <param name="facts">Where given (the server's and <c>wardline ledger verify</c>'s, with their access settings), a full
/// verification also holds each present resource's access facts, care relations and search index rows to its content (<see cref="CheckDerivedAsync"/>).</param>
internal sealed class LedgerVerifier(SqlDialect dialect, RecordKeys keys, IWitness witness, FactsExtractor? facts = null)
{
    private readonly ResourceIndexer _indexer = new(keys.Blind);

    internal enum Depth
    {
        /// <summary>Entries, leaves, root and the witness: what start-up needs.</summary>
        Startup,

        /// <summary>Everything, including every resource version: what <c>wardline ledger verify</c> runs.</summary>
        Full,
    }

    private const int MaxProblems = 50;

    /// <param name="derived">In full, also hold each present resource's access facts, care relations and search index to its
    /// content (<see cref="CheckDerivedAsync"/>; needs the <c>facts</c> extractor): <c>wardline ledger verify --derived</c>.</param>
    public async Task<VerifyReport> VerifyAsync(Depth depth, CancellationToken ct, bool derived = false)
    {
        var clock = Stopwatch.StartNew();
        var problems = new List<string>();
        void Problem(string p)
        {
            if (problems.Count < MaxProblems) problems.Add(p);
        }

        // The witness's heads, checked against its pinned key, and the database's key against that pin.
        IReadOnlyList<TreeHead> heads;
        byte[]? pinned;
        try
        {
            // The start-up check holds the tree to the newest head only; a full verification to every one.
            heads = depth == Depth.Full ? await witness.HeadsAsync(ct) : await witness.NewestAsync(ct) is { } newest ? [newest] : [];
            pinned = await witness.PinnedKeyAsync(ct);
        }
        catch (LedgerFormatException ex)
        {
            heads = [];
            pinned = null;
            Problem($"the {witness.Describe()} cannot be read: {ex.Message}");
        }
        if (heads.Count > 0 && pinned is null) Problem($"the {witness.Describe()} has heads but no pinned key");
        var checkHeads = depth == Depth.Full ? heads : heads.Count > 0 ? [heads[^1]] : [];
        foreach (var h in checkHeads)
        {
            if (pinned is not null && !h.IsSignedBy(pinned)) Problem($"witness head at size {h.Size} is not signed by the pinned key");
        }
        // One snapshot for everything read from the database: the entries, the recorded size and root, the heads and
        // the versions agree with each other even while other servers append.
        await using var c = await dialect.OpenAsync(ct);
        await using var tx = await dialect.BeginSnapshotAsync(c, ct);
        if (pinned is not null)
        {
            var dbKey = await DatabaseKeyAsync(c, tx, ct);
            if (dbKey is null) Problem("the head-signing key the witness pinned is missing from the database");
            else if (!dbKey.AsSpan().SequenceEqual(pinned)) Problem("the head-signing key in the database is not the key the witness pinned");
        }

        // The database keeps a copy of every head it signed: heads there but none in the witness mean the
        // witness was lost or replaced, and with it the protection against a rollback.
        // A head goes to the witness before the database keeps its copy, so any copy in this snapshot is in the
        // witness as read now (the heads checked against the tree were read before the snapshot, so none is newer than it).
        // Heads are never taken out of a witness, so one that held heads then still does: it is read again only if it held none.
        var signedHere = await LedgerNodes.ReadHeadsAsync(c, tx, newestOnly: false, ct);
        if (signedHere.Count > 0 && heads.Count == 0 && await WitnessEmptyAsync(ct))
        {
            Problem($"the {witness.Describe()} holds no signed heads, but the database signed {signedHere.Count}: the witness was lost or replaced");
        }
        if (depth == Depth.Full)
        {
            // Its own copies must agree with the tree too (they are what the API serves as the newest head).
            // By size through a set: a year of heads every 10 s is about 3 million on each side.
            var inWitness = heads.Select(w => w.Size).ToHashSet();
            checkHeads = [.. checkHeads, .. signedHere.Where(h => !inWitness.Contains(h.Size))];
        }

        (long Size, byte[] Root) state = (-1, []);
        try
        {
            state = await LedgerNodes.ReadStateAsync(c, tx, forUpdate: false, ct);
        }
        catch (LedgerCorruptException ex)
        {
            Problem(ex.Message);
        }
        var (stateSize, stateRoot) = state;
        var nodes = depth == Depth.Full ? await StoredNodesAsync(c, tx, ct) : null;
        var pendingHeads = new Queue<TreeHead>(checkHeads.Where(h => h.Size > 0).OrderBy(h => h.Size));
        var writes = depth == Depth.Full ? new Dictionary<ResourceKey, (string? Sha, long Idx)>() : null;
        var tree = new CompactTree();
        var expected = 0L;

        void CheckNode(int level, long index, byte[] hash)
        {
            if (LedgerNodes.IsStored(level) && nodes is { } kept && (!kept.TryGetValue((level, index), out var held) || !held.AsSpan().SequenceEqual(hash)))
                Problem($"the stored hash of subtree {index} at level {level} (entries {index << level}..{((index + 1) << level) - 1}) is wrong or missing");
        }

        void CheckHeads()
        {
            while (pendingHeads.Count > 0 && pendingHeads.Peek().Size == tree.Size)
            {
                var h = pendingHeads.Dequeue();
                if (!tree.Root().AsSpan().SequenceEqual(h.Root))
                    Problem($"the ledger's first {h.Size} entries do not give the root of the signed head at size {h.Size} ({LedgerEntry.FormatTime(h.Timestamp)}): the ledger was rewritten");
            }
        }

        void CheckRow(Row row)
        {
            if (row.Altered) Problem($"entry {row.Idx} was altered: its bytes no longer give its stored leaf hash");
            if (row.Problem is not null) Problem(row.Problem);
            if (row.Write is { } w) writes![w.Key] = (w.Sha, row.Idx);
        }

        void Check(List<Row> rows, Subtrees? subtrees)
        {
            // The batch's subtrees were hashed by the reader that read it: append them whole when the batch is exactly the
            // next entries and no signed head ends inside it (its root is needed at that size).
            var end = expected + rows.Count;
            if (subtrees is not null && rows[0].Idx == expected && tree.Size == expected && !(pendingHeads.TryPeek(out var head) && head.Size < end))
            {
                foreach (var row in rows) CheckRow(row);
                foreach (var (level, hash) in subtrees.Whole) tree.AppendSubtree(level, hash, CheckNode);
                foreach (var (level, index, hash) in subtrees.Inner) CheckNode(level, index, hash);
                expected = end;
                CheckHeads();
                return;
            }
            foreach (var row in rows)
            {
                var idx = row.Idx;
                if (idx != expected)
                {
                    Problem(idx > expected ? $"entry {expected} is missing (the next stored entry is {idx})" : $"entry {idx} is out of order");
                    if (idx < expected) continue;
                    // Once an entry is gone every later subtree shifts: report the gap, not the cascade of
                    // subtree hashes after it, and keep checking leaves, heads and the recorded size.
                    expected = idx;
                    nodes = null;
                }
                CheckRow(row);
                tree.Append(row.Leaf, CheckNode);
                expected++;
                CheckHeads();
            }
        }

        // The entries are read in ranges of BatchSize on one connection per core, each range hashed (and, in full, decoded and
        // held against its columns) by the reader that read it; the ranges are then checked and appended to the tree here in
        // index order, so problems are reported in that order whatever the threads did.
        await ReadEntriesAsync(c, tx, stateSize, depth == Depth.Full, batch => Check(batch.Rows, batch.Subtrees), ct);
        foreach (var h in pendingHeads)
        {
            Problem($"there is a signed head at size {h.Size} ({LedgerEntry.FormatTime(h.Timestamp)}) but the ledger holds only {tree.Size} entries: the database was rolled back or entries were deleted");
        }
        if (tree.Size != stateSize) Problem($"the ledger holds {tree.Size} entries but records its size as {stateSize}");
        else if (!tree.Root().AsSpan().SequenceEqual(stateRoot)) Problem("the entries do not give the root the ledger records");

        long versions = 0;
        if (writes is not null)
        {
            var newest = new Dictionary<(string Type, string Id), (int Version, bool Deleted, long LastUpdated)>();
            versions = await CheckVersionsAsync(c, tx, writes, newest, Problem, ct);
            await CheckCurrentAsync(c, tx, newest, Problem, ct);
            if (derived) await CheckDerivedAsync(c, tx, facts ?? throw new InvalidOperationException("a derived-data check needs the access settings' facts extractor"), Problem, ct);
        }
        return new VerifyReport(tree.Size, checkHeads.Count, versions, problems, clock.Elapsed);
    }

    /// <summary>
    /// Reads rows in batches; while one batch is worked on by <paramref name="work"/> on the other cores, the next is
    /// read. Each batch's result is then applied in the order the batches were read. (The resource versions' check.)
    /// </summary>
    private static async Task InBatchesAsync<TRow, TResult>(Func<CancellationToken, ValueTask<bool>> next, Func<TRow> read, Func<List<TRow>, TResult> work, Action<List<TRow>, TResult> apply, CancellationToken ct)
    {
        var batch = new List<TRow>(BatchSize);
        (List<TRow> Rows, Task<TResult> Result)? working = null;
        while (true)
        {
            var more = await next(ct);
            if (more)
            {
                batch.Add(read());
                if (batch.Count < BatchSize) continue;
            }
            if (working is { } previous)
            {
                apply(previous.Rows, await previous.Result);
                working = null;
            }
            if (batch.Count > 0)
            {
                var rows = batch;
                working = (rows, Task.Run(() => work(rows), ct));
                batch = new List<TRow>(BatchSize);
            }
            if (!more && working is null) break;
        }
    }

    /// <summary>
    /// Rows per batch. Small on purpose: a batch lives while the next is read, and batches larger than the
    /// workstation GC's young generation were copied into the older ones on every collection (4,096 rows: 29-30 s
    /// to verify 1M entries and versions; 512 rows: 24-25 s).
    /// </summary>
    private const int BatchSize = 512;

    /// <summary>Rows per parallel slice of a batch: large enough that scheduling costs nothing beside hashing and decoding.</summary>
    private const int SliceSize = 128;

    /// <summary>
    /// One entry as its reader found it: its leaf hash, whether that differs from the stored leaf, and in full a column that
    /// disagrees with its bytes and the version it wrote.
    /// </summary>
    private sealed record Row(long Idx, byte[] Leaf, bool Altered, string? Problem, (ResourceKey Key, string? Sha)? Write);

    /// <summary>
    /// Hashes an entry's bytes into its leaf and compares it with the stored leaf; in full, decodes the bytes and holds them
    /// against the searchable columns. Works on the bytes where they are (on SQLite, inside the statement's row): nothing of
    /// an entry is copied but its leaf.
    /// </summary>
    private static Row Examine(long idx, ReadOnlySpan<byte> entry, ReadOnlySpan<byte> stored, object?[]? columns)
    {
        var leaf = new byte[MerkleHash.Size];
        MerkleHash.Leaf(entry, leaf);
        var altered = !stored.SequenceEqual(leaf);
        if (columns is null) return new Row(idx, leaf, altered, null, null);
        var (problem, write) = CheckColumns(columns, idx, entry);
        return new Row(idx, leaf, altered, problem, write);
    }

    /// <summary>
    /// The hashes of a batch's complete subtrees, for appending it whole (<see cref="CompactTree.AppendSubtree"/>), and the
    /// stored levels' hashes inside them, as (level, index, hash), to check against the stored ones.
    /// </summary>
    private sealed record Subtrees(IReadOnlyList<(int Level, byte[] Hash)> Whole, List<(int Level, long Index, byte[] Hash)> Inner);

    /// <summary>Rows read together, and their subtrees; <see cref="End"/> closes a range.</summary>
    private sealed record Batch(List<Row> Rows, Subtrees? Subtrees)
    {
        public static readonly Batch End = new([], null);
    }

    /// <summary>Connections reading the ledger at once: one per core (each also hashes what it reads), at most four.</summary>
    private static int Readers => Math.Clamp(Environment.ProcessorCount, 1, 4);

    /// <summary>
    /// Reads every row of ledger_entries, in ranges of <see cref="BatchSize"/> indexes, and hands each range's batches to
    /// <paramref name="apply"/> in index order. Reading a row costs about as much as hashing it, so several connections read
    /// at once, each taking every n-th range and doing the per-entry work on what it read; this connection reads its share,
    /// the first range (with any row below index 0) and everything from the last whole range below the recorded size on (with
    /// any row past it). The other connections' snapshots are
    /// taken after this one's; the entries below the size this snapshot records are the same in every later snapshot unless
    /// someone changed them, which is what the verification is there to find.
    /// </summary>
    private async Task ReadEntriesAsync(DbConnection c, DbTransaction tx, long recordedSize, bool full, Action<Batch> apply, CancellationToken ct)
    {
        var shared = Math.Max(0, recordedSize) / BatchSize; // whole ranges below the recorded size: any reader may take them
        var readers = (int)Math.Min(Readers, Math.Max(1, shared));
        (long First, long Last) Range(long i) => (i == 0 ? long.MinValue : i * BatchSize, i == shared ? long.MaxValue : i * BatchSize + BatchSize - 1);
        IEnumerable<long> RangesOf(int reader)
        {
            for (var i = (long)reader; i < shared; i += readers) yield return i;
            if (reader == 0) yield return shared;
        }
        using var stop = CancellationTokenSource.CreateLinkedTokenSource(ct);
        var channels = new Channel<Batch>[readers];
        var tasks = new Task[readers];
        for (var r = 0; r < readers; r++)
        {
            var reader = r;
            channels[r] = Channel.CreateBounded<Batch>(new BoundedChannelOptions(4) { SingleReader = true, SingleWriter = true });
            tasks[r] = Task.Run(async () =>
            {
                var output = channels[reader].Writer;
                try
                {
                    // Reader 0 reads on the main connection, in its snapshot; the others each on their own.
                    await using (var own = reader > 0 ? await dialect.OpenAsync(stop.Token) : null)
                    await using (var ownTx = own is null ? null : await dialect.BeginSnapshotAsync(own, stop.Token))
                    await using (var rows = RangeReader.Open(own ?? c, ownTx ?? tx, full))
                    {
                        foreach (var i in RangesOf(reader))
                        {
                            var (first, last) = Range(i);
                            await foreach (var batch in rows.ReadAsync(first, last, stop.Token)) await output.WriteAsync(Work(batch, full), stop.Token);
                            await output.WriteAsync(Batch.End, stop.Token);
                        }
                    }
                    output.Complete();
                }
                catch (Exception ex)
                {
                    output.Complete(ex);
                    throw;
                }
            }, stop.Token);
        }
        try
        {
            for (var i = 0L; i <= shared; i++)
            {
                var from = channels[i < shared ? (int)(i % readers) : 0].Reader;
                while (await from.ReadAsync(stop.Token) is var batch && !ReferenceEquals(batch, Batch.End)) apply(batch);
            }
        }
        catch (ChannelClosedException ex) when (ex.InnerException is not null)
        {
            ExceptionDispatchInfo.Throw(ex.InnerException); // a reader failed: its error, not the channel's
        }
        finally
        {
            await stop.CancelAsync();
            try
            {
                await Task.WhenAll(tasks);
            }
            catch (Exception) when (stop.IsCancellationRequested)
            {
                // Observed: the readers stopped because reading stopped, or their error was rethrown above.
            }
        }
    }

    /// <summary>
    /// When a batch holds consecutive entries from a multiple of <see cref="BatchSize"/>, as it does unless entries are missing,
    /// folds its leaves into its subtrees: the tree's interior nodes are hashed by the readers, rather than one by one where
    /// batches are applied.
    /// </summary>
    private static Batch Work(List<Row> rows, bool full)
    {
        var first = rows[0].Idx;
        var consecutive = first % BatchSize == 0;
        for (var i = 1; i < rows.Count && consecutive; i++) consecutive = rows[i].Idx == first + i;
        if (!consecutive) return new Batch(rows, null);
        var tree = new CompactTree();
        var inner = new List<(int, long, byte[])>();
        Action<int, long, byte[]>? stored = !full ? null : (level, index, hash) =>
        {
            if (LedgerNodes.IsStored(level)) inner.Add((level, (first >> level) + index, hash));
        };
        foreach (var row in rows) tree.Append(row.Leaf, stored);
        return new Batch(rows, new Subtrees(tree.Subtrees, inner));
    }

    /// <summary>
    /// One connection's reads of ranges of the ledger, in index order. On SQLite the statement is stepped through SQLitePCL:
    /// through ADO.NET each row's reader calls and copies were most of a start-up verification (1,000,000 rows: 1.08 s, against
    /// 0.79 s). A value of an unexpected type (a blob where text belongs, text in the entry) is read as what it is and fails
    /// the comparison.
    /// </summary>
    private sealed class RangeReader : IAsyncDisposable
    {
        private readonly DbCommand? _command;
        private readonly sqlite3? _db;
        private readonly sqlite3_stmt? _stmt;
        private readonly bool _full;

        private RangeReader(DbCommand command, bool full) => (_command, _full) = (command, full);

        private RangeReader(sqlite3 db, sqlite3_stmt stmt, bool full) => (_db, _stmt, _full) = (db, stmt, full);

        public static RangeReader Open(DbConnection c, DbTransaction tx, bool full)
        {
            var sql = "SELECT idx, entry, leaf" + (full ? ", " + ColumnList : "") + " FROM ledger_entries WHERE idx >= @first AND idx <= @last ORDER BY idx";
            if (c is SqliteConnection sqlite)
            {
                var db = sqlite.Handle ?? throw new InvalidOperationException("the connection is not open");
                var rc = raw.sqlite3_prepare_v2(db, sql, out var stmt);
                if (rc != raw.SQLITE_OK)
                {
                    stmt.Dispose();
                    throw Failure(db, rc);
                }
                return new RangeReader(db, stmt, full);
            }
            var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = sql;
            Migrations.AddParam(cmd, "@first", 0L);
            Migrations.AddParam(cmd, "@last", 0L);
            return new RangeReader(cmd, full);
        }

        /// <summary>The rows with <paramref name="first"/> &lt;= idx &lt;= <paramref name="last"/>, in batches of up to <see cref="BatchSize"/>.</summary>
        public async IAsyncEnumerable<List<Row>> ReadAsync(long first, long last, [EnumeratorCancellation] CancellationToken ct)
        {
            var batch = new List<Row>(BatchSize);
            if (_stmt is { } s)
            {
                Check(raw.sqlite3_reset(s));
                Check(raw.sqlite3_bind_int64(s, 1, first));
                Check(raw.sqlite3_bind_int64(s, 2, last));
                while (true)
                {
                    var rc = raw.sqlite3_step(s);
                    if (rc == raw.SQLITE_DONE) break;
                    if (rc != raw.SQLITE_ROW) Check(rc);
                    batch.Add(ReadRow(s));
                    if (batch.Count < BatchSize) continue;
                    ct.ThrowIfCancellationRequested();
                    yield return batch;
                    batch = new List<Row>(BatchSize);
                }
            }
            else
            {
                _command!.Parameters[0].Value = first;
                _command.Parameters[1].Value = last;
                await using var r = await _command.ExecuteReaderAsync(CommandBehavior.SequentialAccess, ct);
                while (await r.ReadAsync(ct))
                {
                    batch.Add(Examine(r.GetInt64(0), (byte[])r.GetValue(1), (byte[])r.GetValue(2), _full ? ReadColumns(r) : null));
                    if (batch.Count < BatchSize) continue;
                    yield return batch;
                    batch = new List<Row>(BatchSize);
                }
            }
            if (batch.Count > 0) yield return batch;
        }

        private Row ReadRow(sqlite3_stmt s)
        {
            object?[]? columns = null;
            if (_full)
            {
                columns = new object?[raw.sqlite3_column_count(s) - 3];
                for (var i = 0; i < columns.Length; i++)
                {
                    columns[i] = raw.sqlite3_column_type(s, 3 + i) switch
                    {
                        raw.SQLITE_NULL => null,
                        raw.SQLITE_INTEGER => raw.sqlite3_column_int64(s, 3 + i),
                        raw.SQLITE_TEXT => raw.sqlite3_column_text(s, 3 + i).utf8_to_string(),
                        raw.SQLITE_FLOAT => raw.sqlite3_column_double(s, 3 + i),
                        _ => raw.sqlite3_column_blob(s, 3 + i).ToArray(),
                    };
                }
            }
            return Examine(raw.sqlite3_column_int64(s, 0), raw.sqlite3_column_blob(s, 1), raw.sqlite3_column_blob(s, 2), columns);
        }

        private void Check(int rc)
        {
            if (rc is not (raw.SQLITE_OK or raw.SQLITE_ROW or raw.SQLITE_DONE)) throw Failure(_db!, rc);
        }

        private static SqliteException Failure(sqlite3 db, int rc) =>
            new($"Reading the ledger failed: {raw.sqlite3_errmsg(db).utf8_to_string()}", rc, raw.sqlite3_extended_errcode(db));

        public async ValueTask DisposeAsync()
        {
            _stmt?.Dispose();
            if (_command is not null) await _command.DisposeAsync();
        }
    }

    private static object?[] ReadColumns(DbDataReader r)
    {
        var values = new object?[r.FieldCount - 3];
        for (var i = 0; i < values.Length; i++)
        {
            values[i] = r.IsDBNull(3 + i) ? null : r.GetValue(3 + i) switch
            {
                string str => str,
                var n => Convert.ToInt64(n, System.Globalization.CultureInfo.InvariantCulture),
            };
        }
        return values;
    }

    private const string ColumnList = "at, type, event, user_name, client, actor, patient, resource, res_type, res_id, version, action, purpose, permitted, rule, status, outcome, detail, correlation, source";

    /// <summary>The searchable columns must say what the entry's bytes say: otherwise a search or an AuditEvent could hide an access.</summary>
    private static (string? Problem, (ResourceKey Key, string? Sha)? Write) CheckColumns(object?[] columns, long idx, ReadOnlySpan<byte> bytes)
    {
        LedgerEntry e;
        try
        {
            e = LedgerEntry.Decode(bytes);
        }
        catch (LedgerFormatException ex)
        {
            return ($"entry {idx} is not a valid entry: {ex.Message}", null);
        }
        var (resType, resId, resVersion) = LedgerRow.SplitResource(e.Resource);
        object?[] want =
        [
            e.At.ToUnixTimeMilliseconds(), e.Type, e.Event, e.User, e.Client, e.Actor, e.Patient, e.Resource, resType, resId,
            resVersion is { } v ? (long)v : null, e.Action, e.Purpose, e.Permitted is { } p ? (p ? 1L : 0L) : null, e.Rule,
            e.Status is { } s ? (long)s : null, e.Outcome, e.Detail, e.Correlation, e.Source,
        ];
        string? problem = null;
        for (var i = 0; i < want.Length; i++)
        {
            if (!Equals(columns[i], want[i]))
            {
                problem = $"entry {idx}: the column {ColumnNames[i]} does not match the entry's bytes";
                break;
            }
        }
        var write = e.Type == "write" && resType is not null && resId is not null && resVersion is { } version
            ? (new ResourceKey(resType, resId, version), e.Sha256)
            : ((ResourceKey, string?)?)null;
        return (problem, write);
    }

    private static readonly string[] ColumnNames = ColumnList.Split(", ");

    private readonly record struct ResourceKey(string Type, string Id, int Version)
    {
        public override string ToString() => $"{Type}/{Id} version {Version}";
    }

    /// <summary>
    /// Every stored version must have a write entry, and its content must hash to what that entry recorded.
    /// Versions are read in batches; a batch is decrypted and hashed on every core while the next is read, then
    /// held against the write entries in order.
    /// </summary>
    private async Task<long> CheckVersionsAsync(DbConnection c, DbTransaction tx, Dictionary<ResourceKey, (string? Sha, long Idx)> writes,
        Dictionary<(string Type, string Id), (int Version, bool Deleted, long LastUpdated)> newest, Action<string> problem, CancellationToken ct)
    {
        long count = 0;
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "SELECT v.res_type, v.res_id, v.version, v.last_updated, v.deleted, v.body, k.wrapped " +
            "FROM resource_versions v LEFT JOIN data_keys k ON k.res_type = v.res_type AND k.res_id = v.res_id ORDER BY v.res_type, v.res_id, v.version";
        await using var r = await cmd.ExecuteReaderAsync(ct);

        void Check(VersionRow v, string? sha)
        {
            count++;
            // Rows come in version order within each resource: the last one seen is its newest.
            newest[(v.Key.Type, v.Key.Id)] = (v.Key.Version, v.Deleted, v.LastUpdated);
            if (!writes.Remove(v.Key, out var entry))
            {
                problem($"{v.Key} has no write entry in the ledger: it was stored behind Wardline's back");
                return;
            }
            if (v.Deleted)
            {
                if (entry.Sha is not null) problem($"{v.Key} is stored as deleted, but ledger entry {entry.Idx} recorded content");
                return;
            }
            if (v.Body is null || v.Wrapped is null)
            {
                problem($"{v.Key}: its content or its key is missing (ledger entry {entry.Idx})");
                return;
            }
            if (sha == Undecryptable)
            {
                problem($"{v.Key} cannot be decrypted: its stored content was replaced or altered (ledger entry {entry.Idx})");
                return;
            }
            if (sha is null || entry.Sha is null || sha != entry.Sha)
            {
                problem($"{v.Key} differs from what ledger entry {entry.Idx} recorded: its content was changed after it was written");
            }
        }

        await InBatchesAsync(ct => new ValueTask<bool>(r.ReadAsync(ct)), () => new VersionRow(new ResourceKey(r.GetString(0), r.GetString(1), r.GetInt32(2)), r.GetInt64(3), r.GetInt32(4) != 0,
            r.IsDBNull(5) ? null : (byte[])r.GetValue(5), r.IsDBNull(6) ? null : (byte[])r.GetValue(6)), HashContents, (rows, shas) =>
            {
                for (var i = 0; i < rows.Count; i++) Check(rows[i], shas[i]);
            }, ct);
        foreach (var (key, entry) in writes)
        {
            problem($"ledger entry {entry.Idx} records {key.Type}/{key.Id} version {key.Version}, which is no longer stored");
        }
        return count;
    }

    private sealed record VersionRow(ResourceKey Key, long LastUpdated, bool Deleted, byte[]? Body, byte[]? Wrapped);

    /// <summary>
    /// Reads serve what <c>resources</c> points at, so each resource's row must point at its newest stored version (already held
    /// to the ledger above), with that version's deletion flag and time, and every resource with versions must have its row:
    /// otherwise an older diagnosis could be served, or a record hidden, by one UPDATE that touches no version.
    /// </summary>
    private static async Task CheckCurrentAsync(DbConnection c, DbTransaction tx, Dictionary<(string Type, string Id), (int Version, bool Deleted, long LastUpdated)> newest,
        Action<string> problem, CancellationToken ct)
    {
        // One pass over resources, each looked up among the newest versions the version check has just read: no per-row query.
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "SELECT res_type, res_id, version, deleted, last_updated FROM resources";
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var (type, id, version, deleted, lastUpdated) = (r.GetString(0), r.GetString(1), r.GetInt32(2), r.GetInt32(3) != 0, r.GetInt64(4));
                if (!newest.Remove((type, id), out var stored)) problem($"{type}/{id} is listed as a current resource but has no stored version");
                else if (stored.Version != version)
                    problem($"{type}/{id}: reads serve version {version}, but its newest stored version is {stored.Version}: the current-version pointer was changed behind Wardline's back");
                else if (stored.Deleted != deleted)
                    problem($"{type}/{id}: reads treat it as {(deleted ? "deleted" : "present")}, but its newest version {version} is {(deleted ? "not a deletion" : "a deletion")}");
                else if (stored.LastUpdated != lastUpdated) problem($"{type}/{id}: reads show a last-updated time that is not version {version}'s");
            }
        }
        foreach (var ((type, id), _) in newest.OrderBy(n => n.Key.Type, StringComparer.Ordinal).ThenBy(n => n.Key.Id, StringComparer.Ordinal).Take(MaxProblems))
            problem($"{type}/{id} has stored versions but no current-version row: reads and searches no longer find it");
    }

    /// <summary>
    /// What is derived from a resource's content when it is written must still be what that content gives: its
    /// <c>access_facts</c> row and care relations (the policy decides by them and monitoring reads them) and its search index
    /// rows (what searches find). Each present resource's current content (held to the ledger above) is derived again and its
    /// rows compared: otherwise one UPDATE could drop a record's sensitivity labels or a patient's VIP flag, invent a care
    /// relation, or delete the index rows that let a search find an allergy, with every version intact. Rows of resources that
    /// are not stored, and index rows of deleted resources, are counted too. (A deleted resource keeps the facts of its last
    /// content, which are not derived again.) Problems name the resource and the columns or index, never their values.
    /// Read a page of resources at a time by row key, with their index rows, so that no reader stays open across queries.
    /// </summary>
    private async Task CheckDerivedAsync(DbConnection c, DbTransaction tx, FactsExtractor extractor, Action<string> problem, CancellationToken ct)
    {
        var pids = new Dictionary<(string Type, string Param), int>();
        // Parameters a type gained since its resources were written have no rows until the start-up re-index: not compared.
        await ReadAllAsync(c, tx, "SELECT pid, res_type, param, pending FROM search_params", r =>
        {
            if (Convert.ToInt32(r.GetValue(3), CultureInfo.InvariantCulture) == 0) pids[(r.GetString(1), r.GetString(2))] = r.GetInt32(0);
        }, ct);

        long after = -1;
        long strayIndexRows = 0, invented = 0;
        while (true)
        {
            var page = new List<DerivedCheckRow>(BatchSize);
            await ReadAllAsync(c, tx, "SELECT r.rid, r.res_type, r.res_id, r.version, r.last_updated, v.body, k.wrapped, " +
                "f.rid, f.department, f.encounter, f.patient, f.labels, f.status, f.restricted, f.research_consent, f.staff_user " +
                "FROM resources r JOIN resource_versions v ON v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version " +
                "LEFT JOIN data_keys k ON k.res_type = r.res_type AND k.res_id = r.res_id LEFT JOIN access_facts f ON f.rid = r.rid " +
                $"WHERE r.deleted = 0 AND r.rid > {after.ToString(CultureInfo.InvariantCulture)} ORDER BY r.rid LIMIT {BatchSize}", r =>
                {
                    string? Text(int i) => r.IsDBNull(i) ? null : r.GetString(i);
                    page.Add(new DerivedCheckRow(
                        r.GetInt64(0), new ResourceKey(r.GetString(1), r.GetString(2), r.GetInt32(3)), r.GetInt64(4),
                        r.IsDBNull(5) ? null : (byte[])r.GetValue(5), r.IsDBNull(6) ? null : (byte[])r.GetValue(6),
                        r.IsDBNull(7) ? null : new FactsRow(Text(8), Text(9), Text(10), Text(11) ?? "", Text(12), Convert.ToInt32(r.GetValue(13), CultureInfo.InvariantCulture) != 0,
                            Convert.ToInt32(r.GetValue(14), CultureInfo.InvariantCulture) != 0, Text(15), [])));
                }, ct);
            if (page.Count == 0) break;
            // The index rows of the page's range of row keys: its resources', and any of a deleted or missing resource among them.
            var (lo, hi) = (after + 1, page[^1].Rid);
            var stored = new Dictionary<long, HashSet<string>>();
            void Add(long rid, string row)
            {
                if (!stored.TryGetValue(rid, out var set)) stored[rid] = set = new HashSet<string>(StringComparer.Ordinal);
                set.Add(row);
            }
            var range = $" WHERE rid >= {lo.ToString(CultureInfo.InvariantCulture)} AND rid <= {hi.ToString(CultureInfo.InvariantCulture)}";
            var relations = new Dictionary<long, List<CareRelation>>();
            await ReadAllAsync(c, tx, "SELECT rid, practitioner, patient, kind, from_at, until_at FROM care_relations" + range, r =>
            {
                var rid = r.GetInt64(0);
                if (!relations.TryGetValue(rid, out var list)) relations[rid] = list = [];
                list.Add(new CareRelation(r.GetString(1), r.GetString(2), r.IsDBNull(3) ? "" : r.GetString(3), r.IsDBNull(4) ? null : r.GetInt64(4), r.IsDBNull(5) ? null : r.GetInt64(5)));
            }, ct);
            // A deleted resource keeps the facts and relations of its last content (and no index rows).
            await ReadAllAsync(c, tx, "SELECT rid FROM resources" + range + " AND deleted <> 0", r => relations.Remove(r.GetInt64(0)), ct);
            await ReadAllAsync(c, tx, "SELECT rid, pid, hash FROM search_token" + range, r => Add(r.GetInt64(0), IndexRow(r.GetInt32(1), (byte[])r.GetValue(2))), ct);
            await ReadAllAsync(c, tx, "SELECT rid, pid, ref FROM search_ref" + range, r => Add(r.GetInt64(0), IndexRow(r.GetInt32(1), r.GetString(2))), ct);
            await ReadAllAsync(c, tx, "SELECT rid, pid, lo, hi FROM search_date" + range, r => Add(r.GetInt64(0), IndexRow(r.GetInt32(1), r.GetInt64(2), r.GetInt64(3))), ct);

            var (derived, failures) = Derive(page, extractor, pids);
            for (var i = 0; i < page.Count; i++)
            {
                var row = page[i];
                relations.Remove(row.Rid, out var held);
                stored.Remove(row.Rid, out var indexed);
                var key = $"{row.Key.Type}/{row.Key.Id}";
                if (failures[i] is { } failure) problem($"{key}: what its content (version {row.Key.Version}) gives could not be derived ({failure}), so its access facts and search index were not checked");
                if (derived[i] is not { } want) continue; // content that does not open is reported by the version check
                if (row.Stored is not { } facts) problem($"{key} has no access facts: the policy cannot place it (they were deleted behind Wardline's back)");
                else
                {
                    var columns = new List<string>();
                    if (facts.Department != want.Facts.Department) columns.Add("department");
                    if (facts.Encounter != want.Facts.Encounter) columns.Add("encounter");
                    if (facts.Patient != want.Facts.Patient) columns.Add("patient");
                    if (facts.Labels != want.Facts.Labels) columns.Add("labels");
                    if (facts.Status != want.Facts.Status) columns.Add("status");
                    if (facts.Restricted != want.Facts.Restricted) columns.Add("restricted");
                    if (facts.ResearchConsent != want.Facts.ResearchConsent) columns.Add("research_consent");
                    if (facts.StaffUser != want.Facts.StaffUser) columns.Add("staff_user");
                    if (columns.Count > 0)
                        problem($"{key}: its access facts ({string.Join(", ", columns)}) are not what its content (version {row.Key.Version}) gives: changed behind Wardline's back, or derived under other access settings or by an earlier version (wardline records rederive); the policy and monitoring decide by them");
                }
                if (!Relations(held ?? []).SequenceEqual(Relations(want.Facts.CareRelations)))
                    problem($"{key}: its care relations are not the ones its content (version {row.Key.Version}) names: changed behind Wardline's back, or derived by an earlier version (wardline records rederive); the policy grants access by them");
                var missing = want.Index.Count(r => indexed?.Contains(r) != true);
                var extra = indexed?.Count(r => !want.Index.Contains(r)) ?? 0;
                if (missing + extra > 0)
                    problem($"{key}: its search index is not what its content (version {row.Key.Version}) gives ({missing} rows missing, {extra} not its own): changed behind Wardline's back, or indexed by an earlier version (wardline records rederive); searches {(missing > 0 ? "miss it" : "find it by what it does not say")}");
            }
            // Left in the range: rows of resources deleted (which keep none) or not stored at all.
            strayIndexRows += stored.Values.Sum(v => v.Count);
            invented += relations.Values.Sum(v => v.Count);
            after = page[^1].Rid;
        }
        // The pages' ranges ran from row key 0 to the last present resource: what lies outside them.
        var outside = $"rid < 0 OR rid > {after.ToString(CultureInfo.InvariantCulture)}";
        invented += await CountAsync(c, tx, $"SELECT COUNT(*) FROM care_relations cr WHERE (cr.{outside}) " +
            "AND NOT EXISTS (SELECT 1 FROM resources r WHERE r.rid = cr.rid AND r.deleted <> 0)", ct);
        if (invented > 0) problem($"care_relations holds {invented} relations of resources that are not stored: inserted behind Wardline's back; the policy grants access by them");
        var orphans = await CountAsync(c, tx, "SELECT COUNT(*) FROM access_facts f WHERE NOT EXISTS (SELECT 1 FROM resources r WHERE r.rid = f.rid)", ct);
        if (orphans > 0) problem($"access_facts holds {orphans} rows of resources that are not stored: inserted behind Wardline's back");
        foreach (var table in (string[])["search_token", "search_ref", "search_date"])
        {
            strayIndexRows += await CountAsync(c, tx, $"SELECT COUNT(*) FROM {table} WHERE {outside}", ct);
        }
        if (strayIndexRows > 0) problem($"the search index holds {strayIndexRows} rows of resources that are deleted or not stored: inserted behind Wardline's back; searches find what is not there");
    }

    private static string IndexRow(int pid, byte[] hash) => string.Create(CultureInfo.InvariantCulture, $"t{pid}:{Convert.ToHexString(hash)}");

    private static string IndexRow(int pid, string reference) => string.Create(CultureInfo.InvariantCulture, $"r{pid}:{reference}");

    private static string IndexRow(int pid, long lo, long hi) => string.Create(CultureInfo.InvariantCulture, $"d{pid}:{lo}:{hi}");

    private static async Task ReadAllAsync(DbConnection c, DbTransaction tx, string sql, Action<DbDataReader> row, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) row(r);
    }

    private static async Task<long> CountAsync(DbConnection c, DbTransaction tx, string sql, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
    }

    private static IEnumerable<CareRelation> Relations(IEnumerable<CareRelation> list) =>
        list.Order(Comparer<CareRelation>.Create((a, b) =>
        {
            var c = string.CompareOrdinal(a.Practitioner, b.Practitioner);
            if (c == 0) c = string.CompareOrdinal(a.Patient, b.Patient);
            if (c == 0) c = string.CompareOrdinal(a.Kind, b.Kind);
            if (c == 0) c = Nullable.Compare(a.From, b.From);
            return c != 0 ? c : Nullable.Compare(a.Until, b.Until);
        }));

    private sealed record DerivedCheckRow(long Rid, ResourceKey Key, long LastUpdated, byte[]? Body, byte[]? Wrapped, FactsRow? Stored);

    private sealed record Derived(FactsRow Facts, HashSet<string> Index);

    /// <summary>
    /// What each row's content gives, as the write path derives it (at the version's own time); null where it does not open
    /// (the version check reports that), or where deriving failed, with the failure's kind.
    /// </summary>
    private (Derived?[] Derived, string?[] Failures) Derive(List<DerivedCheckRow> rows, FactsExtractor extractor, Dictionary<(string Type, string Param), int> pids)
    {
        var derived = new Derived?[rows.Count];
        var failures = new string?[rows.Count];
        Parallel.For(0, (rows.Count + SliceSize - 1) / SliceSize, slice =>
        {
            for (var i = slice * SliceSize; i < Math.Min(rows.Count, (slice + 1) * SliceSize); i++)
            {
                var v = rows[i];
                if (v.Body is null || v.Wrapped is null) continue;
                try
                {
                    if (keys.Open(new StoredVersion(v.Key.Type, v.Key.Id, v.Key.Version, v.LastUpdated, false, v.Body, v.Wrapped)) is not { } json) continue;
                    if (FhirJson.ParseStored(json) is not { } resource)
                    {
                        failures[i] = "it does not parse";
                        continue;
                    }
                    var index = _indexer.Index(resource);
                    var expected = new HashSet<string>(StringComparer.Ordinal);
                    foreach (var e in index)
                    {
                        if (!pids.TryGetValue((v.Key.Type, e.Param), out var pid)) continue;
                        expected.Add(e.Hash is not null ? IndexRow(pid, e.Hash) : e.Ref is not null ? IndexRow(pid, e.Ref) : IndexRow(pid, e.Lo!.Value, e.Hi!.Value));
                    }
                    derived[i] = new Derived(extractor.Extract(resource, index, v.LastUpdated / 1000), expected);
                }
                catch (EnvelopeException)
                {
                    // Reported by the version check.
                }
                catch (Exception ex) when (ex is not OutOfMemoryException)
                {
                    failures[i] = ex.GetType().Name; // the type only: a message could quote the content
                }
            }
        });
        return (derived, failures);
    }

    /// <summary>The marker for content that did not decrypt (a SHA-256 in hex is never this).</summary>
    private const string Undecryptable = "-";

    /// <summary>The SHA-256 (hex) of each version's decrypted content; null for a tombstone or a missing body or key.</summary>
    private string?[] HashContents(List<VersionRow> rows)
    {
        var shas = new string?[rows.Count];
        Parallel.For(0, (rows.Count + SliceSize - 1) / SliceSize, slice =>
        {
            for (var i = slice * SliceSize; i < Math.Min(rows.Count, (slice + 1) * SliceSize); i++)
            {
                var v = rows[i];
                if (v.Deleted || v.Body is null || v.Wrapped is null) continue;
                try
                {
                    var json = keys.Open(new StoredVersion(v.Key.Type, v.Key.Id, v.Key.Version, v.LastUpdated, false, v.Body, v.Wrapped));
                    shas[i] = json is null ? null : Convert.ToHexStringLower(SHA256.HashData(json));
                }
                catch (EnvelopeException)
                {
                    shas[i] = Undecryptable;
                }
            }
        });
        return shas;
    }

    private async Task<bool> WitnessEmptyAsync(CancellationToken ct)
    {
        try
        {
            return await witness.NewestAsync(ct) is null;
        }
        catch (LedgerFormatException)
        {
            return false; // reported already
        }
    }

    private static async Task<byte[]?> DatabaseKeyAsync(DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "SELECT public_key FROM ledger_keys ORDER BY created, key_id LIMIT 1";
        return await cmd.ExecuteScalarAsync(ct) as byte[];
    }

    private static async Task<Dictionary<(int, long), byte[]>> StoredNodesAsync(DbConnection c, DbTransaction tx, CancellationToken ct)
    {
        var nodes = new Dictionary<(int, long), byte[]>();
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "SELECT level, idx, hash FROM ledger_nodes";
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) nodes[(r.GetInt32(0), r.GetInt64(1))] = (byte[])r.GetValue(2);
        return nodes;
    }
}
