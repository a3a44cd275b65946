using Wardline.Policy;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Access.Facts;

/// <summary>
/// Builds the policy's <see cref="ResourceFacts"/> for stored resources and for content about to be
/// written, by the same rules as <see cref="AccessSql"/> applies in search queries: a resource's own
/// department; else its encounter's; else (no encounter) every department treating its patient.
/// </summary>
internal sealed class FactsResolver(RecordStore store)
{
    public async Task<Dictionary<(string Type, string Id), ResourceFacts>> StoredAsync(IReadOnlyCollection<(string Type, string Id)> keys, CancellationToken ct)
    {
        var stored = await store.ReadFactsAsync(keys, ct);
        var result = new Dictionary<(string, string), ResourceFacts>();
        foreach (var key in keys)
        {
            result[key] = stored.TryGetValue(key, out var f) ? ToFacts(key.Type, key.Id, f) : new ResourceFacts(key.Type, key.Id, [], [], null, null);
        }
        return result;
    }

    public async Task<ResourceFacts> StoredAsync(string type, string id, CancellationToken ct) => (await StoredAsync([(type, id)], ct))[(type, id)];

    /// <summary>
    /// Facts of new content. The other resources written in the same
    /// transaction, so an Observation created with its Encounter and Patient in one Bundle is judged by them.
    /// </summary>
    public async Task<List<ResourceFacts>> PendingAsync(
        IReadOnlyList<(string Type, string Id, FactsRow Row)> writes, CancellationToken ct)
    {
        var pending = writes.ToDictionary(w => (w.Type, w.Id), w => w.Row);
        var lookups = new HashSet<(string, string)>();
        foreach (var (_, _, row) in writes)
        {
            if (row.Encounter is { } e && !pending.ContainsKey(("Encounter", e))) lookups.Add(("Encounter", e));
            if (row.Patient is { } p && !pending.ContainsKey(("Patient", p))) lookups.Add(("Patient", p));
        }
        var stored = await store.ReadFactsAsync(lookups, ct);
        var result = new List<ResourceFacts>(writes.Count);
        foreach (var (type, id, row) in writes)
        {
            IReadOnlyList<string> departments;
            if (row.Department is { } own) departments = [own];
            else if (row.Encounter is { } enc)
                departments = pending.TryGetValue(("Encounter", enc), out var pe) ? (pe.Department is { } d ? [d] : [])
                    : stored.TryGetValue(("Encounter", enc), out var se) ? se.Departments : [];
            else if (row.Patient is { } pat)
                departments = [.. (stored.TryGetValue(("Patient", pat), out var sp) ? sp.Departments : [])
                    .Concat(pending.Values.Where(v => v.Patient == pat && v.Department is not null).Select(v => v.Department!)).Distinct()];
            else departments = [];

            PatientFacts? patient = null;
            if (row.Patient is { } pid)
            {
                if (pending.TryGetValue(("Patient", pid), out var pp)) patient = new PatientFacts(pid, pp.Restricted, pp.ResearchConsent, pp.StaffUser);
                else if (stored.TryGetValue(("Patient", pid), out var ps)) patient = new PatientFacts(pid, ps.PatientRestricted, ps.PatientResearchConsent, ps.PatientStaffUser);
                else patient = new PatientFacts(pid, false, false, null);
            }
            result.Add(new ResourceFacts(type, id, departments, [.. row.LabelList], row.Status, patient));
        }
        return result;
    }

    private static ResourceFacts ToFacts(string type, string id, StoredFacts f) =>
        new(type, id, f.Departments, f.Labels.Split('|', StringSplitOptions.RemoveEmptyEntries), f.Status,
            f.Patient is { } p ? new PatientFacts(p, f.PatientRestricted, f.PatientResearchConsent, f.PatientStaffUser) : null);
}
