using System.Data.Common;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Backup;

/// <summary>One backup run as this server recorded it.</summary>
internal sealed record BackupRunRow(string Id, string Target, string Kind, string Trigger, DateTimeOffset Started, DateTimeOffset? Finished, string Status,
    long? LedgerFrom, long? LedgerSize, int Objects, long StoredBytes, int Reused, string? Manifest, string? Error);

/// <summary>
/// What the console, the API and <c>backup status</c> show: the last good backup (and its age, the number that matters:
/// a run that found nothing new counts, since the target then holds everything), the last attempt, recent history and drills.
/// </summary>
internal sealed record BackupStatusView(string? Target, string? Immutability, int IntervalSeconds, BackupRunRow? LastGood, double? LastGoodAgeSeconds, BackupRunRow? LastAttempt,
    IReadOnlyList<BackupRunRow> History, IReadOnlyList<DrillResult> Drills, string Health);

/// <summary>Reads backup_runs and backup_drills.</summary>
internal sealed class BackupStatus(SqlDialect dialect, BackupOptions options, TimeProvider time)
{
    public async Task<BackupStatusView> ReadAsync(int historyCount, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        var history = await RunsAsync(c, $"SELECT * FROM backup_runs ORDER BY started DESC LIMIT {Math.Clamp(historyCount, 1, 1000)}", ct);
        var lastGood = await LastGoodAsync(c, ct);
        var drills = await DrillsAsync(c, 20, ct);
        string? immutability;
        await using (var cmd = c.CreateCommand())
        {
            // What the target said of itself at the last run that reached it (it can change: a container gets a policy).
            cmd.CommandText = "SELECT immutability FROM backup_runs WHERE immutability IS NOT NULL ORDER BY started DESC LIMIT 1";
            immutability = await cmd.ExecuteScalarAsync(ct) as string;
        }
        var now = time.GetUtcNow();
        double? age = lastGood?.Finished is { } f ? Math.Max(0, (now - f).TotalSeconds) : null;
        var lastAttempt = history.FirstOrDefault(r => r.Status != "running") ?? history.FirstOrDefault();
        // Healthy while the last good backup is within the overdue threshold (a few intervals); the console shows this in colour.
        var health = lastGood is null ? lastAttempt?.Status == "failed" ? "failing" : "never backed up"
            : age > options.OverdueSeconds ? "overdue"
            : lastAttempt?.Status == "failed" ? "failing"
            : "ok";
        return new BackupStatusView(options.Target, immutability, options.IntervalSeconds, lastGood, age, lastAttempt, history, drills, health);
    }

    public async Task<List<DrillResult>> DrillsAsync(int count, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        return await DrillsAsync(c, count, ct);
    }

    private static async Task<List<DrillResult>> DrillsAsync(DbConnection c, int count, CancellationToken ct)
    {
        var list = new List<DrillResult>();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT id, at, target, manifest, status, restore_ms, verify_ms, rto_ms, rpo_ms, ledger_size, versions, problems, trigger_by FROM backup_drills ORDER BY at DESC LIMIT {Math.Clamp(count, 1, 1000)}";
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(new DrillResult(r.GetString(0), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1)), r.GetString(2), r.IsDBNull(3) ? null : r.GetString(3), r.GetString(4),
                L(r, 5), L(r, 6), L(r, 7), L(r, 8), L(r, 9), L(r, 10), r.IsDBNull(11) ? [] : r.GetString(11).Split('\n'), r.GetString(12)));
        }
        return list;
    }

    private static long L(DbDataReader r, int i) => r.IsDBNull(i) ? 0 : r.GetInt64(i);

    /// <summary>The last good backup (completed, or unchanged: the target then holds everything), or null.</summary>
    public async Task<BackupRunRow?> LastGoodAsync(CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        return await LastGoodAsync(c, ct);
    }

    private static async Task<BackupRunRow?> LastGoodAsync(DbConnection c, CancellationToken ct) =>
        (await RunsAsync(c, "SELECT * FROM backup_runs WHERE status IN ('completed', 'unchanged') ORDER BY started DESC LIMIT 1", ct)).FirstOrDefault();

    private static async Task<List<BackupRunRow>> RunsAsync(DbConnection c, string sql, CancellationToken ct)
    {
        var list = new List<BackupRunRow>();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql.Replace("SELECT *", "SELECT id, target, kind, trigger_by, started, finished, status, ledger_from, ledger_size, objects, stored_bytes, reused, manifest, error", StringComparison.Ordinal);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            list.Add(new BackupRunRow(r.GetString(0), r.GetString(1), r.GetString(2), r.GetString(3), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(4)),
                r.IsDBNull(5) ? null : DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(5)), r.GetString(6), r.IsDBNull(7) ? null : r.GetInt64(7), r.IsDBNull(8) ? null : r.GetInt64(8),
                r.GetInt32(9), r.GetInt64(10), r.GetInt32(11), r.IsDBNull(12) ? null : r.GetString(12), r.IsDBNull(13) ? null : r.GetString(13)));
        }
        return list;
    }
}
