using System.Data.Common;
using System.Globalization;
using System.Text;
using Wardline.Backup.Format;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Backup;

/// <summary>
/// Which table goes into a backup, and how (docs/formats/backup.md, "What is backed up"). Every table of the
/// schema is in exactly one list; a test holds this against a freshly migrated store, so a new table cannot be
/// forgotten.
/// <list type="bullet">
/// <item>Ledger-ordered, append-only: <c>ledger_entries</c>, <c>ledger_nodes</c>, <c>ledger_heads</c> and the
/// <c>resource_versions</c> their write entries record. The ledger's index is the clock: a backup ships the entries
/// after the previous backup's, and the versions those entries wrote.</item>
/// <item>Per resource (<see cref="ByResource"/>): the current state of each resource a shipped write entry touched:
/// its row in <c>resources</c>, its data key, search index rows, access facts and care relations.</item>
/// <item>Whole (<see cref="Whole"/>): small tables that change in place (accounts, clients, keys, ...), shipped
/// whole, and only when their keyed fingerprint changed. Key tables (<c>oauth_keys</c>, <c>ledger_keys</c>, the
/// console's <c>dataprotection_keys</c>) hold their secrets sealed under the keyring, which every restore needs anyway:
/// a restored store signs, validates and accepts the console sessions it did before.</item>
/// </list>
/// </summary>
internal static class BackupTables
{
    public static readonly string[] Ledger = ["ledger_entries", "ledger_nodes", "ledger_heads", "resource_versions"];

    /// <summary>Keyed by the resource's row id (rid), except data_keys, keyed by type and id.</summary>
    public static readonly string[] ByResource = ["resources", "data_keys", "access_facts", "care_relations", "search_token", "search_ref", "search_date"];

    public static readonly string[] Whole =
    [
        "schema_migrations", "search_params", "users", "api_tokens", "accounts", "sign_in_failures", "break_glass",
        "oauth_keys", "oauth_clients", "oauth_redeemed_codes", "ledger_keys", "ledger_export_cursors", "dataprotection_keys",
        "interim_access_log", "interim_security_events", "backup_drills",
        "monitor_alerts", "monitor_alert_entries", "monitor_alert_events", "monitor_notifications", "monitor_state",
    ];

    /// <summary>
    /// Not shipped: ledger_state is the manifest's size and root; the run log, its segments and whether the target's backups
    /// are overdue describe the target, which holds the backups themselves; monitor blocks are derived from the ledger and
    /// built again behind it after a restore.
    /// </summary>
    public static readonly string[] NotShipped = ["ledger_state", "backup_runs", "backup_segments", "backup_watch", "monitor_blocks"];

    /// <summary>Identity columns: restored with their values kept, then each sequence moved past the largest.</summary>
    public static readonly (string Table, string Column)[] Identities =
        [("resources", "rid"), ("interim_access_log", "seq"), ("interim_security_events", "seq"), ("sign_in_failures", "seq"),
         ("monitor_alerts", "id"), ("monitor_alert_events", "seq"), ("monitor_notifications", "id")];

    public static IEnumerable<string> All => Ledger.Concat(ByResource).Concat(Whole).Concat(NotShipped);

    /// <summary>Runs <paramref name="sql"/> and collects the rows as a block (values normalised to long/double/string/bytes).</summary>
    public static async Task<RowBlock> ReadAsync(DbConnection c, DbTransaction? tx, string table, string mode, string sql, IReadOnlyList<string>? keyColumns, CancellationToken ct)
    {
        RowBlock? only = null;
        await ReadBlocksAsync(c, tx, table, mode, sql, keyColumns, int.MaxValue, b =>
        {
            only = b;
            return Task.CompletedTask;
        }, ct);
        return only!;
    }

    /// <summary>
    /// Runs <paramref name="sql"/> and hands its rows on in blocks of at most <paramref name="rowsPerBlock"/>, each
    /// applied before the next is read; a query with no rows gives one empty block.
    /// </summary>
    public static async Task ReadBlocksAsync(DbConnection c, DbTransaction? tx, string table, string mode, string sql, IReadOnlyList<string>? keyColumns, int rowsPerBlock, Func<RowBlock, Task> apply, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        cmd.CommandTimeout = 0;
        await using var r = await cmd.ExecuteReaderAsync(ct);
        var columns = new string[r.FieldCount];
        for (var i = 0; i < columns.Length; i++) columns[i] = r.GetName(i);
        var block = new RowBlock(table, mode, columns, keyColumns ?? []);
        var applied = false;
        while (await r.ReadAsync(ct))
        {
            var row = new object?[columns.Length];
            for (var i = 0; i < row.Length; i++) row[i] = Normalise(r.GetValue(i));
            block.Rows.Add(row);
            if (block.Rows.Count == rowsPerBlock)
            {
                await apply(block);
                applied = true;
                block = new RowBlock(table, mode, columns, keyColumns ?? []);
            }
        }
        if (block.Rows.Count > 0 || !applied) await apply(block);
    }

    private static object? Normalise(object value) => value switch
    {
        DBNull => null,
        short or int or long or byte or bool => Convert.ToInt64(value, CultureInfo.InvariantCulture),
        float f => (double)f,
        decimal m => (double)m,
        _ => value,
    };

    /// <summary>A comma-separated list of row ids for an IN clause (integers only, so nothing to escape).</summary>
    public static string IdList(IEnumerable<long> ids) => string.Join(",", ids.Select(i => i.ToString(CultureInfo.InvariantCulture)));

    /// <summary>
    /// Applies a block to the store being restored, inside <paramref name="tx"/>: <c>insert</c> appends (a row that
    /// is already there, such as a signed head shipped twice, is kept), <c>replace</c> empties the table first,
    /// <c>upsert</c> removes the rows of every listed key, then inserts.
    /// </summary>
    public static async Task ApplyAsync(SqlDialect dialect, DbConnection c, DbTransaction tx, RowBlock block, CancellationToken ct)
    {
        if (!All.Contains(block.Table) || NotShipped.Contains(block.Table))
            throw new BackupFormatException($"the backup holds rows of table '{block.Table}', which this Wardline does not restore");
        if (block.Mode == "replace")
        {
            await ExecAsync(c, tx, "DELETE FROM " + block.Table, ct);
        }
        else if (block.Mode == "upsert")
        {
            if (block.KeyColumns.Count == 0 || block.KeyColumns.Any(k => !block.Columns.Contains(k))) throw new BackupFormatException($"upsert block of {block.Table} has bad key columns");
            if (block.Keys.Any(k => k.Length != block.KeyColumns.Count)) throw new BackupFormatException($"upsert block of {block.Table} has a malformed key");
            if (block.KeyColumns.Count == 1 && block.Keys.All(k => k[0] is long)) await DeleteByIdsAsync(c, tx, block, ct);
            else await DeleteByKeysAsync(c, tx, block, ct);
        }
        else if (block.Mode != "insert")
        {
            throw new BackupFormatException($"block of {block.Table} has unknown mode '{block.Mode}'");
        }
        if (block.Rows.Count == 0) return;
        var identity = Identities.Any(i => i.Table == block.Table && block.Columns.Contains(i.Column));
        var target = block.Table + " (" + string.Join(", ", block.Columns.Select(Ident)) + ")" + (identity && !dialect.InProcess ? " OVERRIDING SYSTEM VALUE" : "");
        var perStatement = dialect.InProcess ? block.Rows.Count : Math.Max(1, 30_000 / block.Columns.Count);
        for (var start = 0; start < block.Rows.Count; start += perStatement)
        {
            var n = Math.Min(perStatement, block.Rows.Count - start);
            await dialect.InsertRowsAsync(c, tx, target, block.Columns.Count, n, (row, add) =>
            {
                foreach (var v in block.Rows[start + row]) add(v);
            }, ct);
        }
    }

    /// <summary>
    /// One integer key column (rid, size): the keys go as literals, a thousand to a statement, instead of a statement
    /// each; an incremental backup's resources segment holds 8,192 keys for each of seven tables.
    /// </summary>
    private static async Task DeleteByIdsAsync(DbConnection c, DbTransaction tx, RowBlock block, CancellationToken ct)
    {
        var column = Ident(block.KeyColumns[0]);
        foreach (var ids in block.Keys.Select(k => (long)k[0]!).Chunk(1000))
        {
            await ExecAsync(c, tx, $"DELETE FROM {block.Table} WHERE {column} IN ({IdList(ids)})", ct);
        }
    }

    private static async Task DeleteByKeysAsync(DbConnection c, DbTransaction tx, RowBlock block, CancellationToken ct)
    {
        await using var del = c.CreateCommand();
        del.Transaction = tx;
        del.CommandText = "DELETE FROM " + block.Table + " WHERE " + string.Join(" AND ", block.KeyColumns.Select((k, i) => $"{Ident(k)} = @k{i}"));
        var ps = block.KeyColumns.Select((_, i) =>
        {
            var p = del.CreateParameter();
            p.ParameterName = "@k" + i;
            del.Parameters.Add(p);
            return p;
        }).ToArray();
        foreach (var key in block.Keys)
        {
            for (var i = 0; i < ps.Length; i++) ps[i].Value = key[i] ?? DBNull.Value;
            await del.ExecuteNonQueryAsync(ct);
        }
    }

    /// <summary>Column names come from the backup: only plain lower-case identifiers are accepted.</summary>
    private static string Ident(string name) =>
        name.Length is > 0 and < 64 && name.All(ch => ch is (>= 'a' and <= 'z') or (>= '0' and <= '9') or '_')
            ? name
            : throw new BackupFormatException($"the backup names a column '{new string(name.Take(64).Where(char.IsAsciiLetterOrDigit).ToArray())}' that is not a plain identifier");

    public static async Task ExecAsync(DbConnection c, DbTransaction? tx, string sql, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = sql;
        cmd.CommandTimeout = 0;
        await cmd.ExecuteNonQueryAsync(ct);
    }

    /// <summary>Every table in the store (for the check that each is classified, and for "is this store empty?").</summary>
    public static async Task<List<string>> ExistingTablesAsync(SqlDialect dialect, DbConnection c, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = dialect.InProcess
            ? "SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%' ORDER BY name"
            : "SELECT table_name FROM information_schema.tables WHERE table_schema = current_schema() AND table_type = 'BASE TABLE' ORDER BY table_name";
        var names = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) names.Add(r.GetString(0));
        return names;
    }

    /// <summary>The rows of the ledger's stored subtree hashes that complete inside entries [from, to).</summary>
    public static string NodesSql(long from, long to)
    {
        var sb = new StringBuilder("SELECT level, idx, hash FROM ledger_nodes WHERE ");
        var first = true;
        for (var level = LedgerNodes.Stride; level < 63; level += LedgerNodes.Stride)
        {
            // Node (level, i) covers [i << level, (i + 1) << level): it completes inside (from, to] when from < (i + 1) << level <= to.
            var lo = from >> level;
            var hi = (to >> level) - 1;
            if (hi < lo) continue;
            sb.Append(first ? "" : " OR ").Append(CultureInfo.InvariantCulture, $"(level = {level} AND idx BETWEEN {lo} AND {hi})");
            first = false;
        }
        if (first) sb.Append("1 = 0");
        return sb.Append(" ORDER BY level, idx").ToString();
    }
}
