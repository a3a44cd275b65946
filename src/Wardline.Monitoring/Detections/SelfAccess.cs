namespace Wardline.Monitoring.Detections;

/// <summary>
/// A user in their own patient record, outside the patient portal: staff must use the portal like any patient.
/// The built-in policy forbids it (rule own-record), so what is usually found is the attempt: reported a step
/// below the configured severity, since nothing was disclosed. A permitted read (a policy that allows it) is
/// reported at the configured severity.
/// </summary>
internal sealed class SelfAccess : Detection
{
    private static readonly DetectionInfo Description = new(
        "self-access", "Own record", Severity.High, Suppressible: false,
        "A member of staff opened their own patient record through clinical access. Staff see their own record through the patient portal, like any patient; clinical access to it bypasses the record's other protections.",
        []);

    public override DetectionInfo Info => Description;

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (e.Kind != EntryKind.Access || e.Event != "decision" || e.Patient is null || e.User is null || e.Permitted is null) return;
        var user = e.User;
        var patient = ctx.Directory.FindPatient(e.Patient);
        var own = patient?.StaffUser == user || ctx.Directory.FindStaff(user)?.OwnPatientId == e.Patient;
        if (!own) return;
        if (e.Permitted == true)
        {
            ctx.Report(this, user, e.Patient, e.AtMs, [e.Index], "this user opened their own patient record", groupKey: e.Patient);
            return;
        }
        var configured = ctx.Config.For(Info.Id).Severity;
        ctx.Report(this, user, e.Patient, e.AtMs, [e.Index], "this user tried to open their own patient record; the policy refused it",
            groupKey: e.Patient, severity: configured > Severity.Low ? configured - 1 : configured);
    }
}
