using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Records;

namespace Wardline.Server.Tests.Modules.Access.Matrix;

/// <summary>
/// What the oracle knows of one stored resource, read from its JSON by the operator: derived here, in
/// the test, from the hospital policy's own description of departments, patients and labels, not from
/// the server's facts tables.
/// </summary>
/// <param name="Departments">Department codes (cardiology, ...); an Organization that is not a department is "org:&lt;id&gt;".</param>
public sealed record OracleFacts(
    string Type,
    string Id,
    IReadOnlySet<string> Departments,
    string? Patient,
    IReadOnlySet<string> Labels,
    string? Status,
    bool PatientRestricted,
    string? PatientStaffUser,
    IReadOnlySet<string> PatientLabels,
    bool PatientVip,
    bool PatientEmployee)
{
    public override string ToString() =>
        $"{Type}/{Id} [dept {string.Join(',', Departments.Order())}; labels {string.Join(',', Labels.Order())}; status {Status}; " +
        $"patient {Patient}{(PatientRestricted ? " restricted" : "")}{(PatientVip ? " vip" : "")}{(PatientEmployee ? " employee" : "")}{(PatientStaffUser is null ? "" : " staff=" + PatientStaffUser)}]";
}

/// <summary>
/// A snapshot of every stored resource, read with the operator's unrestricted scope, with the facts the
/// hospital policy speaks of derived independently: a resource's own department (Encounter.serviceProvider,
/// EpisodeOfCare/CareTeam managing organization, PractitionerRole.organization, Location.managingOrganization,
/// an Organization itself); else its encounter's; else every department treating its patient. Care
/// relations come from Encounter participants, CareTeam members and EpisodeOfCare care managers.
/// </summary>
public sealed class HospitalWorld
{
    public const string DepartmentSystem = "https://wardline.example/department";
    public const string StaffSystem = "https://wardline.example/staff";
    public const string FlagsSystem = "https://wardline.example/flags";
    private const string Confidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
    private const string ActCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

    /// <summary>Every resource type a snapshot reads (the demo hospital's and the fixture's own).</summary>
    public static readonly string[] Types =
    [
        "Organization", "Location", "Practitioner", "PractitionerRole", "Patient", "EpisodeOfCare", "Encounter", "Condition",
        "Observation", "MedicationRequest", "Procedure", "DiagnosticReport", "Immunization", "CareTeam", "AllergyIntolerance",
        "Coverage", "Claim",
    ];

    private readonly Dictionary<(string Type, string Id), JsonObject> _json = [];
    private readonly Dictionary<(string Type, string Id), OracleFacts> _facts = [];
    private readonly Dictionary<string, string> _departmentOfOrg = new(StringComparer.Ordinal);

    private HospitalWorld()
    {
    }

    public IReadOnlyDictionary<(string Type, string Id), OracleFacts> Facts => _facts;

    /// <summary>Patient ids each practitioner cares for (relations open, or ended within the grace period).</summary>
    public IReadOnlyDictionary<string, HashSet<string>> CareByPractitioner { get; private set; } = new Dictionary<string, HashSet<string>>();

    public JsonObject Json(string type, string id) => _json[(type, id)];

    public IEnumerable<OracleFacts> OfType(string type) => _facts.Values.Where(f => f.Type == type).OrderBy(f => f.Id, StringComparer.Ordinal);

    public string DepartmentOrgId(string code) => _departmentOfOrg.Single(kv => kv.Value == code).Key;

    public IReadOnlySet<string> CareOf(string? practitioner) =>
        practitioner is not null && CareByPractitioner.TryGetValue(practitioner, out var set) ? set : new HashSet<string>();

    /// <summary>Reads every current resource with the operator's scope and derives the oracle's facts.</summary>
    internal static async Task<HospitalWorld> LoadAsync(RecordService records, int careGraceDays, CancellationToken ct)
    {
        var world = new HospitalWorld();
        foreach (var type in Types)
        {
            for (var offset = 0; ; offset += 1000)
            {
                var response = await records.SearchAsync(type,
                    [new("_count", "1000"), new("_offset", offset.ToString(CultureInfo.InvariantCulture))], false, "http://operator/fhir", AccessScope.Operator, ct);
                if (response.Status != 200) throw new InvalidOperationException($"operator search of {type} answered {response.Status}");
                var bundle = JsonNode.Parse(Encoding.UTF8.GetString(response.Json!))!.AsObject();
                var entries = bundle["entry"]?.AsArray() ?? [];
                foreach (var e in entries)
                {
                    var r = e!["resource"]!.AsObject();
                    world._json[(type, (string)r["id"]!)] = r;
                }
                if (offset + 1000 >= (int)bundle["total"]!) break;
            }
        }
        world.Derive(careGraceDays);
        return world;
    }

    private void Derive(int careGraceDays)
    {
        foreach (var ((type, id), r) in _json.Where(k => k.Key.Type == "Organization"))
        {
            _departmentOfOrg[id] = Identifier(r, DepartmentSystem) ?? "org:" + id;
        }

        var own = new Dictionary<(string, string), string?>();
        foreach (var ((type, id), r) in _json)
        {
            own[(type, id)] = type switch
            {
                "Encounter" => Org(r["serviceProvider"]),
                "EpisodeOfCare" => Org(r["managingOrganization"]),
                "CareTeam" => r["managingOrganization"]?.AsArray().Select(Org).FirstOrDefault(o => o is not null),
                "PractitionerRole" => Org(r["organization"]),
                "Location" => Org(r["managingOrganization"]),
                "Organization" => _departmentOfOrg[id],
                _ => null,
            };
        }

        var patientOf = _json.ToDictionary(kv => kv.Key, kv => kv.Key.Type == "Patient" ? kv.Key.Id : PatientRef(kv.Value));
        var treating = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        foreach (var (key, dept) in own)
        {
            if (dept is null || patientOf[key] is not { } p) continue;
            if (!treating.TryGetValue(p, out var set)) treating[p] = set = new HashSet<string>(StringComparer.Ordinal);
            set.Add(dept);
        }

        foreach (var ((type, id), r) in _json)
        {
            var patient = patientOf[(type, id)];
            var encounter = Ref(r["encounter"], "Encounter") ?? Ref(r["context"], "Encounter");
            IReadOnlySet<string> departments = own[(type, id)] is { } d ? new HashSet<string> { d }
                : encounter is not null ? (own.TryGetValue(("Encounter", encounter), out var ed) && ed is not null ? new HashSet<string> { ed } : new HashSet<string>())
                : patient is not null && treating.TryGetValue(patient, out var t) ? t : new HashSet<string>();
            var p = patient is not null && _json.TryGetValue(("Patient", patient), out var pj) ? pj : null;
            var patientLabels = p is null ? new HashSet<string>() : Labels(p);
            var vip = p is not null && Tags(p).Contains("vip");
            _facts[(type, id)] = new OracleFacts(type, id, departments, patient, Labels(r), Status(type, r),
                PatientRestricted: patientLabels.Contains("R") || patientLabels.Contains("V") || vip,
                PatientStaffUser: p is null ? null : Identifier(p, StaffSystem),
                patientLabels, vip, PatientEmployee: p is not null && Tags(p).Contains("employee"));
        }

        var now = DateTimeOffset.UtcNow;
        var since = now.AddDays(-careGraceDays);
        var care = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        void Add(JsonNode? who, JsonNode? period, bool ended, string patient)
        {
            if (Ref(who, "Practitioner") is not { } practitioner) return;
            var end = (string?)period?["end"];
            var until = end is not null ? DateTimeOffset.Parse(end, CultureInfo.InvariantCulture) : ended ? now : (DateTimeOffset?)null;
            if (until is { } u && u <= since) return;
            if (!care.TryGetValue(practitioner, out var set)) care[practitioner] = set = new HashSet<string>(StringComparer.Ordinal);
            set.Add(patient);
        }
        foreach (var ((type, id), r) in _json)
        {
            if (patientOf[(type, id)] is not { } patient) continue;
            var status = (string?)r["status"];
            switch (type)
            {
                case "Encounter":
                    foreach (var part in r["participant"]?.AsArray() ?? [])
                        Add(part!["individual"], part["period"] ?? r["period"], status is "finished" or "cancelled" or "entered-in-error", patient);
                    break;
                case "CareTeam":
                    foreach (var part in r["participant"]?.AsArray() ?? [])
                        Add(part!["member"], part["period"] ?? r["period"], status is "inactive" or "entered-in-error", patient);
                    break;
                case "EpisodeOfCare":
                    Add(r["careManager"], r["period"], status is "finished" or "cancelled", patient);
                    break;
            }
        }
        CareByPractitioner = care;
    }

    private string? Org(JsonNode? reference) => Ref(reference, "Organization") is { } id ? (_departmentOfOrg.TryGetValue(id, out var code) ? code : "org:" + id) : null;

    private static string? PatientRef(JsonObject r) =>
        Ref(r["subject"], "Patient") ?? Ref(r["patient"], "Patient") ?? Ref(r["beneficiary"], "Patient");

    internal static string? Ref(JsonNode? reference, string type)
    {
        if (reference is not JsonObject o || (string?)o["reference"] is not { } s) return null;
        var prefix = type + "/";
        return s.StartsWith(prefix, StringComparison.Ordinal) && s.IndexOf('/', prefix.Length) < 0 ? s[prefix.Length..] : null;
    }

    private static string? Identifier(JsonObject r, string system) =>
        r["identifier"]?.AsArray().FirstOrDefault(i => (string?)i!["system"] == system && !string.IsNullOrEmpty((string?)i["value"])) is { } hit ? (string?)hit["value"] : null;

    private static HashSet<string> Labels(JsonObject r) =>
        [.. (r["meta"]?["security"]?.AsArray() ?? []).Where(c => (string?)c!["system"] is Confidentiality or ActCode && c["code"] is not null).Select(c => (string)c!["code"]!)];

    private static HashSet<string> Tags(JsonObject r) =>
        [.. (r["meta"]?["tag"]?.AsArray() ?? []).Where(c => (string?)c!["system"] == FlagsSystem && c["code"] is not null).Select(c => (string)c!["code"]!)];

    private static string? Status(string type, JsonObject r) => type == "Condition"
        ? (string?)r["verificationStatus"]?["coding"]?[0]?["code"]
        : r["status"] is JsonValue v && v.TryGetValue<string>(out var s) ? s : null;
}
