namespace Wardline.Monitoring.Tests.Detections;

public sealed class DepartmentMismatchTests
{
    private static readonly long Day = TimeSpan.FromDays(1).Ticks / TimeSpan.TicksPerMillisecond;

    private static Kit Hospital()
    {
        var kit = new Kit();
        var now = Kit.Ms(Kit.Start);
        kit.Staff.Add(new StaffMember("dr.bob", ["physician"], ["cardiology"], []));
        kit.Staff.Add(new StaffMember("dr.nod", ["physician"], [], []));
        kit.Patients.Add(new PatientProfile("p-onc", Stays: [new DepartmentStay("oncology", now - 5 * Day, null), new DepartmentStay("radiology", now - 3 * Day, now - 2 * Day)]));
        kit.Patients.Add(new PatientProfile("p-card", Stays: [new DepartmentStay("oncology", now - 5 * Day, null), new DepartmentStay("cardiology", now - Day, null)]));
        kit.Patients.Add(new PatientProfile("p-old", Stays: [new DepartmentStay("oncology", now - 50 * Day, now - 40 * Day)]));
        kit.Patients.Add(new PatientProfile("p-none"));
        return kit;
    }

    private static List<Finding> Of(List<Finding> findings) => [.. findings.Where(f => f.Detection == "department-mismatch")];

    [Fact]
    public void Cardiologist_in_an_oncology_patients_record_is_found_with_the_departments()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(kit.Read("dr.bob", "p-onc", Kit.Start), kit.Read("dr.bob", "p-onc", Kit.Start.AddMinutes(1))));
        var f = Assert.Single(findings);
        Assert.Equal(("dr.bob", "p-onc", Severity.Low), (f.User, f.Patient, f.Severity));
        Assert.Equal([0L], f.Entries);
        Assert.Equal("the patient is being treated in oncology, radiology, none of them this user's departments (cardiology)", f.Evidence);
    }

    [Fact]
    public void A_patient_also_in_the_users_department_or_without_recent_stays_is_not_found()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(kit.Read("dr.bob", "p-card", Kit.Start), kit.Read("dr.bob", "p-old", Kit.Start), kit.Read("dr.bob", "p-none", Kit.Start))));
    }

    [Fact]
    public void Billing_reads_are_finance_work()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(kit.Read("dr.bob", "p-onc", Kit.Start, "ExplanationOfBenefit", "eob1"))));
    }

    [Fact]
    public void An_appointment_explains_it_but_an_encounter_is_not_configured_to()
    {
        var kit = Hospital();
        kit.Relationships.Add(("dr.bob", "p-onc", new Relationship("appointment", Kit.Ms(Kit.Start), Kit.Ms(Kit.Start) + 3_600_000)));
        Assert.Empty(Of(kit.Run(kit.Read("dr.bob", "p-onc", Kit.Start))));
        kit.Relationships.Clear();
        kit.Relationships.Add(("dr.bob", "p-onc", new Relationship("encounter", Kit.Ms(Kit.Start), null)));
        Assert.Single(Of(kit.Run(kit.Read("dr.bob", "p-onc", Kit.Start))));
    }

    [Fact]
    public void Lookback_days_from_the_configuration_decide_which_stays_count()
    {
        var kit = Hospital();
        kit.ConfigText = "version: 1\ndetections:\n  department-mismatch:\n    lookback-days: 60\n";
        Assert.Single(Of(kit.Run(kit.Read("dr.bob", "p-old", Kit.Start))));
    }

    [Fact]
    public void A_transfer_recorded_in_the_ledger_is_judged_by_the_new_department()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(
            kit.Security("AccountChanged", "dr.bob", Kit.Start.AddDays(-1), detail: "departments=oncology"),
            kit.Read("dr.bob", "p-onc", Kit.Start))));
    }

    [Fact]
    public void Users_without_departments_and_unknown_users_or_patients_are_not_judged()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(kit.Read("dr.nod", "p-onc", Kit.Start), kit.Read("left.long.ago", "p-onc", Kit.Start), kit.Read("dr.bob", "p-gone", Kit.Start))));
    }
}
