namespace Wardline.Monitoring.Detections;

/// <summary>
/// A member of staff opening a resource labelled with a sensitive category (mental health, HIV,
/// substance use, genetics, ...) that neither they nor anyone with their role in their department
/// treats: a cardiology nurse in a psychiatric note. Peers are taken from the directory (staff with the
/// same primary role and department); the map is built on first need and again when the directory is
/// replaced. One alert per user within the grouping window.
/// </summary>
internal sealed class SensitiveLabel : Detection
{
    private static readonly DetectionInfo Description = new(
        "sensitive-label", "Sensitive category outside the role", Severity.Medium, Suppressible: true,
        "A member of staff opened a resource labelled sensitive (mental health, HIV, substance use, genetic disease, sexual assault or domestic violence, sexual and reproductive health, sexually transmitted disease) in a category that no one with their role in their department treats. Care-team membership, a consult order or a referral explains it. Reported once a day per user and patient; service accounts are left out.",
        []);

    /// <summary>The watched labels (HL7 v3 ActCode information sensitivity) and their meaning in words.</summary>
    private static readonly Dictionary<string, string> Watched = new(StringComparer.Ordinal)
    {
        ["PSY"] = "mental health",
        ["HIV"] = "HIV/AIDS",
        ["ETH"] = "substance use",
        ["GDIS"] = "genetic disease",
        ["SDV"] = "sexual assault or domestic violence",
        ["SEX"] = "sexual and reproductive health",
        ["STD"] = "sexually transmitted disease",
    };

    private readonly OncePerDay _once = new();
    private OrgDirectory? _peersOf;
    private Dictionary<(string Role, string Department), HashSet<string>> _peers = [];

    public override DetectionInfo Info => Description;

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (!e.IsPermittedPatientDecision) return;
        var labels = ctx.Directory.LabelsOf(e.ResourceType, e.ResourceId);
        if (labels.Count == 0) return;
        var (staff, patient) = Parties.Of(e, ctx.Directory);
        var user = e.User!;
        if (Parties.IsService(staff) || (patient is not null && Parties.IsOwn(user, staff, patient)) || staff?.OwnPatientId == e.Patient) return;
        List<string>? untreated = null;
        foreach (var label in labels)
        {
            if (!Watched.TryGetValue(label, out var meaning) || Treated(ctx, user, staff, label, e.AtMs)) continue;
            (untreated ??= []).Add($"{label} ({meaning})");
        }
        if (untreated is null || !_once.First(ctx, user, e.Patient!, e.AtMs)) return;
        var what = untreated.Count == 1 ? "a category" : "categories";
        ctx.Report(this, user, e.Patient, e.AtMs, [e.Index],
            $"opened a resource labelled {string.Join(" and ", untreated)}, {what} that this user's role in this department does not treat");
    }

    private bool Treated(MonitorContext ctx, string user, StaffMember? staff, string label, long atMs)
    {
        if (staff is not null && staff.Treats.Contains(label)) return true;
        var peers = Peers(ctx.Directory);
        var role = staff?.PrimaryRole ?? "unknown";
        foreach (var department in ctx.DepartmentsOf(user, atMs))
        {
            if (peers.TryGetValue((role, department), out var treated) && treated.Contains(label)) return true;
        }
        return false;
    }

    /// <summary>Labels treated by anyone, per (primary role, department), for the directory in force.</summary>
    private Dictionary<(string Role, string Department), HashSet<string>> Peers(OrgDirectory directory)
    {
        if (ReferenceEquals(directory, _peersOf)) return _peers;
        var peers = new Dictionary<(string, string), HashSet<string>>();
        foreach (var s in directory.Staff)
        {
            if (s.Treats.Count == 0) continue;
            foreach (var department in s.Departments)
            {
                if (!peers.TryGetValue((s.PrimaryRole, department), out var set)) peers[(s.PrimaryRole, department)] = set = new(StringComparer.Ordinal);
                set.UnionWith(s.Treats);
            }
        }
        _peers = peers;
        _peersOf = directory;
        return peers;
    }
}
