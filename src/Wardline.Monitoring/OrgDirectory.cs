namespace Wardline.Monitoring;

/// <summary>
/// A member of staff as the detections know them: the account's current state, plus keys to compare
/// with patients. The keys are opaque (the server uses keyed blind indexes of normalised names and
/// addresses, so no name or address is ever held here in clear); only their equality means anything.
/// </summary>
/// <param name="Name">The account name, as in ledger entries.</param>
/// <param name="Departments">Department ids (Organization ids) the account belongs to now.</param>
/// <param name="Treats">Sensitivity labels the person treats (PSY, HIV, ETH, GDIS, ...).</param>
/// <param name="PractitionerId">The person's FHIR Practitioner id, when known.</param>
/// <param name="Service">An integration or service account rather than a person at a screen.</param>
/// <param name="DisabledAtMs">When the account was disabled (Unix ms), when it is.</param>
/// <param name="ExpiresMs">When the account stops working (a leaver's last day), when set.</param>
/// <param name="SurnameKey">Key of the person's normalised surname.</param>
/// <param name="FullNameKey">Key of the person's normalised given and family name, to match a patient's contacts.</param>
/// <param name="AddressKey">Key of the person's normalised home street address (from their Practitioner or staff patient record).</param>
/// <param name="OwnPatientId">The person's own patient record, when they are also a patient here.</param>
/// <param name="ShiftStartHour">Contracted working hours in the institution's time zone, both null or both 0-23 (end exclusive, may wrap midnight).</param>
internal sealed record StaffMember(
    string Name,
    IReadOnlyList<string> Roles,
    IReadOnlyList<string> Departments,
    IReadOnlyList<string> Treats,
    string? PractitionerId = null,
    bool Service = false,
    long? DisabledAtMs = null,
    long? ExpiresMs = null,
    string? SurnameKey = null,
    string? FullNameKey = null,
    string? AddressKey = null,
    string? OwnPatientId = null,
    int? ShiftStartHour = null,
    int? ShiftEndHour = null)
{
    /// <summary>The first role, or "unknown": peers are staff with the same primary role and department.</summary>
    public string PrimaryRole => Roles.Count > 0 ? Roles[0] : "unknown";

    public string PrimaryDepartment => Departments.Count > 0 ? Departments[0] : "none";
}

/// <summary>A period of a patient's care in a department (an encounter, an episode), Unix ms; open-ended when <paramref name="ToMs"/> is null.</summary>
internal readonly record struct DepartmentStay(string Department, long FromMs, long? ToMs);

/// <summary>
/// A patient as the detections know them: identifiers and keys only.
/// </summary>
/// <param name="Id">The logical id, without "Patient/".</param>
/// <param name="ContactNameKeys">Keys of the full names of the patient's contacts (next of kin, emergency contact).</param>
/// <param name="StaffUser">The account of the employee this patient is, when they are one.</param>
/// <param name="Vip">Flagged VIP or restricted (a public figure, a board member, staff's family on request).</param>
/// <param name="Stays">The departments that treated the patient, and when.</param>
internal sealed record PatientProfile(
    string Id,
    string? SurnameKey = null,
    string? AddressKey = null,
    IReadOnlyList<string>? ContactNameKeys = null,
    string? StaffUser = null,
    bool Vip = false,
    IReadOnlyList<DepartmentStay>? Stays = null)
{
    public IReadOnlyList<string> Contacts => ContactNameKeys ?? [];

    public IReadOnlyList<DepartmentStay> DepartmentStays => Stays ?? [];
}

/// <summary>
/// A documented reason for a user to be in a patient's record: on the care team, a participant of an
/// encounter or episode, a scheduled appointment, a consult or referral order. Kinds are the
/// explanation names of the configuration (care-team, encounter, episode, appointment, consult-order,
/// referral). Unix ms; open-ended when <paramref name="UntilMs"/> is null.
/// </summary>
internal readonly record struct Relationship(string Kind, long FromMs, long? UntilMs)
{
    /// <summary>Whether the relationship held at <paramref name="atMs"/>, allowing <paramref name="graceMs"/> either side.</summary>
    public bool Covers(long atMs, long graceMs) => atMs >= FromMs - graceMs && (UntilMs is not { } until || atMs <= until + graceMs);
}

/// <summary>
/// The organisation model the detections judge entries against: staff, patients, care relationships
/// and the sensitivity labels of labelled resources. A snapshot: the server rebuilds it as records and
/// accounts change; the engine also learns from the ledger itself (account changes, writes).
/// Lookups of unknown users, patients or resources return null or empty, never throw: old entries name
/// accounts and departments that no longer exist.
/// </summary>
internal sealed class OrgDirectory
{
    private static readonly IReadOnlyList<Relationship> NoRelationships = [];

    private readonly Dictionary<string, StaffMember> _staff;
    private readonly Dictionary<string, PatientProfile> _patients;
    private readonly Dictionary<(string User, string Patient), List<Relationship>> _relationships;
    private readonly Dictionary<(string Type, string Id), string[]> _labels;
    private readonly Dictionary<string, List<StaffMember>> _byPractitioner;

    public OrgDirectory(
        IEnumerable<StaffMember> staff,
        IEnumerable<PatientProfile> patients,
        IEnumerable<(string User, string Patient, Relationship Relationship)> relationships,
        IEnumerable<(string Type, string Id, string[] Labels)> labelledResources)
    {
        _staff = new Dictionary<string, StaffMember>(StringComparer.Ordinal);
        foreach (var s in staff) _staff[s.Name] = s;
        _patients = new Dictionary<string, PatientProfile>(StringComparer.Ordinal);
        foreach (var p in patients) _patients[p.Id] = p;
        _relationships = [];
        foreach (var (user, patient, r) in relationships)
        {
            if (!_relationships.TryGetValue((user, patient), out var list)) _relationships[(user, patient)] = list = [];
            list.Add(r);
        }
        _labels = [];
        foreach (var (type, id, labels) in labelledResources)
        {
            if (labels.Length > 0) _labels[(type, id)] = labels;
        }
        _byPractitioner = new Dictionary<string, List<StaffMember>>(StringComparer.Ordinal);
        foreach (var s in _staff.Values)
        {
            if (s.PractitionerId is null) continue;
            if (!_byPractitioner.TryGetValue(s.PractitionerId, out var list)) _byPractitioner[s.PractitionerId] = list = [];
            list.Add(s);
        }
    }

    public static OrgDirectory Empty { get; } = new([], [], [], []);

    public int StaffCount => _staff.Count;

    public int PatientCount => _patients.Count;

    public IEnumerable<StaffMember> Staff => _staff.Values;

    public IEnumerable<PatientProfile> Patients => _patients.Values;

    public StaffMember? FindStaff(string? user) => user is not null && _staff.TryGetValue(user, out var s) ? s : null;

    public PatientProfile? FindPatient(string? id) => id is not null && _patients.TryGetValue(id, out var p) ? p : null;

    /// <summary>The accounts of a FHIR Practitioner (usually one).</summary>
    public IReadOnlyList<StaffMember> StaffOfPractitioner(string practitionerId) =>
        _byPractitioner.TryGetValue(practitionerId, out var list) ? list : [];

    /// <summary>Every documented relationship of the user to the patient, at any time.</summary>
    public IReadOnlyList<Relationship> RelationshipsOf(string user, string patient) =>
        _relationships.TryGetValue((user, patient), out var list) ? list : NoRelationships;

    /// <summary>The sensitivity labels of a resource ("PSY", "HIV", ...), empty when it has none.</summary>
    public IReadOnlyList<string> LabelsOf(string? type, string? id) =>
        type is not null && id is not null && _labels.TryGetValue((type, id), out var labels) ? labels : [];

    public int RelationshipCount => _relationships.Values.Sum(l => l.Count);
}
