using System.Data;
using System.Data.Common;
using System.Diagnostics;
using System.Security.Cryptography;
using Microsoft.Data.Sqlite;
using SQLitePCL;
using Wardline.Crypto;
using Wardline.Ledger;
using Wardline.Server.Modules.Records;
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
internal sealed class LedgerVerifier(SqlDialect dialect, RecordKeys keys, IWitness witness)
{
    internal enum Depth
    {
        /// <summary>Entries, leaves, root and the witness: what start-up needs.</summary>
        Startup,

        /// <summary>Everything, including every resource version: what <c>wardline ledger verify</c> runs.</summary>
        Full,
    }

    private const int MaxProblems = 50;

    public async Task<VerifyReport> VerifyAsync(Depth depth, CancellationToken ct)
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
            heads = await witness.HeadsAsync(ct);
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
        var signedHere = await LedgerNodes.ReadHeadsAsync(c, tx, newestOnly: false, ct);
        if (signedHere.Count > 0 && await WitnessEmptyAsync(ct))
        {
            Problem($"the {witness.Describe()} holds no signed heads, but the database signed {signedHere.Count}: the witness was lost or replaced");
        }
        if (depth == Depth.Full)
        {
            // Its own copies must agree with the tree too (they are what the API serves as the newest head).
            checkHeads = [.. checkHeads, .. signedHere.Where(h => !heads.Any(w => w.Size == h.Size))];
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

        void CheckRow(Row row, Checked done)
        {
            if (!done.Leaf.AsSpan().SequenceEqual(row.Stored)) Problem($"entry {row.Idx} was altered: its bytes no longer give its stored leaf hash");
            if (done.Problem is not null) Problem(done.Problem);
            if (done.Write is { } w) writes![w.Key] = (w.Sha, row.Idx);
        }

        void Check(List<Row> rows, Checked[] done, Subtrees? subtrees)
        {
            // The batch's subtrees were hashed on the other cores: append them whole when the batch is exactly the next
            // entries and no signed head ends inside it (its root is needed at that size).
            var end = expected + rows.Count;
            if (subtrees is not null && rows[0].Idx == expected && tree.Size == expected && !(pendingHeads.TryPeek(out var head) && head.Size < end))
            {
                for (var i = 0; i < rows.Count; i++) CheckRow(rows[i], done[i]);
                foreach (var (level, hash) in subtrees.Whole) tree.AppendSubtree(level, hash, CheckNode);
                foreach (var (level, index, hash) in subtrees.Inner) CheckNode(level, index, hash);
                expected = end;
                CheckHeads();
                return;
            }
            for (var i = 0; i < rows.Count; i++)
            {
                var row = rows[i];
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
                CheckRow(row, done[i]);
                tree.Append(done[i].Leaf, CheckNode);
                expected++;
                CheckHeads();
            }
        }

        // Reading and the per-entry work overlap: while one batch of rows is hashed (and, in full, decoded and held
        // against its columns) on the other cores, the next is read; each batch is then checked and appended to the
        // tree in index order, so problems are reported in that order whatever the threads did.
        var full = depth == Depth.Full;
        var sql = "SELECT idx, entry, leaf" + (full ? ", " + ColumnList : "") + " FROM ledger_entries ORDER BY idx";
        await using (var rows = await RowReader.OpenAsync(c, tx, sql, full, ct))
        {
            await InBatchesAsync(rows.ReadAsync, rows.Read, batch => CheckAll(batch, full), (batch, result) => Check(batch, result.Rows, result.Subtrees), ct);
        }
        foreach (var h in pendingHeads)
        {
            Problem($"there is a signed head at size {h.Size} ({LedgerEntry.FormatTime(h.Timestamp)}) but the ledger holds only {tree.Size} entries: the database was rolled back or entries were deleted");
        }
        if (tree.Size != stateSize) Problem($"the ledger holds {tree.Size} entries but records its size as {stateSize}");
        else if (!tree.Root().AsSpan().SequenceEqual(stateRoot)) Problem("the entries do not give the root the ledger records");

        long versions = 0;
        if (writes is not null) versions = await CheckVersionsAsync(c, tx, writes, Problem, ct);
        return new VerifyReport(tree.Size, checkHeads.Count, versions, problems, clock.Elapsed);
    }

    /// <summary>
    /// Reads rows in batches; while one batch is worked on by <paramref name="work"/> on the other cores, the next is
    /// read. Each batch's result is then applied in the order the batches were read.
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

    private sealed record Row(long Idx, byte[] Bytes, byte[] Stored, object?[]? Columns);

    /// <summary>What the work on one entry found: its leaf hash, a column that disagrees with its bytes, the version it wrote.</summary>
    private readonly record struct Checked(byte[] Leaf, string? Problem, (ResourceKey Key, string? Sha)? Write);

    /// <summary>
    /// The hashes of a batch's complete subtrees, for appending it whole (<see cref="CompactTree.AppendSubtree"/>), and the
    /// stored levels' hashes inside them, as (level, index, hash), to check against the stored ones.
    /// </summary>
    private sealed record Subtrees(IReadOnlyList<(int Level, byte[] Hash)> Whole, List<(int Level, long Index, byte[] Hash)> Inner);

    /// <summary>
    /// Hashes (and, for full rows, decodes and compares) a batch on every core; pure per row, so order does not matter here.
    /// When the batch holds consecutive entries from a multiple of <see cref="BatchSize"/>, as it does unless entries are
    /// missing, each slice also folds its leaves into its subtree, and the slices' subtrees are joined into the batch's: the
    /// tree's interior nodes are hashed here, on every core, rather than one by one where the batches are applied.
    /// </summary>
    private static (Checked[] Rows, Subtrees? Subtrees) CheckAll(List<Row> rows, bool full)
    {
        var results = new Checked[rows.Count];
        var first = rows[0].Idx;
        var consecutive = first % BatchSize == 0;
        for (var i = 1; i < rows.Count && consecutive; i++) consecutive = rows[i].Idx == first + i;
        var slices = new CompactTree?[(rows.Count + SliceSize - 1) / SliceSize];
        var inner = new List<(int, long, byte[])>?[slices.Length];
        Parallel.For(0, slices.Length, slice =>
        {
            var start = slice * SliceSize;
            var end = Math.Min(rows.Count, start + SliceSize);
            for (var i = start; i < end; i++)
            {
                var row = rows[i];
                var leaf = MerkleHash.Leaf(row.Bytes);
                results[i] = row.Columns is null ? new Checked(leaf, null, null) : CheckColumns(row.Columns, row.Idx, row.Bytes, leaf);
            }
            if (!consecutive) return;
            var offset = first + start;
            var part = new CompactTree();
            List<(int, long, byte[])>? found = null;
            for (var i = start; i < end; i++)
            {
                part.Append(results[i].Leaf, !full ? null : (level, index, hash) =>
                {
                    if (LedgerNodes.IsStored(level)) (found ??= []).Add((level, (offset >> level) + index, hash));
                });
            }
            slices[slice] = part;
            inner[slice] = found;
        });
        if (!consecutive) return (results, null);
        var batch = new CompactTree();
        var nodes = new List<(int, long, byte[])>();
        foreach (var found in inner)
        {
            if (found is not null) nodes.AddRange(found);
        }
        foreach (var part in slices)
        {
            foreach (var (level, hash) in part!.Subtrees)
            {
                batch.AppendSubtree(level, hash, !full ? null : (l, index, h) =>
                {
                    if (LedgerNodes.IsStored(l)) nodes.Add((l, (first >> l) + index, h));
                });
            }
        }
        return (results, new Subtrees(batch.Subtrees, nodes));
    }

    /// <summary>
    /// The ledger's rows in index order. On SQLite the statement is stepped through SQLitePCL: through ADO.NET each row's
    /// reader calls and copies were most of a start-up verification (1.5 s of 2.3 s for 1,000,000 entries). A value of an
    /// unexpected type (a blob where text belongs, text in the entry) is read as what it is and fails the comparison.
    /// </summary>
    private sealed class RowReader : IAsyncDisposable
    {
        private readonly DbCommand? _command;
        private readonly DbDataReader? _reader;
        private readonly sqlite3? _db;
        private readonly sqlite3_stmt? _stmt;
        private readonly bool _full;
        private long _read;
        private bool _done;

        private RowReader(DbCommand command, DbDataReader reader, bool full) => (_command, _reader, _full) = (command, reader, full);

        private RowReader(sqlite3 db, sqlite3_stmt stmt, bool full) => (_db, _stmt, _full) = (db, stmt, full);

        public static async Task<RowReader> OpenAsync(DbConnection c, DbTransaction tx, string sql, bool full, CancellationToken ct)
        {
            if (c is SqliteConnection sqlite)
            {
                var db = sqlite.Handle ?? throw new InvalidOperationException("the connection is not open");
                var rc = raw.sqlite3_prepare_v2(db, sql, out var stmt);
                if (rc != raw.SQLITE_OK)
                {
                    stmt.Dispose();
                    throw Failure(db, rc);
                }
                return new RowReader(db, stmt, full);
            }
            var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = sql;
            try
            {
                return new RowReader(cmd, await cmd.ExecuteReaderAsync(CommandBehavior.SequentialAccess, ct), full);
            }
            catch
            {
                await cmd.DisposeAsync();
                throw;
            }
        }

        public ValueTask<bool> ReadAsync(CancellationToken ct)
        {
            if (_reader is not null) return new ValueTask<bool>(_reader.ReadAsync(ct));
            if (_done) return ValueTask.FromResult(false); // stepping again would start the statement over
            if ((++_read & 1023) == 0) ct.ThrowIfCancellationRequested();
            var rc = raw.sqlite3_step(_stmt);
            if (rc == raw.SQLITE_ROW) return ValueTask.FromResult(true);
            if (rc != raw.SQLITE_DONE) throw Failure(_db!, rc);
            _done = true;
            return ValueTask.FromResult(false);
        }

        public Row Read()
        {
            if (_reader is { } r) return new Row(r.GetInt64(0), (byte[])r.GetValue(1), (byte[])r.GetValue(2), _full ? ReadColumns(r) : null);
            var s = _stmt!;
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
            return new Row(raw.sqlite3_column_int64(s, 0), raw.sqlite3_column_blob(s, 1).ToArray(), raw.sqlite3_column_blob(s, 2).ToArray(), columns);
        }

        private static SqliteException Failure(sqlite3 db, int rc) =>
            new($"Reading the ledger failed: {raw.sqlite3_errmsg(db).utf8_to_string()}", rc, raw.sqlite3_extended_errcode(db));

        public async ValueTask DisposeAsync()
        {
            _stmt?.Dispose();
            if (_reader is not null) await _reader.DisposeAsync();
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
    private static Checked CheckColumns(object?[] columns, long idx, byte[] bytes, byte[] leaf)
    {
        LedgerEntry e;
        try
        {
            e = LedgerEntry.Decode(bytes);
        }
        catch (LedgerFormatException ex)
        {
            return new Checked(leaf, $"entry {idx} is not a valid entry: {ex.Message}", null);
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
        return new Checked(leaf, problem, write);
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
    private async Task<long> CheckVersionsAsync(DbConnection c, DbTransaction tx, Dictionary<ResourceKey, (string? Sha, long Idx)> writes, Action<string> problem, CancellationToken ct)
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
            return (await witness.HeadsAsync(ct)).Count == 0;
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
        cmd.CommandText = "SELECT public_key FROM ledger_keys ORDER BY created LIMIT 1";
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
