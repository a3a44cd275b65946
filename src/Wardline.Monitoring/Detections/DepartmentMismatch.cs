namespace Wardline.Monitoring.Detections;

/// <summary>
/// A member of staff in the record of a patient whom other departments are treating and theirs is not.
/// Needs both sides known: a user with no departments, or a patient with no recent stay, is not judged.
/// Break-glass reads (purpose ETREAT) are left to the break-glass detection, and billing resources are
/// finance work (<see cref="Financial"/>). One alert per user within the grouping window.
/// </summary>
internal sealed class DepartmentMismatch : Detection
{
    private const long DayMs = 86_400_000;

    private static readonly DetectionInfo Description = new(
        "department-mismatch", "Outside the user's departments", Severity.Low, Suppressible: true,
        "A member of staff opened the record of a patient who was treated recently only in other departments than theirs. Consults, referrals, appointments and care-team membership explain it. Reported once a day per user and patient; service accounts, break-glass reads and billing resources (claims, coverage) are left out.",
        [new DetectionParameter("lookback-days", 30, 1, 365, "a stay counts as recent when it was open at some time in this many days before the access")]);

    private readonly OncePerDay _once = new();
    private long _lookbackMs;

    public override DetectionInfo Info => Description;

    protected override void OnConfigured(DetectionSettings settings) => _lookbackMs = (long)(settings["lookback-days"] * DayMs);

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (!e.IsPermittedPatientDecision || e.Purpose == "ETREAT" || Financial.Is(e.ResourceType)) return;
        var user = e.User!;
        var at = e.AtMs;
        if (_once.Repeats(user, e.Patient!, at)) return;
        var (staff, patient) = Parties.Of(e, ctx.Directory);
        if (patient?.Stays is not { Count: > 0 } stays || Parties.IsService(staff)) return;
        var mine = ctx.DepartmentsOf(user, at);
        if (mine.Count == 0 || Parties.IsOwn(user, staff, patient)) return;
        List<string>? theirs = null;
        foreach (var stay in stays)
        {
            if (stay.FromMs > at || (stay.ToMs is { } to && to < at - _lookbackMs)) continue;
            if (mine.Contains(stay.Department)) return;
            theirs ??= [];
            if (!theirs.Contains(stay.Department)) theirs.Add(stay.Department);
        }
        if (theirs is null || !_once.First(ctx, user, patient.Id, at)) return;
        ctx.Report(this, user, patient.Id, at, [e.Index],
            $"the patient is being treated in {string.Join(", ", theirs)}, none of them this user's departments ({string.Join(", ", mine)})");
    }
}
