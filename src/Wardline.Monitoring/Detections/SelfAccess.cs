namespace Wardline.Monitoring.Detections;

/// <summary>A user in their own patient record, outside the patient portal: staff must use the portal like any patient.</summary>
internal sealed class SelfAccess : Detection
{
    private static readonly DetectionInfo Description = new(
        "self-access", "Own record", Severity.High, Suppressible: false,
        "A member of staff opened their own patient record through clinical access. Staff see their own record through the patient portal, like any patient; clinical access to it bypasses the record's other protections.",
        []);

    public override DetectionInfo Info => Description;

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (!e.IsPermittedPatientDecision) return;
        var user = e.User!;
        var patient = ctx.Directory.FindPatient(e.Patient);
        var own = patient?.StaffUser == user || ctx.Directory.FindStaff(user)?.OwnPatientId == e.Patient;
        if (!own) return;
        ctx.Report(this, user, e.Patient, e.AtMs, [e.Index], "this user opened their own patient record", groupKey: e.Patient);
    }
}
