namespace Wardline.Monitoring.Detections;

/// <summary>
/// A member of staff in the record of a patient who lives at their street address: a household member.
/// Grouped per patient: each household member is a case of its own.
/// </summary>
internal sealed class SameAddress : Detection
{
    private static readonly DetectionInfo Description = new(
        "same-address", "Same street address", Severity.High, Suppressible: true,
        "A member of staff opened the record of a patient who lives at their own street address: a household member, whose record they should leave to others. A documented care relationship explains it. Reported once a day per user and patient; it also speaks for a shared surname.",
        []);

    private readonly OncePerDay _once = new();

    public override DetectionInfo Info => Description;

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (!e.IsPermittedPatientDecision) return;
        var (staff, patient) = Parties.Of(e, ctx.Directory);
        if (staff is not { AddressKey: { } address, Service: false } || patient is null || patient.AddressKey != address) return;
        var user = e.User!;
        if (Parties.IsOwn(user, staff, patient) || !_once.First(ctx, user, patient.Id, e.AtMs)) return;
        var evidence = staff.SurnameKey is not null && staff.SurnameKey == patient.SurnameKey
            ? "this user and the patient share the surname and street address"
            : "this user and the patient share the street address";
        ctx.Report(this, user, patient.Id, e.AtMs, [e.Index], evidence, groupKey: patient.Id);
    }
}
