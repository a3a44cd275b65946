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

    /// <summary>Up to <paramref name="limit"/> entries after index <paramref name="after"/>, optionally only those in [<paramref name="fromMs"/>, <paramref name="toMs"/>).</summary>
    public static async Task<List<MonitorEvent>> ReadAsync(SqlDialect dialect, long after, int limit, CancellationToken ct, long? fromMs = null, long? toMs = null, long? upTo = null)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = Select + "WHERE idx > @after" + (fromMs is null ? "" : " AND at >= @from") + (toMs is null ? "" : " AND at < @to")
            + (upTo is null ? "" : " AND idx <= @upTo") + " ORDER BY idx LIMIT @lim";
        Migrations.AddParam(cmd, "@after", after);
        if (fromMs is not null) Migrations.AddParam(cmd, "@from", fromMs);
        if (toMs is not null) Migrations.AddParam(cmd, "@to", toMs);
        if (upTo is not null) Migrations.AddParam(cmd, "@upTo", upTo);
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
    /// read of a period, whose bounds <see cref="IndexAtAsync"/> finds. One connection for the whole period, and the next batch is
    /// read on the pool while the caller examines the current one (a replay's engine runs on one thread; the reading is the other core's).
    /// </summary>
    public static async IAsyncEnumerable<List<MonitorEvent>> ReadPeriodAsync(SqlDialect dialect, long fromIdx, long toIdx, [EnumeratorCancellation] CancellationToken ct)
    {
        var after = fromIdx - 1;
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        // By the primary key alone: each batch reads only its own rows, and nothing past the period.
        cmd.CommandText = Select + "WHERE idx > @after AND idx < @to ORDER BY idx LIMIT @lim";
        Migrations.AddParam(cmd, "@after", after);
        Migrations.AddParam(cmd, "@to", toIdx);
        Migrations.AddParam(cmd, "@lim", PeriodBatch);
        var start = cmd.Parameters[0];
        // SQLite: the statement is stepped through SQLitePCL directly (ADO.NET's per-column overhead is most of a row's cost).
        using var direct = c is SqliteConnection sqlite ? new RawPeriodReader(sqlite, cmd.CommandText, toIdx) : null;
        Task<List<MonitorEvent>> Read(long from) => direct is not null ? Task.Run(() => direct.Read(from, ct), ct) : Task.Run(() => ReadBatchAsync(cmd, start, from, ct), ct);
        var next = Read(after);
        try
        {
            while (true)
            {
                var batch = await next;
                if (batch.Count == 0) yield break;
                next = Read(batch[^1].Index);
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
            catch (Exception ex) when (ex is DbException or OperationCanceledException or InvalidOperationException)
            {
                // Nobody waits for this batch any more.
            }
        }
    }

    private static async Task<List<MonitorEvent>> ReadBatchAsync(DbCommand cmd, DbParameter start, long after, CancellationToken ct)
    {
        start.Value = after;
        var list = new List<MonitorEvent>(PeriodBatch);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(Map(r));
        return list;
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
    /// outcome, client, source) share one string per value (a bounded table per column), so a batch allocates mostly its events.
    /// </summary>
    private sealed class RawPeriodReader : IDisposable
    {
        private const int CacheLimit = 100_000;

        // Columns whose values repeat: 2 type, 3 event, 4 user_name, 5 actor, 7 res_type, 9 action, 10 purpose, 12 rule, 14 outcome, 16 client, 17 source.
        private static readonly bool[] Shared = [false, false, true, true, true, true, false, true, false, true, true, false, true, false, true, false, true, true, false];

        private readonly sqlite3 _db;
        private readonly sqlite3_stmt _stmt;
        private readonly Dictionary<string, string>[] _strings = new Dictionary<string, string>[19];

        public RawPeriodReader(SqliteConnection connection, string sql, long toIdx)
        {
            _db = connection.Handle!;
            Check(raw.sqlite3_prepare_v2(_db, sql, out _stmt));
            Check(raw.sqlite3_bind_int64(_stmt, raw.sqlite3_bind_parameter_index(_stmt, "@to"), toIdx));
            Check(raw.sqlite3_bind_int64(_stmt, raw.sqlite3_bind_parameter_index(_stmt, "@lim"), PeriodBatch));
            for (var i = 0; i < _strings.Length; i++)
            {
                if (Shared[i]) _strings[i] = new Dictionary<string, string>(StringComparer.Ordinal);
            }
        }

        public List<MonitorEvent> Read(long after, CancellationToken ct)
        {
            Check(raw.sqlite3_reset(_stmt));
            Check(raw.sqlite3_bind_int64(_stmt, raw.sqlite3_bind_parameter_index(_stmt, "@after"), after));
            var list = new List<MonitorEvent>(PeriodBatch);
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
            return list;
        }

        private string? Text(sqlite3_stmt h, int i)
        {
            if (raw.sqlite3_column_type(h, i) == raw.SQLITE_NULL) return null;
            // On a TEXT value, sqlite3_column_blob gives its UTF-8 bytes (the store's encoding), valid until the next step.
            var bytes = raw.sqlite3_column_blob(h, i);
            var table = _strings[i];
            if (table is null || bytes.Length > 128) return Encoding.UTF8.GetString(bytes);
            Span<char> chars = stackalloc char[128];
            var n = Encoding.UTF8.GetChars(bytes, chars);
            var lookup = table.GetAlternateLookup<ReadOnlySpan<char>>();
            if (lookup.TryGetValue(chars[..n], out var known)) return known;
            var text = new string(chars[..n]);
            if (table.Count < CacheLimit) table[text] = text;
            return text;
        }

        private void Check(int rc)
        {
            if (rc is not (raw.SQLITE_OK or raw.SQLITE_ROW or raw.SQLITE_DONE))
                throw new SqliteException($"Reading the ledger failed: {raw.sqlite3_errmsg(_db).utf8_to_string()}", rc);
        }

        public void Dispose() => _stmt.Dispose();
    }
}
