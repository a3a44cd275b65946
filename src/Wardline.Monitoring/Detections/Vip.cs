namespace Wardline.Monitoring.Detections;

/// <summary>A member of staff in a record flagged VIP or restricted. One alert per user within the grouping window.</summary>
internal sealed class Vip : Detection
{
    private static readonly DetectionInfo Description = new(
        "vip", "VIP record", Severity.Medium, Suppressible: true,
        "A member of staff opened a record flagged VIP or restricted (a public figure, a board member, a colleague's family on request): the records most often looked at out of curiosity. A documented care relationship explains it; working in the patient's department does not. Reported once a day per user and patient.",
        []);

    private readonly OncePerDay _once = new();

    public override DetectionInfo Info => Description;

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (!e.IsPermittedPatientDecision) return;
        var (staff, patient) = Parties.Of(e, ctx.Directory);
        if (patient is not { Vip: true } || Parties.IsService(staff) || Financial.IsBillingWork(e, patient)) return;
        var user = e.User!;
        if (Parties.IsOwn(user, staff, patient) || !_once.First(ctx, user, patient.Id, e.AtMs)) return;
        ctx.Report(this, user, patient.Id, e.AtMs, [e.Index], "the patient's record is flagged VIP (restricted)");
    }
}
