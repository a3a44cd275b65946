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
    string? Correlation)
{
    /// <summary>The departments the user acted in, as the policy saw them.</summary>
    public IReadOnlyList<string> Departments { get; init; } = [];
}

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
    long? After = null)
{
    /// <summary>Audit events only: leaves out access outcome rows (they repeat their request's decisions).</summary>
    public bool Events { get; init; } = true;

    /// <summary>Only entries below this index (exclusive).</summary>
    public long? Before { get; init; }
}

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

    public const int MaxCount = 500;

    /// <summary>
    /// Every access decision, review and explanation and every write touching <c>Patient/{patientId}</c> in
    /// [<paramref name="from"/>, <paramref name="to"/>), oldest first. Records that <paramref name="viewer"/> read this trail before returning it.
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
                isAccess ? e.Permitted ?? false : true, e.Rule, e.Reason, e.Source, e.Correlation) { Departments = e.Departments ?? [] });
        }
        await RecordReadAsync([patientId], viewer, source, ct);
        return list;
    }

    /// <summary>
    /// Audit events matching the query, grouped, oldest first. A group's rows lie close together in the
    /// ledger (one request's decisions commit together), so a page looks <see cref="Reach"/> entries
    /// behind its start for groups it already showed and ahead of its end to complete its last groups.
    /// Records that <paramref name="viewer"/> read the trail of each patient shown (or asked for).
    /// </summary>
    public async Task<AuditPage> SearchAsync(AuditQuery q, string viewer, string? source, CancellationToken ct)
    {
        var count = Math.Clamp(q.Count, 0, MaxCount);
        var window = Math.Min(Math.Max(count * 4, 64), 4000);
        var groups = new List<AuditGroup>();
        long? next = null;
        if (count > 0)
        {
            var items = await QueryAsync(q with { Count = window }, ct);
            var seen = new HashSet<(string, string)>();
            if (q.After is { } after)
            {
                foreach (var i in await QueryAsync(q with { After = Math.Max(-1, after - Reach), Before = after + 1, Count = int.MaxValue }, ct))
                    if (IsGrouped(i.Entry)) seen.Add(Key(i.Entry));
            }
            var all = Group(items).Where(g => !IsGrouped(g.First) || !seen.Contains(Key(g.First))).ToList();
            groups = all.Take(count).ToList();
            if (all.Count > count) next = groups[^1].Id;
            else if (items.Count == window && groups.Count > 0) next = items[^1].Index;
            if (items.Count == window && groups.Count > 0)
            {
                var last = items[^1].Index;
                var wanted = groups.Where(g => IsGrouped(g.First)).ToDictionary(g => Key(g.First), g => g);
                var extra = wanted.Count == 0 ? [] : await QueryAsync(q with { After = last, Before = last + Reach + 1, Count = int.MaxValue }, ct);
                for (var k = 0; k < groups.Count; k++)
                {
                    var g = groups[k];
                    if (!IsGrouped(g.First)) continue;
                    var more = extra.Where(e => IsGrouped(e.Entry) && Key(e.Entry) == Key(g.First)).ToList();
                    if (more.Count > 0) groups[k] = g with { Items = [.. g.Items, .. more] };
                }
            }
        }
        // The viewer's own earlier reads of the trail are not recorded again: a client polling for new events would otherwise
        // read back, and record anew, its own last poll forever. Anything else shown is recorded, with its patients if any.
        var shown = groups.Where(g => !IsOwnTrailRead(g.First, viewer)).ToList();
        var patients = shown.SelectMany(g => g.Items).Select(i => PatientOf(i.Entry)).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
        if (q.Patient is not null && !patients.Contains(q.Patient)) patients.Add(q.Patient);
        await RecordReadAsync(patients, viewer, source, ct, evenWithoutPatient: shown.Count > 0);
        return new AuditPage(groups, next);
    }

    /// <summary>An entry that records <paramref name="viewer"/>'s own read of the audit trail.</summary>
    private static bool IsOwnTrailRead(LedgerEntry e, string viewer) => e.Type == "access" && e.Event == AuditPhase && e.User == viewer;

    /// <summary>How far (in entries) a request's grouped decisions may lie apart in the ledger.</summary>
    public const int Reach = 2000;

    /// <summary>The audit event whose first entry has this index, or null. Records the read (with the event's patient, if any).</summary>
    public async Task<AuditGroup?> ReadAsync(long id, string viewer, string? source, CancellationToken ct)
    {
        var first = await QueryAsync(new AuditQuery(After: id - 1, Count: 1), ct);
        if (first.Count == 0 || first[0].Index != id || !IsEvent(first[0].Entry)) return null;
        var head = first[0].Entry;
        var items = new List<AuditItem> { first[0] };
        if (IsGrouped(head))
        {
            var near = await QueryAsync(new AuditQuery(After: Math.Max(-1, id - Reach - 1), Count: int.MaxValue) { Before = id + Reach + 1 }, ct, head.Correlation);
            var same = near.Where(r => IsGrouped(r.Entry) && Key(r.Entry) == Key(head)).ToList();
            // Only the group's first entry names the event: a later entry of a group is not an event of its own.
            if (same.Count > 0 && same[0].Index != id) return null;
            items = same;
        }
        await RecordReadAsync(PatientOf(head) is { } p ? [p] : [], viewer, source, ct, evenWithoutPatient: !IsOwnTrailRead(head, viewer));
        return new AuditGroup(id, items);
    }

    /// <summary>Write entries for a resource ("Type/id", optionally "/_history/n") or a patient, oldest first.</summary>
    public async Task<IReadOnlyList<AuditItem>> WritesAsync(string? target, string? patientId, int count, string viewer, string? source, CancellationToken ct)
    {
        var items = await QueryAsync(new AuditQuery(Patient: patientId, Entity: target, Type: "write", Count: Math.Clamp(count, 0, MaxCount)), ct);
        var patients = items.Select(i => PatientOf(i.Entry)).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
        if (patientId is not null && !patients.Contains(patientId)) patients.Add(patientId);
        await RecordReadAsync(patients, viewer, source, ct, evenWithoutPatient: items.Count > 0);
        return items;
    }

    /// <summary>True for access entries grouped into one audit event per request and patient.</summary>
    internal static bool IsGrouped(LedgerEntry e) => e.Type == "access" && e.Correlation is not null && e.Patient is not null;

    /// <summary>Entries that are audit events (or parts of one): an access outcome row only repeats its decisions.</summary>
    internal static bool IsEvent(LedgerEntry e) => !(e.Type == "access" && e.Event == "outcome");

    private static (string, string) Key(LedgerEntry e) => (e.Correlation!, e.Patient!);

    /// <summary>The bare id of the patient an entry is about; a break-glass declaration names it in its detail.</summary>
    internal static string? PatientOf(LedgerEntry e)
    {
        if (e.Patient is { Length: > 8 } p && p.StartsWith("Patient/", StringComparison.Ordinal)) return p[8..];
        if (e.Type == "security" && e.Event == BreakGlassEvent && e.Detail is { } d)
        {
            var at = d.IndexOf(" patient Patient/", StringComparison.Ordinal);
            if (at >= 0)
            {
                var rest = d[(at + " patient Patient/".Length)..];
                var end = rest.IndexOf(' ', StringComparison.Ordinal);
                return end < 0 ? rest : rest[..end];
            }
        }
        if (e.Resource is { } r && r.StartsWith("Patient/", StringComparison.Ordinal)) return LedgerRow.SplitResource(r).Id;
        return null;
    }

    public const string BreakGlassEvent = "BreakGlassDeclared";

    private static List<AuditGroup> Group(IReadOnlyList<AuditItem> items)
    {
        var open = new Dictionary<(string, string), List<AuditItem>>();
        var order = new List<(long Id, List<AuditItem> Items)>();
        foreach (var i in items)
        {
            if (IsGrouped(i.Entry))
            {
                var key = Key(i.Entry);
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
        return [.. order.Select(o => new AuditGroup(o.Id, o.Items))];
    }

    /// <summary>Records a refused attempt to read the audit trail (a patient's, when one was named).</summary>
    public async Task RecordRefusalAsync(string? viewer, string? patientId, string reason, string? source, CancellationToken ct) =>
        await recorder.RecordAsync([new AccessRecord(time.GetUtcNow(), viewer, new FhirInteraction(FhirAction.Read, "AuditEvent", null), AuditPhase,
            new AccessDecision(false, "audit-trail", reason), null, "AuditEvent", Guid.NewGuid().ToString("N"), source) { Patient = patientId is null ? null : "Patient/" + patientId }], ct);

    /// <summary>Records that <paramref name="viewer"/> read the audit trail of each patient (ids without "Patient/").</summary>
    public async Task RecordReadAsync(IReadOnlyList<string> patientIds, string viewer, string? source, CancellationToken ct, bool evenWithoutPatient = false)
    {
        if (patientIds.Count == 0 && !evenWithoutPatient) return;
        var at = time.GetUtcNow();
        var correlation = Guid.NewGuid().ToString("N");
        // One entry per patient whose trail was shown; a read of the trail that named none (a user's sign-ins, the system's
        // events) is recorded when the caller asks, as the AuditEvent and Provenance views do.
        var subjects = patientIds.Count == 0 ? new string?[] { null } : patientIds.ToArray<string?>();
        await recorder.RecordAsync([.. subjects.Select(p => new AccessRecord(at, viewer, new FhirInteraction(FhirAction.Read, "AuditEvent", null), AuditPhase,
            new AccessDecision(true, "audit-trail", "accounting of disclosures"), null, "AuditEvent", correlation, source) { Patient = p is null ? null : "Patient/" + p })], ct);
    }

    private static string WriteAction(string? @event) => @event switch
    {
        "create" => "Create",
        "delete" => "Delete",
        _ => "Update",
    };

    /// <summary>The patient's break-glass declarations: id and when (unix seconds).</summary>
    private static async Task<List<(string Id, long At)>> DeclaredAsync(DbConnection c, string patient, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT id, declared_at FROM break_glass WHERE patient = @p ORDER BY declared_at LIMIT 200";
        Migrations.AddParam(cmd, "@p", patient);
        var list = new List<(string, long)>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add((r.GetString(0), r.GetInt64(1)));
        return list;
    }

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
            // Each alternative can use an index (patient; the write index; time), so no term scans the ledger.
            var terms = new List<string> { "patient = @patient", "(type = 'write' AND res_type = 'Patient' AND res_id = @pid)" };
            Migrations.AddParam(cmd, "@patient", "Patient/" + patient);
            Migrations.AddParam(cmd, "@pid", patient);
            var declared = await DeclaredAsync(c, patient, ct);
            for (var k = 0; k < declared.Count; k++)
            {
                // A break-glass declaration's entry names the patient only in its detail; it was made in the second the declaration was stored.
                terms.Add($"(at >= @bgFrom{k} AND at < @bgTo{k} AND type = 'security' AND event = @bg AND detail LIKE @bgDetail{k})");
                Migrations.AddParam(cmd, $"@bgFrom{k}", declared[k].At * 1000);
                Migrations.AddParam(cmd, $"@bgTo{k}", (declared[k].At + 1) * 1000);
                Migrations.AddParam(cmd, $"@bgDetail{k}", "declaration " + declared[k].Id + " patient Patient/" + patient + " %");
            }
            if (declared.Count > 0) Migrations.AddParam(cmd, "@bg", BreakGlassEvent);
            where.Add("(" + string.Join(" OR ", terms) + ")");
        }
        if (q.Before is { } before)
        {
            where.Add("idx < @before");
            Migrations.AddParam(cmd, "@before", before);
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
            const string denied = "(COALESCE(permitted, 1) = 0 OR COALESCE(outcome, '') IN ('failure', 'failed', 'refused', 'denied', 'rejected'))";
            where.Add(permitted ? "NOT " + denied : denied);
        }
        if (q.Action is { } action)
        {
            where.Add("(action = @action OR (type = 'write' AND event = @writeEvent))");
            Migrations.AddParam(cmd, "@action", action);
            Migrations.AddParam(cmd, "@writeEvent", action.ToLowerInvariant());
        }
        if (q.Type is { } type2)
        {
            if (AuditEventBuilder.TypeCodeFilters.TryGetValue(type2, out var filter)) where.Add(filter);
            else
            {
                where.Add("type = @type");
                Migrations.AddParam(cmd, "@type", type2);
            }
        }
        if (q.Events)
        {
            where.Add("NOT (type = 'access' AND event = 'outcome')");
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
