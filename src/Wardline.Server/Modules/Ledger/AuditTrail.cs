using System.Data.Common;
using Wardline.Ledger;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Ledger;

/// <summary>One disclosure of a patient's record, as the accounting of disclosures lists it: an access decision or a write.</summary>
internal sealed record Disclosure(
    long Index,
    DateTimeOffset At,
    string? User,
    IReadOnlyList<string> Roles,
    string? Client,
    string Action,
    string? Resource,
    string? Purpose,
    bool Permitted,
    string? Rule,
    string? Reason,
    string? Source,
    string? Correlation);

/// <summary>One stored ledger entry with its index.</summary>
internal sealed record AuditItem(long Index, LedgerEntry Entry);

/// <summary>
/// Entries that make one audit event: the decisions of one request about one patient (grouped by
/// correlation and patient), or a single security or write entry. <see cref="Id"/> is the first entry's index.
/// </summary>
internal sealed record AuditGroup(long Id, IReadOnlyList<AuditItem> Items)
{
    public LedgerEntry First => Items[0].Entry;
}

/// <summary>
/// An audit-event search. <see cref="Patient"/> is a bare id; <see cref="Entity"/> is "Type/id" (a version
/// suffix is ignored); <see cref="To"/> is exclusive; <see cref="After"/> is the last group id of the previous page.
/// </summary>
internal sealed record AuditQuery(
    string? Patient = null,
    string? Agent = null,
    string? Entity = null,
    DateTimeOffset? From = null,
    DateTimeOffset? To = null,
    bool? Permitted = null,
    string? Action = null,
    string? Type = null,
    int Count = 50,
    long? After = null);

/// <summary>A page of audit groups, oldest first; <see cref="Next"/> is the <see cref="AuditQuery.After"/> of the next page.</summary>
internal sealed record AuditPage(IReadOnlyList<AuditGroup> Groups, long? Next);

/// <summary>
/// The one query over <c>ledger_entries</c> that the audit API, the console and the CLI use. Every read
/// of a patient's audit trail is itself recorded in the ledger (phase "audit") before it is returned.
/// </summary>
internal sealed class AuditTrail(SqlDialect dialect, IAccessRecorder recorder, TimeProvider time)
{
    /// <summary>Access phases that disclose or describe a patient's data to someone.</summary>
    public static readonly string[] DisclosurePhases = ["decision", "review", "explain"];

    public const string AuditPhase = "audit";

    public const int MaxCount = 1000;

    /// <summary>
    /// Every access decision, review and explanation and every write touching <c>Patient/{patientId}</c> in
    /// [<paramref name="from"/>, <paramref name="to"/>), oldest first. Records first that <paramref name="viewer"/> read this trail.
    /// </summary>
    public async Task<IReadOnlyList<Disclosure>> DisclosuresAsync(string patientId, DateTimeOffset? from, DateTimeOffset? to, string viewer, string? source, CancellationToken ct)
    {
        var items = await QueryAsync(new AuditQuery(Patient: patientId, From: from, To: to, Count: int.MaxValue), ct);
        var list = new List<Disclosure>();
        foreach (var i in items)
        {
            var e = i.Entry;
            var isAccess = e.Type == "access";
            if (isAccess && Array.IndexOf(DisclosurePhases, e.Event) < 0) continue;
            if (!isAccess && e.Type != "write") continue;
            list.Add(new Disclosure(i.Index, e.At, e.User, e.Roles ?? [], e.Client,
                isAccess ? e.Action ?? "Read" : WriteAction(e.Event), e.Resource, e.Purpose,
                isAccess ? e.Permitted ?? false : true, e.Rule, e.Reason, e.Source, e.Correlation));
        }
        await RecordReadAsync([patientId], viewer, source, ct);
        return list;
    }

    /// <summary>Audit events matching the query, grouped, oldest first. Records that <paramref name="viewer"/> read each patient's trail shown.</summary>
    public async Task<AuditPage> SearchAsync(AuditQuery q, string viewer, string? source, CancellationToken ct)
    {
        var groups = new List<AuditGroup>();
        var after = q.After;
        long? next = null;
        // Entries are fetched in windows and grouped; a request's decisions sit close together in the ledger.
        while (true)
        {
            var window = Math.Min(Math.Max(q.Count * 4, 64), 4000);
            var items = await QueryAsync(q with { After = after, Count = window }, ct);
            if (items.Count == 0) break;
            foreach (var g in Group(items))
            {
                if (groups.Count == q.Count)
                {
                    next = groups[^1].Id;
                    break;
                }
                if (groups.Count > 0 && groups[^1].Id == g.Id) continue;
                groups.Add(g);
            }
            if (next is not null || items.Count < window) break;
            after = items[^1].Index;
        }
        if (next is null && groups.Count == q.Count && q.Count > 0)
            next = (await QueryAsync(q with { After = groups[^1].Items.Max(i => i.Index), Count = 1 }, ct)).Count > 0 ? groups[^1].Id : null;
        var patients = groups.Select(g => g.First.Patient).OfType<string>().Select(p => p[8..]).Distinct(StringComparer.Ordinal).ToList();
        if (q.Patient is not null && !patients.Contains(q.Patient)) patients.Add(q.Patient);
        await RecordReadAsync(patients, viewer, source, ct);
        return new AuditPage(groups, next);
    }

    /// <summary>The audit event whose first entry has this index, or null. Records the read when it names a patient.</summary>
    public async Task<AuditGroup?> ReadAsync(long id, string viewer, string? source, CancellationToken ct)
    {
        var first = await QueryAsync(new AuditQuery(After: id - 1, Count: 1), ct);
        if (first.Count == 0 || first[0].Index != id) return null;
        var head = first[0].Entry;
        var items = new List<AuditItem> { first[0] };
        if (head.Type == "access" && head.Correlation is not null)
        {
            // The request's other decisions about the same patient follow it.
            var rest = await QueryAsync(new AuditQuery(After: id, Count: 4000) { }, ct, head.Correlation);
            items.AddRange(rest.Where(r => r.Entry.Type == "access" && r.Entry.Patient == head.Patient && IsGrouped(r.Entry)));
            if (!IsGrouped(head)) items = [first[0]];
        }
        // Only the group's first entry names the event: a later entry of a group is not an event of its own.
        var earlier = head.Correlation is null || !IsGrouped(head) ? []
            : (await QueryAsync(new AuditQuery(Count: 4000), ct, head.Correlation)).Where(r => r.Index < id && r.Entry.Patient == head.Patient && IsGrouped(r.Entry)).ToList();
        if (earlier.Count > 0) return null;
        if (head.Patient is { Length: > 8 } p) await RecordReadAsync([p[8..]], viewer, source, ct);
        return new AuditGroup(id, items);
    }

    /// <summary>Write entries for a resource ("Type/id", optionally "/_history/n") or a patient, oldest first.</summary>
    public async Task<IReadOnlyList<AuditItem>> WritesAsync(string? target, string? patientId, int count, string viewer, string? source, CancellationToken ct)
    {
        var items = await QueryAsync(new AuditQuery(Patient: patientId, Entity: target, Type: "write", Count: count), ct);
        var patients = items.Select(i => i.Entry.Patient).OfType<string>().Select(p => p[8..]).Distinct(StringComparer.Ordinal).ToList();
        await RecordReadAsync(patients, viewer, source, ct);
        return items;
    }

    /// <summary>True for access entries that make up an audit event (a request row or an outcome row is context, not a disclosure).</summary>
    internal static bool IsGrouped(LedgerEntry e) => e.Type == "access" && e.Correlation is not null && e.Patient is not null;

    private static IEnumerable<AuditGroup> Group(IReadOnlyList<AuditItem> items)
    {
        var open = new Dictionary<(string, string), List<AuditItem>>();
        var order = new List<(long Id, List<AuditItem> Items)>();
        foreach (var i in items)
        {
            if (IsGrouped(i.Entry))
            {
                var key = (i.Entry.Correlation!, i.Entry.Patient!);
                if (open.TryGetValue(key, out var list))
                {
                    list.Add(i);
                    continue;
                }
                list = [i];
                open[key] = list;
                order.Add((i.Index, list));
            }
            else
            {
                order.Add((i.Index, [i]));
            }
        }
        return order.Select(o => new AuditGroup(o.Id, o.Items));
    }

    private async Task RecordReadAsync(IReadOnlyList<string> patientIds, string viewer, string? source, CancellationToken ct)
    {
        if (patientIds.Count == 0) return;
        var at = time.GetUtcNow();
        var correlation = Guid.NewGuid().ToString("N");
        await recorder.RecordAsync([.. patientIds.Select(p => new AccessRecord(at, viewer, new FhirInteraction(FhirAction.Read, "AuditEvent", null), AuditPhase,
            new AccessDecision(true, "audit-trail", "accounting of disclosures"), null, "AuditEvent", correlation, source) { Patient = "Patient/" + p })], ct);
    }

    private static string WriteAction(string? @event) => @event switch
    {
        "create" => "Create",
        "delete" => "Delete",
        _ => "Update",
    };

    private async Task<List<AuditItem>> QueryAsync(AuditQuery q, CancellationToken ct, string? correlation = null)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        var where = new List<string>();
        if (q.After is { } after)
        {
            where.Add("idx > @after");
            Migrations.AddParam(cmd, "@after", after);
        }
        if (q.Patient is { } patient)
        {
            where.Add("(patient = @patient OR resource = @patient OR resource LIKE @patientVersions)");
            Migrations.AddParam(cmd, "@patient", "Patient/" + patient);
            Migrations.AddParam(cmd, "@patientVersions", "Patient/" + patient + "/_history/%");
        }
        if (q.Agent is { } agent)
        {
            where.Add("user_name = @agent");
            Migrations.AddParam(cmd, "@agent", agent);
        }
        if (q.Entity is { } entity)
        {
            var (type, id, version) = LedgerRow.SplitResource(entity);
            where.Add("res_type = @etype");
            Migrations.AddParam(cmd, "@etype", type);
            if (id is not null)
            {
                where.Add("res_id = @eid");
                Migrations.AddParam(cmd, "@eid", id);
            }
            if (version is not null)
            {
                where.Add("version = @ever");
                Migrations.AddParam(cmd, "@ever", version.Value);
            }
        }
        if (q.From is { } from)
        {
            where.Add("at >= @from");
            Migrations.AddParam(cmd, "@from", from.ToUnixTimeMilliseconds());
        }
        if (q.To is { } to)
        {
            where.Add("at < @to");
            Migrations.AddParam(cmd, "@to", to.ToUnixTimeMilliseconds());
        }
        if (q.Permitted is { } permitted)
        {
            where.Add(permitted ? "(permitted IS NULL OR permitted <> 0) AND (outcome IS NULL OR outcome = 'success')" : "(permitted = 0 OR (outcome IS NOT NULL AND outcome <> 'success'))");
        }
        if (q.Action is { } action)
        {
            where.Add("(action = @action OR event = @action)");
            Migrations.AddParam(cmd, "@action", action);
        }
        if (q.Type is { } type2)
        {
            where.Add("type = @type");
            Migrations.AddParam(cmd, "@type", type2);
        }
        if (correlation is not null)
        {
            where.Add("correlation = @corr");
            Migrations.AddParam(cmd, "@corr", correlation);
        }
        cmd.CommandText = "SELECT idx, entry FROM ledger_entries"
            + (where.Count > 0 ? " WHERE " + string.Join(" AND ", where) : "")
            + " ORDER BY idx" + (q.Count < int.MaxValue ? " LIMIT @lim" : "");
        if (q.Count < int.MaxValue) Migrations.AddParam(cmd, "@lim", (long)q.Count);
        var list = new List<AuditItem>();
        await using DbDataReader r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
            list.Add(new AuditItem(r.GetInt64(0), LedgerEntry.Decode((byte[])r.GetValue(1))));
        return list;
    }
}
