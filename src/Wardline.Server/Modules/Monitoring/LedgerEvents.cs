using System.Data.Common;
using System.Globalization;
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

    /// <summary>The first index at or after a time (the ledger's size when none is).</summary>
    public static async Task<long> FirstAtAsync(SqlDialect dialect, long atMs, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT MIN(idx) FROM ledger_entries WHERE at >= @at";
        Migrations.AddParam(cmd, "@at", atMs);
        return await cmd.ExecuteScalarAsync(ct) is { } v and not DBNull ? Convert.ToInt64(v, CultureInfo.InvariantCulture) : await SizeAsync(dialect, ct);
    }

    private static MonitorEvent Map(DbDataReader r)
    {
        var patient = Text(r, 6);
        return new MonitorEvent
        {
            Index = r.GetInt64(0),
            AtMs = r.GetInt64(1),
            Kind = r.GetString(2) switch
            {
                "access" => EntryKind.Access,
                "security" => EntryKind.Security,
                "write" => EntryKind.Write,
                _ => EntryKind.System,
            },
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
}
