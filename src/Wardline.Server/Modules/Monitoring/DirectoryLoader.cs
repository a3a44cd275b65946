using System.Collections.Concurrent;
using System.Data.Common;
using System.Globalization;
using Hl7.Fhir.Model;
using Task = System.Threading.Tasks.Task;
using Wardline.Crypto;
using Wardline.Monitoring;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Access.OAuth;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Monitoring;

/// <summary>
/// Builds the organisation model the detections judge entries against, from the store: accounts (roles, departments,
/// labels treated, practitioner, disabled and leaving dates, shifts; service accounts are those bound to an OAuth client
/// with the client-credentials grant), patients (VIP or restricted, staff), department stays (encounters and episodes of
/// care), relationships (encounter, care team, episode, appointment, consult order, referral: the care relations the
/// store keeps as resources are written) and the sensitivity labels of labelled resources.
/// <para>
/// Names and addresses are compared as keyed hashes only (the store's blind-index key over monitoring's own fields), so
/// the model holds none in clear. The search index cannot serve here: a name's index tokens include every prefix, so they
/// cannot tell "Smith" from "Smithson". The keys are computed from the patients' and practitioners' current versions,
/// decrypted once per version (kept by version, so a reload decrypts only what changed), and never logged.
/// </para>
/// </summary>
internal sealed class DirectoryLoader(SqlDialect dialect, RecordStore store, RecordKeys keys)
{
    private const int Batch = 500;

    private readonly ConcurrentDictionary<(string Type, string Id), (int Version, PersonKeys Keys)> _keys = new();

    /// <summary>The opaque keys of one person's surname, full name, address, and (patients) their contacts' full names.</summary>
    private sealed record PersonKeys(string? Surname, string? FullName, string? Address, IReadOnlyList<string> Contacts);

    public async Task<OrgDirectory> LoadAsync(CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        var services = new HashSet<string>(StringComparer.Ordinal);
        await ReadAsync(c, "SELECT account, grant_types FROM oauth_clients WHERE account IS NOT NULL", r =>
        {
            if (r.GetString(1).Split(' ').Contains(OAuthClients.ClientCredentials)) services.Add(r.GetString(0));
        }, ct);

        var patients = new Dictionary<string, (bool Vip, string? Staff)>(StringComparer.Ordinal);
        var patientVersions = new List<(string Id, int Version)>();
        await ReadAsync(c, "SELECT r.res_id, r.version, f.restricted, f.staff_user FROM resources r LEFT JOIN access_facts f ON f.rid = r.rid WHERE r.res_type = 'Patient' AND r.deleted = 0", r =>
        {
            var id = r.GetString(0);
            patients[id] = (!r.IsDBNull(2) && Convert.ToInt32(r.GetValue(2), CultureInfo.InvariantCulture) != 0, r.IsDBNull(3) ? null : r.GetString(3));
            patientVersions.Add((id, Convert.ToInt32(r.GetValue(1), CultureInfo.InvariantCulture)));
        }, ct);
        var practitionerVersions = new List<(string Id, int Version)>();
        await ReadAsync(c, "SELECT res_id, version FROM resources WHERE res_type = 'Practitioner' AND deleted = 0",
            r => practitionerVersions.Add((r.GetString(0), Convert.ToInt32(r.GetValue(1), CultureInfo.InvariantCulture))), ct);
        await RefreshKeysAsync("Patient", patientVersions, ct);
        await RefreshKeysAsync("Practitioner", practitionerVersions, ct);

        var ownPatient = new Dictionary<string, string>(StringComparer.Ordinal);
        foreach (var (id, (_, staff)) in patients)
        {
            if (staff is not null) ownPatient.TryAdd(staff, id);
        }

        var staffList = new List<StaffMember>();
        await ReadAsync(c, "SELECT name, display, roles, departments, treats, practitioner_id, disabled, expires, shift_start, shift_end, updated FROM accounts", r =>
        {
            var name = r.GetString(0);
            var display = r.GetString(1);
            var practitioner = r.IsDBNull(5) ? null : r.GetString(5);
            var practitionerKeys = practitioner is not null && _keys.TryGetValue(("Practitioner", practitioner), out var pk) ? pk.Keys : null;
            var surname = LastWord(display);
            staffList.Add(new StaffMember(
                name,
                AccountRules.Split(r.GetString(2)),
                AccountRules.Split(r.GetString(3)),
                AccountRules.Split(r.GetString(4)),
                practitioner,
                services.Contains(name),
                Convert.ToInt32(r.GetValue(6), CultureInfo.InvariantCulture) != 0 ? r.GetInt64(10) : null,
                r.IsDBNull(7) ? null : r.GetInt64(7),
                practitionerKeys?.Surname ?? (surname is null ? null : Key("surname", surname)),
                practitionerKeys?.FullName ?? (IsName(display) ? Key("fullname", display) : null),
                practitionerKeys?.Address,
                ownPatient.GetValueOrDefault(name),
                r.IsDBNull(8) ? null : Convert.ToInt32(r.GetValue(8), CultureInfo.InvariantCulture),
                r.IsDBNull(9) ? null : Convert.ToInt32(r.GetValue(9), CultureInfo.InvariantCulture)));
        }, ct);

        // Encounters and episodes place a patient in a department: for their period when indexed, else from when they were
        // last written, open while the encounter is not finished.
        var stays = new Dictionary<string, List<DepartmentStay>>(StringComparer.Ordinal);
        await ReadAsync(c, """
            SELECT f.patient, f.department, f.status, r.last_updated, d.lo, d.hi
            FROM resources r JOIN access_facts f ON f.rid = r.rid
            LEFT JOIN search_date d ON d.rid = r.rid AND d.pid = (SELECT pid FROM search_params p WHERE p.res_type = r.res_type AND p.param = 'date')
            WHERE r.res_type IN ('Encounter', 'EpisodeOfCare') AND r.deleted = 0 AND f.patient IS NOT NULL AND f.department IS NOT NULL
            """, r =>
        {
            var patient = r.GetString(0);
            var finished = !r.IsDBNull(2) && r.GetString(2) is "finished" or "cancelled" or "entered-in-error";
            var updated = r.GetInt64(3);
            long from = r.IsDBNull(4) ? updated : Math.Max(r.GetInt64(4), 0);
            long? to = !r.IsDBNull(5) && r.GetInt64(5) != long.MaxValue ? r.GetInt64(5) : finished ? updated : null;
            if (!stays.TryGetValue(patient, out var list)) stays[patient] = list = [];
            list.Add(new DepartmentStay(r.GetString(1), from, to));
        }, ct);

        var byPractitioner = staffList.Where(s => s.PractitionerId is not null).ToLookup(s => s.PractitionerId!, StringComparer.Ordinal);
        var relationships = new List<(string, string, Relationship)>();
        await ReadAsync(c, "SELECT c.kind, c.practitioner, c.patient, c.from_at, c.until_at FROM care_relations c JOIN resources r ON r.rid = c.rid WHERE r.deleted = 0 AND c.kind IS NOT NULL", r =>
        {
            var from = r.IsDBNull(3) ? 0 : Math.Max(r.GetInt64(3), 0) * 1000;
            long? until = r.IsDBNull(4) ? null : r.GetInt64(4) * 1000;
            foreach (var s in byPractitioner[r.GetString(1)]) relationships.Add((s.Name, r.GetString(2), new Relationship(r.GetString(0), from, until)));
        }, ct);

        var labels = new List<(string, string, string[])>();
        await ReadAsync(c, "SELECT r.res_type, r.res_id, f.labels FROM resources r JOIN access_facts f ON f.rid = r.rid WHERE r.res_type <> 'Patient' AND r.deleted = 0 AND f.labels <> ''",
            r => labels.Add((r.GetString(0), r.GetString(1), r.GetString(2).Split('|', StringSplitOptions.RemoveEmptyEntries))), ct);

        var profiles = patients.Select(p =>
        {
            var k = _keys.TryGetValue(("Patient", p.Key), out var pk) ? pk.Keys : null;
            return new PatientProfile(p.Key, k?.Surname, k?.Address, k?.Contacts, p.Value.Staff, p.Value.Vip, stays.GetValueOrDefault(p.Key));
        });
        return new OrgDirectory(staffList, profiles, relationships, labels);
    }

    /// <summary>Decrypts the versions not seen before and keeps their keys (never their text).</summary>
    private async Task RefreshKeysAsync(string type, List<(string Id, int Version)> current, CancellationToken ct)
    {
        var live = current.Select(x => x.Id).ToHashSet(StringComparer.Ordinal);
        foreach (var key in _keys.Keys.Where(k => k.Type == type && !live.Contains(k.Id)).ToList()) _keys.TryRemove(key, out _);
        var stale = current.Where(x => !_keys.TryGetValue((type, x.Id), out var have) || have.Version != x.Version).Select(x => (type, x.Id)).ToList();
        foreach (var chunk in stale.Chunk(Batch))
        {
            var versions = await store.ReadCurrentManyAsync(chunk, ct);
            foreach (var (k, v) in versions)
            {
                if (v.Deleted || keys.Open(v) is not { } json) continue;
                var parsed = FhirJson.Parse(json);
                _keys[k] = (v.Version, parsed.Resource switch
                {
                    Patient p => KeysOf(p.Name, p.Address, p.Contact.Select(x => x.Name).OfType<HumanName>()),
                    Practitioner p => KeysOf(p.Name, p.Address, []),
                    _ => new PersonKeys(null, null, null, []),
                });
            }
        }
    }

    private PersonKeys KeysOf(List<HumanName> names, List<Address> addresses, IEnumerable<HumanName> contacts)
    {
        var name = names.FirstOrDefault(n => n.Use is HumanName.NameUse.Official) ?? names.FirstOrDefault();
        var address = addresses.FirstOrDefault(a => a.Use is Address.AddressUse.Home) ?? addresses.FirstOrDefault();
        return new PersonKeys(
            string.IsNullOrWhiteSpace(name?.Family) ? null : Key("surname", name.Family),
            FullName(name) is { } full ? Key("fullname", full) : null,
            AddressText(address) is { } street ? Key("address", street) : null,
            [.. contacts.Select(FullName).OfType<string>().Select(n => Key("fullname", n)).Distinct(StringComparer.Ordinal)]);
    }

    private static string? FullName(HumanName? n)
    {
        if (n is null || string.IsNullOrWhiteSpace(n.Family)) return null;
        var given = n.Given.FirstOrDefault(g => !string.IsNullOrWhiteSpace(g));
        return given is null ? null : given + " " + n.Family;
    }

    /// <summary>The street line and postal code: what two members of one household share.</summary>
    private static string? AddressText(Address? a)
    {
        var line = a?.Line.FirstOrDefault(l => !string.IsNullOrWhiteSpace(l));
        return line is null ? null : line + " " + (a!.PostalCode ?? "");
    }

    private static bool IsName(string display) => display.Trim().Contains(' ', StringComparison.Ordinal);

    private static string? LastWord(string display)
    {
        var words = display.Split(' ', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        return words.Length >= 2 ? words[^1] : null;
    }

    /// <summary>A keyed hash of a normalised value; the field keeps surnames, full names and addresses apart.</summary>
    private string Key(string field, string value) => Convert.ToHexStringLower(keys.Blind.Compute("monitor." + field, BlindIndex.Normalize(value)));

    private static async Task ReadAsync(DbConnection c, string sql, Action<DbDataReader> row, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) row(r);
    }
}
