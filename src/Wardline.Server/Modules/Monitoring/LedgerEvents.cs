using System.Data.Common;
using System.Globalization;
using System.Runtime.CompilerServices;
using System.Text;
using Microsoft.Data.Sqlite;
using SQLitePCL;
using Wardline.Monitoring;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Monitoring;

/// <summary>Reads ledger entries as the detections see them (<see cref="MonitorEvent"/>), from <c>ledger_entries</c>' columns, in index order.</summary>
internal static class LedgerEvents
{
    public const int Batch = 5000;

    private const string Select = "SELECT idx, at, type, event, user_name, actor, patient, res_type, res_id, action, purpose, permitted, rule, status, outcome, detail, client, source, correlation FROM ledger_entries ";

    /// <summary>Up to <paramref name="limit"/> entries after index <paramref name="after"/>: the streaming detector's read of what is new.</summary>
    public static async Task<List<MonitorEvent>> ReadAsync(SqlDialect dialect, long after, int limit, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = Select + "WHERE idx > @after ORDER BY idx LIMIT @lim";
        Migrations.AddParam(cmd, "@after", after);
        Migrations.AddParam(cmd, "@lim", limit);
        var list = new List<MonitorEvent>(Math.Min(limit, Batch));
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(Map(r));
        return list;
    }

    /// <summary>Rows a period read fetches at a time (<see cref="ReadPeriodAsync"/>).</summary>
    public const int PeriodBatch = 20_000;

    /// <summary>
    /// The entries of indexes [<paramref name="fromIdx"/>, <paramref name="toIdx"/>) in index order, a batch at a time: a replay's
    /// read of a period, whose bounds <see cref="IndexAtAsync"/> finds, and the streaming detector's warm-up. With
    /// <paramref name="blocks"/>, each range a verified monitor block holds is decoded from the block and only the rest is read
    /// from the rows. One connection for the whole period, and the next batch is read on the pool while the caller examines the
    /// current one (a replay's engine runs on one thread; the reading is the other core's).
    /// </summary>
    public static async IAsyncEnumerable<List<MonitorEvent>> ReadPeriodAsync(SqlDialect dialect, long fromIdx, long toIdx, MonitorBlocks? blocks, [EnumeratorCancellation] CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var reader = new PeriodReader(c, blocks, fromIdx, toIdx);
        var next = Task.Run(() => reader.NextAsync(ct), ct);
        try
        {
            while (true)
            {
                var batch = await next;
                if (batch.Count == 0) yield break;
                next = Task.Run(() => reader.NextAsync(ct), ct);
                yield return batch;
            }
        }
        finally
        {
            // The caller stopped early (a failure, a cancellation): the read in flight must end before its connection is closed.
            try
            {
                await next;
            }
            catch (Exception ex) when (ex is DbException or OperationCanceledException or InvalidOperationException or EventBlockFormatException)
            {
                // Nobody waits for this batch any more.
            }
        }
    }

    /// <summary>A period's reader: one batch at a time, from the blocks where they are and from the rows elsewhere.</summary>
    private sealed class PeriodReader : IAsyncDisposable
    {
        private const int BlocksAtOnce = 16;

        private readonly DbConnection _c;
        private readonly MonitorBlocks? _blocks;
        private readonly long _to;
        private readonly DbCommand _cmd;
        private readonly RawPeriodReader? _raw;
        private readonly StringPool _strings = new();
        private Dictionary<long, byte[]> _loaded = [];
        private long _loadedTo = long.MinValue;
        private long _pos;

        public PeriodReader(DbConnection c, MonitorBlocks? blocks, long from, long to)
        {
            _c = c;
            _blocks = blocks;
            _pos = Math.Max(0, from);
            _to = to;
            _cmd = c.CreateCommand();
            // By the primary key alone: each read fetches only its own rows, and nothing past its range.
            _cmd.CommandText = Select + "WHERE idx > @after AND idx < @to ORDER BY idx LIMIT @lim";
            Migrations.AddParam(_cmd, "@after", 0L);
            Migrations.AddParam(_cmd, "@to", 0L);
            Migrations.AddParam(_cmd, "@lim", 0);
            // SQLite: the statement is stepped through SQLitePCL directly (ADO.NET's per-column overhead is most of a row's cost).
            _raw = c is SqliteConnection sqlite ? new RawPeriodReader(sqlite, _cmd.CommandText, _strings) : null;
        }

        /// <summary>The next batch of about <see cref="PeriodBatch"/> entries; empty at the end of the period.</summary>
        public async Task<List<MonitorEvent>> NextAsync(CancellationToken ct)
        {
            var batch = new List<MonitorEvent>(PeriodBatch + MonitorBlocks.Size);
            while (_pos < _to && batch.Count < PeriodBatch)
            {
                var block = _pos / MonitorBlocks.Size;
                if (_blocks is not null && block >= _loadedTo)
                {
                    _loadedTo = Math.Min(block + BlocksAtOnce, (_to - 1) / MonitorBlocks.Size + 1);
                    _loaded = await _blocks.ReadAsync(_c, block, _loadedTo, ct);
                }
                if (_loaded.Remove(block, out var data) && Decode(block, data) is { } events)
                {
                    foreach (var e in events)
                    {
                        if (e.Index >= _pos && e.Index < _to) batch.Add(e);
                    }
                    _pos = (block + 1) * MonitorBlocks.Size;
                    continue;
                }
                // The rows, up to the next block that is held (or the end of the blocks looked up, or of the period).
                var end = _blocks is null ? _to : Math.Min(_to, _loadedTo * MonitorBlocks.Size);
                for (var b = block + 1; b < _loadedTo; b++)
                {
                    if (!_loaded.ContainsKey(b)) continue;
                    end = Math.Min(end, b * MonitorBlocks.Size);
                    break;
                }
                var limit = PeriodBatch - batch.Count;
                var before = batch.Count;
                if (_raw is not null) _raw.Read(_pos - 1, end, limit, batch, ct);
                else await ReadRowsAsync(_pos - 1, end, limit, batch, ct);
                _pos = batch.Count - before < limit ? end : batch[^1].Index + 1;
            }
            return batch;
        }

        /// <summary>A block's events; null (and logged) for one that verified but does not decode, whose rows are read instead.</summary>
        private List<MonitorEvent>? Decode(long block, byte[] data)
        {
            try
            {
                return EventBlock.Decode(data, _strings);
            }
            catch (EventBlockFormatException)
            {
                _blocks!.Undecodable(block);
                return null;
            }
        }

        private async Task ReadRowsAsync(long after, long to, int limit, List<MonitorEvent> into, CancellationToken ct)
        {
            _cmd.Parameters[0].Value = after;
            _cmd.Parameters[1].Value = to;
            _cmd.Parameters[2].Value = limit;
            await using var r = await _cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) into.Add(Map(r));
        }

        public async ValueTask DisposeAsync()
        {
            _raw?.Dispose();
            await _cmd.DisposeAsync();
        }
    }

    /// <summary>The ledger's size (the next index).</summary>
    public static async Task<long> SizeAsync(SqlDialect dialect, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT size FROM ledger_state WHERE id = 1";
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
    }

    /// <summary>The time of an entry (Unix ms), or null.</summary>
    public static async Task<long?> TimeOfAsync(SqlDialect dialect, long idx, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT at FROM ledger_entries WHERE idx = @i";
        Migrations.AddParam(cmd, "@i", idx);
        return await cmd.ExecuteScalarAsync(ct) is { } v and not DBNull ? Convert.ToInt64(v, CultureInfo.InvariantCulture) : null;
    }

    /// <summary>
    /// Where the entries of a time begin, by index: the first index whose entries are stamped at or after <paramref name="atMs"/>
    /// (the ledger's size when none is). The ledger's order is the truth and its clock rises but for jumps, so this is a binary
    /// search over indexes, each probe the median time of the entries within 4 of it on both sides (fewer near either end of
    /// the ledger, always as many on each side, so that on a clock that only rises the probe's time is its own): one entry whose
    /// clock jumped moves no bound. A period is then its entries by index, and an entry stamped outside it by a clock that jumped
    /// is read with its neighbours (issue 6, bad input "clock jumps"). About 24 probes of up to 9 rows by the primary key for 10M entries.
    /// </summary>
    public static async Task<long> IndexAtAsync(SqlDialect dialect, long atMs, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var state = c.CreateCommand();
        state.CommandText = "SELECT size FROM ledger_state WHERE id = 1";
        var size = Convert.ToInt64(await state.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
        await using var probe = c.CreateCommand();
        probe.CommandText = "SELECT at FROM ledger_entries WHERE idx >= @a AND idx <= @b";
        Migrations.AddParam(probe, "@a", 0L);
        Migrations.AddParam(probe, "@b", 0L);
        var times = new List<long>(9);
        long lo = 0, hi = size;
        while (lo < hi)
        {
            var mid = lo + (hi - lo) / 2;
            var radius = Math.Min(4, Math.Min(mid, size - 1 - mid));
            probe.Parameters[0].Value = mid - radius;
            probe.Parameters[1].Value = mid + radius;
            times.Clear();
            await using (var r = await probe.ExecuteReaderAsync(ct))
            {
                while (await r.ReadAsync(ct)) times.Add(r.GetInt64(0));
            }
            times.Sort();
            if (times.Count > 0 && times[times.Count / 2] < atMs) lo = mid + 1;
            else hi = mid;
        }
        return lo;
    }

    internal static MonitorEvent MapForProbe(DbDataReader r) => Map(r);

    private static MonitorEvent Map(DbDataReader r)
    {
        var patient = Text(r, 6);
        return new MonitorEvent
        {
            Index = r.GetInt64(0),
            AtMs = r.GetInt64(1),
            Kind = KindOf(r.GetString(2)),
            Event = Text(r, 3),
            User = Text(r, 4),
            Actor = Text(r, 5),
            Patient = patient is not null && patient.StartsWith("Patient/", StringComparison.Ordinal) ? patient[8..] : patient,
            ResourceType = Text(r, 7),
            ResourceId = Text(r, 8),
            Action = Text(r, 9),
            Purpose = Text(r, 10),
            Permitted = r.IsDBNull(11) ? null : Convert.ToInt32(r.GetValue(11), CultureInfo.InvariantCulture) != 0,
            Rule = Text(r, 12),
            Status = r.IsDBNull(13) ? null : Convert.ToInt32(r.GetValue(13), CultureInfo.InvariantCulture),
            Outcome = Text(r, 14),
            Detail = Text(r, 15),
            Client = Text(r, 16),
            Source = Text(r, 17),
            Correlation = Text(r, 18),
        };
    }

    private static string? Text(DbDataReader r, int i) => r.IsDBNull(i) ? null : r.GetString(i);

    private static EntryKind KindOf(string type) => type switch
    {
        "access" => EntryKind.Access,
        "security" => EntryKind.Security,
        "write" => EntryKind.Write,
        _ => EntryKind.System,
    };

    /// <summary>
    /// A period read's statement on SQLite, stepped through SQLitePCL: the same SQL and the same events as <see cref="Map"/> makes,
    /// at about half the cost a row (ADO.NET's per-column work is most of a row's cost there). The columns that repeat (type, event, user, resource type, action, purpose, rule,
    /// outcome, client, source) share one string per value (the period's <see cref="StringPool"/>), so a batch allocates mostly its events.
    /// </summary>
    private sealed class RawPeriodReader : IDisposable
    {
        // Columns whose values repeat: 2 type, 3 event, 4 user_name, 5 actor, 7 res_type, 9 action, 10 purpose, 12 rule, 14 outcome, 16 client, 17 source.
        private static readonly bool[] Shared = [false, false, true, true, true, true, false, true, false, true, true, false, true, false, true, false, true, true, false];

        private readonly sqlite3 _db;
        private readonly sqlite3_stmt _stmt;
        private readonly StringPool _strings;

        public RawPeriodReader(SqliteConnection connection, string sql, StringPool strings)
        {
            _strings = strings;
            _db = connection.Handle!;
            Check(raw.sqlite3_prepare_v2(_db, sql, out _stmt));
        }

        /// <summary>Up to <paramref name="limit"/> entries of indexes in (<paramref name="after"/>, <paramref name="to"/>), added to <paramref name="list"/>.</summary>
        public void Read(long after, long to, int limit, List<MonitorEvent> list, CancellationToken ct)
        {
            Check(raw.sqlite3_reset(_stmt));
            Check(raw.sqlite3_bind_int64(_stmt, raw.sqlite3_bind_parameter_index(_stmt, "@after"), after));
            Check(raw.sqlite3_bind_int64(_stmt, raw.sqlite3_bind_parameter_index(_stmt, "@to"), to));
            Check(raw.sqlite3_bind_int64(_stmt, raw.sqlite3_bind_parameter_index(_stmt, "@lim"), limit));
            var h = _stmt;
            while (true)
            {
                var rc = raw.sqlite3_step(_stmt);
                if (rc == raw.SQLITE_DONE) break;
                if (rc != raw.SQLITE_ROW) Check(rc);
                if ((list.Count & 1023) == 0) ct.ThrowIfCancellationRequested();
                var patient = Text(h, 6);
                list.Add(new MonitorEvent
                {
                    Index = raw.sqlite3_column_int64(h, 0),
                    AtMs = raw.sqlite3_column_int64(h, 1),
                    Kind = KindOf(Text(h, 2)!),
                    Event = Text(h, 3),
                    User = Text(h, 4),
                    Actor = Text(h, 5),
                    Patient = patient is not null && patient.StartsWith("Patient/", StringComparison.Ordinal) ? patient[8..] : patient,
                    ResourceType = Text(h, 7),
                    ResourceId = Text(h, 8),
                    Action = Text(h, 9),
                    Purpose = Text(h, 10),
                    Permitted = raw.sqlite3_column_type(h, 11) == raw.SQLITE_NULL ? null : raw.sqlite3_column_int64(h, 11) != 0,
                    Rule = Text(h, 12),
                    Status = raw.sqlite3_column_type(h, 13) == raw.SQLITE_NULL ? null : (int)raw.sqlite3_column_int64(h, 13),
                    Outcome = Text(h, 14),
                    Detail = Text(h, 15),
                    Client = Text(h, 16),
                    Source = Text(h, 17),
                    Correlation = Text(h, 18),
                });
            }
        }

        private string? Text(sqlite3_stmt h, int i)
        {
            if (raw.sqlite3_column_type(h, i) == raw.SQLITE_NULL) return null;
            // On a TEXT value, sqlite3_column_blob gives its UTF-8 bytes (the store's encoding), valid until the next step.
            var bytes = raw.sqlite3_column_blob(h, i);
            return Shared[i] ? _strings.Get(bytes) : Encoding.UTF8.GetString(bytes);
        }

        private void Check(int rc)
        {
            if (rc is not (raw.SQLITE_OK or raw.SQLITE_ROW or raw.SQLITE_DONE))
                throw new SqliteException($"Reading the ledger failed: {raw.sqlite3_errmsg(_db).utf8_to_string()}", rc);
        }

        public void Dispose() => _stmt.Dispose();
    }
}
