using System.Globalization;

namespace Wardline.Monitoring.Detections;

/// <summary>
/// Any access by a person to a patient's record. It exists to be explained away: the configuration's
/// explanations (care team, encounter, episode, appointment, consult order, referral, a note written for
/// the patient, the patient's stay in the user's department) silence it, and what is left is access
/// nothing accounts for. One alert per user within the grouping window: a spree is one case.
/// Break-glass reads (purpose ETREAT) are left to the break-glass detection, which reviews every one;
/// billing and payment resources (claims, coverage) are finance work, judged by the relationship
/// detections (relative, colleague, VIP) only.
/// </summary>
internal sealed class NoCareRelationship : Detection
{
    private static readonly DetectionInfo Description = new(
        "no-care-relationship", "No care relationship", Severity.Medium, Suppressible: true,
        "A member of staff opened a patient's record while nothing documents a reason to: not on the care team, encounter or episode, no appointment, consult order or referral, no note written for the patient, and the patient was not treated in the user's department recently. The explanations in the configuration decide what counts. Reported once a day per user and patient; service accounts, break-glass reads and billing resources (claims, coverage) are left out.",
        []);

    private readonly OncePerDay _once = new();
    private MonitorConfig? _evidenceFor;
    private string _evidence = "";

    public override DetectionInfo Info => Description;

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (!e.IsPermittedPatientDecision || e.Purpose == "ETREAT" || Financial.Is(e.ResourceType)) return;
        var user = e.User!;
        var patientId = e.Patient!;
        if (_once.Repeats(user, patientId, e.AtMs)) return;
        var (staff, patient) = Parties.Of(e, ctx.Directory);
        if (Parties.IsService(staff)) return;
        if ((patient is not null && Parties.IsOwn(user, staff, patient)) || staff?.OwnPatientId == patientId) return;
        if (!_once.First(ctx, user, patientId, e.AtMs)) return;
        ctx.Report(this, user, patientId, e.AtMs, [e.Index], Evidence(ctx.Config));
    }

    /// <summary>The evidence names the department-stay grace the configuration gives, so it says what was checked.</summary>
    private string Evidence(MonitorConfig config)
    {
        if (ReferenceEquals(config, _evidenceFor)) return _evidence;
        _evidenceFor = config;
        var stay = config.Explanations.FirstOrDefault(x => x.Kind == "department-stay" && x.Suppresses.Contains(Description.Id));
        _evidence = stay is null
            ? "no care relationship, appointment, order or note links this user to the patient"
            : $"no care relationship, appointment, order or note links this user to the patient, and the patient was not treated in the user's department in the last {stay.GraceDays.ToString("0.##", CultureInfo.InvariantCulture)} days";
        return _evidence;
    }
}
