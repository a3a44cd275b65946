namespace Wardline.Monitoring.Detections;

/// <summary>
/// A member of staff in the record of a colleague (a patient who is an employee). One alert per user
/// within the grouping window: browsing colleagues' records is one case however many.
/// </summary>
internal sealed class Coworker : Detection
{
    private static readonly DetectionInfo Description = new(
        "coworker", "Colleague's record", Severity.Medium, Suppressible: true,
        "A member of staff opened the record of a patient who is also an employee here. Colleagues' records draw curiosity, and a colleague would not want it. A documented care relationship explains it. Reported once a day per user and patient; can be limited to colleagues in the same department.",
        [new DetectionParameter("same-department-only", 0, 0, 1,
            "1: only when the employee-patient shares a department with the user; 0: any employee")]);

    private readonly OncePerDay _once = new();
    private bool _sameDepartmentOnly;

    public override DetectionInfo Info => Description;

    protected override void OnConfigured(DetectionSettings settings) => _sameDepartmentOnly = settings["same-department-only"] >= 0.5;

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (!e.IsPermittedPatientDecision) return;
        var (staff, patient) = Parties.Of(e, ctx.Directory);
        if (patient?.StaffUser is not { } employee || Parties.IsService(staff) || Financial.IsBillingWork(e, patient)) return;
        var user = e.User!;
        if (Parties.IsOwn(user, staff, patient)) return;
        var shared = SharesDepartment(ctx, user, employee, e.AtMs);
        if ((_sameDepartmentOnly && !shared) || !_once.First(ctx, user, patient.Id, e.AtMs)) return;
        var evidence = shared
            ? $"the patient is an employee (account {employee}), in the same department"
            : $"the patient is an employee (account {employee})";
        ctx.Report(this, user, patient.Id, e.AtMs, [e.Index], evidence);
    }

    private static bool SharesDepartment(MonitorContext ctx, string user, string employee, long atMs)
    {
        var theirs = ctx.DepartmentsOf(employee, atMs);
        if (theirs.Count == 0) return false;
        foreach (var department in ctx.DepartmentsOf(user, atMs))
        {
            if (theirs.Contains(department)) return true;
        }
        return false;
    }
}
