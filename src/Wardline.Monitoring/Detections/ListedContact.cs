namespace Wardline.Monitoring.Detections;

/// <summary>
/// A member of staff in the record of a patient who lists them as next of kin or emergency contact: a
/// relative or partner by the patient's own word. Grouped per patient.
/// </summary>
internal sealed class ListedContact : Detection
{
    private static readonly DetectionInfo Description = new(
        "listed-contact", "Listed as the patient's contact", Severity.High, Suppressible: true,
        "A member of staff opened the record of a patient who names them as next of kin or emergency contact: family or a partner, whose record they should leave to others. A documented care relationship explains it. Reported once a day per user and patient.",
        []);

    private readonly OncePerDay _once = new();

    public override DetectionInfo Info => Description;

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (!e.IsPermittedPatientDecision) return;
        var (staff, patient) = Parties.Of(e, ctx.Directory);
        if (staff is not { FullNameKey: { } name, Service: false } || patient?.ContactNameKeys is not { Count: > 0 } contacts) return;
        var listed = false;
        foreach (var contact in contacts)
        {
            if (contact == name)
            {
                listed = true;
                break;
            }
        }
        var user = e.User!;
        if (!listed || Parties.IsOwn(user, staff, patient) || !_once.First(ctx, user, patient.Id, e.AtMs)) return;
        ctx.Report(this, user, patient.Id, e.AtMs, [e.Index],
            "this user is listed as a contact (next of kin or emergency contact) of the patient", groupKey: patient.Id);
    }
}
