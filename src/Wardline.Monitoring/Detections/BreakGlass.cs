namespace Wardline.Monitoring.Detections;

/// <summary>
/// Every break-glass declaration, for review: granted ones (with the reads made under them, at most one
/// finding per user, patient and day, merged into the declaration's case by the patient group key) and
/// refused ones (a user not pre-approved tried, or one already holding the most grants at once). Emergency access is legitimate by design and reviewed
/// after the fact, so nothing silences it.
/// </summary>
internal sealed class BreakGlass : Detection
{
    /// <summary>The security event kind of a declaration (SecurityEventKind.BreakGlassDeclared).</summary>
    public const string Declared = "BreakGlassDeclared";

    private static readonly DetectionInfo Description = new(
        "break-glass", "Break-glass", Severity.High, Suppressible: false,
        "A user declared break-glass (emergency access beyond their usual rights) to a patient's record, or tried to without being pre-approved. Every declaration is reviewed; the reads made under it join the same case (once a day per user and patient).",
        []);

    private readonly OncePerDay _reads = new();

    public override DetectionInfo Info => Description;

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (e.Kind == EntryKind.Access)
        {
            if (e.Purpose != "ETREAT" || !e.IsPermittedPatientDecision || !_reads.First(ctx, e.User!, e.Patient!, e.AtMs)) return;
            ctx.Report(this, e.User!, e.Patient, e.AtMs, [e.Index], "read the patient's record under break-glass", groupKey: e.Patient);
            return;
        }
        if (e.Kind != EntryKind.Security || e.Event != Declared || e.User is not { } user) return;
        switch (e.Outcome)
        {
            case "granted":
                var patient = PatientOf(e.Detail);
                ctx.Report(this, user, patient, e.AtMs, [e.Index], "declared break-glass (emergency access) to the patient's record", groupKey: patient);
                break;
            case "refused":
                // A refused attempt disclosed nothing: a step below the configured severity, as its own case.
                var configured = ctx.Config.For(Info.Id).Severity;
                // The server refuses for two reasons: the user is not pre-approved, or already holds the most grants at once.
                var why = e.Detail is { } d && d.Contains("active grants", StringComparison.Ordinal)
                    ? "tried to declare break-glass for one more patient while holding the most grants allowed at once"
                    : "tried to declare break-glass without being pre-approved";
                ctx.Report(this, user, null, e.AtMs, [e.Index], why,
                    groupKey: "refused", severity: configured > Severity.Low ? configured - 1 : configured);
                break;
        }
    }

    /// <summary>The patient id of a granted declaration's detail, "declaration &lt;id&gt; patient Patient/&lt;pid&gt; purpose ETREAT until &lt;time&gt;".</summary>
    internal static string? PatientOf(string? detail)
    {
        const string Marker = "patient Patient/";
        if (detail is null) return null;
        var at = detail.IndexOf(Marker, StringComparison.Ordinal);
        if (at < 0) return null;
        var start = at + Marker.Length;
        var end = detail.IndexOf(' ', start);
        var id = end < 0 ? detail[start..] : detail[start..end];
        return id.Length == 0 ? null : id;
    }
}
