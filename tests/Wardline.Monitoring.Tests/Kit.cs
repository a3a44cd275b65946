namespace Wardline.Monitoring.Tests;

/// <summary>Builds entries, a small hospital and an engine for detection tests.</summary>
internal sealed class Kit
{
    private long _index;

    /// <summary>Monday 2026-03-02 10:00 UTC: a weekday, within working hours.</summary>
    public static readonly DateTimeOffset Start = new(2026, 3, 2, 10, 0, 0, TimeSpan.Zero);

    public List<StaffMember> Staff { get; } = [];

    public List<PatientProfile> Patients { get; } = [];

    public List<(string User, string Patient, Relationship Relationship)> Relationships { get; } = [];

    public List<(string Type, string Id, string[] Labels)> Labels { get; } = [];

    public string ConfigText { get; set; } = MonitorConfig.DefaultText;

    public OrgDirectory Directory() => new(Staff, Patients, Relationships, Labels);

    public MonitorEngine Engine() => new(MonitorConfig.Parse(ConfigText, "test.yaml"), Directory(), TimeZoneInfo.Utc);

    public static long Ms(DateTimeOffset at) => at.ToUnixTimeMilliseconds();

    /// <summary>A permitted read decision of one of the patient's resources.</summary>
    public MonitorEvent Read(string user, string patient, DateTimeOffset at, string type = "Observation", string? id = null, string? purpose = null) => new()
    {
        Index = _index++, AtMs = Ms(at), Kind = EntryKind.Access, Event = "decision", User = user, Patient = patient,
        ResourceType = type, ResourceId = id ?? $"{type.ToLowerInvariant()}-{patient}", Action = "Read", Permitted = true, Rule = "test-rule",
        Purpose = purpose, Correlation = "c" + _index,
    };

    public MonitorEvent Denied(string user, string patient, DateTimeOffset at) => new()
    {
        Index = _index++, AtMs = Ms(at), Kind = EntryKind.Access, Event = "decision", User = user, Patient = patient,
        ResourceType = "Observation", ResourceId = "o-" + patient, Action = "Read", Permitted = false, Rule = "default-deny", Correlation = "c" + _index,
    };

    public MonitorEvent Security(string kind, string? user, DateTimeOffset at, string outcome = "succeeded", string? detail = null, string? source = null, string? actor = null) => new()
    {
        Index = _index++, AtMs = Ms(at), Kind = EntryKind.Security, Event = kind, User = user, Outcome = outcome, Detail = detail, Source = source, Actor = actor,
    };

    public MonitorEvent Write(string user, string patient, string type, string id, DateTimeOffset at, string @event = "update", string? detail = null) => new()
    {
        Index = _index++, AtMs = Ms(at), Kind = EntryKind.Write, Event = @event, User = user, Patient = patient, ResourceType = type, ResourceId = id, Detail = detail,
    };

    /// <summary>Runs the events through a fresh engine and returns every finding.</summary>
    public List<Finding> Run(params MonitorEvent[] events) => Run((IEnumerable<MonitorEvent>)events);

    public List<Finding> Run(IEnumerable<MonitorEvent> events)
    {
        var engine = Engine();
        var findings = new List<Finding>();
        foreach (var e in events) engine.Examine(e, findings);
        return findings;
    }
}
