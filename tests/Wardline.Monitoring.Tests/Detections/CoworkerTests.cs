namespace Wardline.Monitoring.Tests.Detections;

public sealed class CoworkerTests
{
    private static readonly long Day = TimeSpan.FromDays(1).Ticks / TimeSpan.TicksPerMillisecond;

    private static Kit Hospital()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("nurse.ann", ["nurse"], ["cardiology"], [], OwnPatientId: "p-ann"));
        kit.Staff.Add(new StaffMember("dr.bob", ["physician"], ["cardiology"], []));
        kit.Staff.Add(new StaffMember("clerk.cy", ["clerk"], ["admissions"], []));
        kit.Staff.Add(new StaffMember("hl7.feed", ["interface"], [], [], Service: true));
        kit.Patients.Add(new PatientProfile("p-ann", StaffUser: "nurse.ann"));
        kit.Patients.Add(new PatientProfile("p-1"));
        return kit;
    }

    private static List<Finding> Of(List<Finding> findings) => [.. findings.Where(f => f.Detection == "coworker")];

    [Fact]
    public void Clerk_reading_a_nurses_record_is_found_with_the_employees_account()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(kit.Read("clerk.cy", "p-ann", Kit.Start), kit.Read("clerk.cy", "p-ann", Kit.Start.AddHours(2))));
        var f = Assert.Single(findings);
        Assert.Equal(("clerk.cy", "p-ann", Severity.Medium), (f.User, f.Patient, f.Severity));
        Assert.Equal([0L], f.Entries);
        Assert.Equal("the patient is an employee (account nurse.ann)", f.Evidence);
        Assert.Null(f.GroupKey);
    }

    [Fact]
    public void A_colleague_in_the_same_department_is_named_so()
    {
        var kit = Hospital();
        var f = Assert.Single(Of(kit.Run(kit.Read("dr.bob", "p-ann", Kit.Start))));
        Assert.Equal("the patient is an employee (account nurse.ann), in the same department", f.Evidence);
    }

    [Fact]
    public void Ordinary_patients_own_records_and_service_accounts_are_not_coworker_access()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(kit.Read("dr.bob", "p-1", Kit.Start), kit.Read("nurse.ann", "p-ann", Kit.Start), kit.Read("hl7.feed", "p-ann", Kit.Start))));
    }

    [Fact]
    public void A_colleague_on_the_care_team_is_silenced()
    {
        var kit = Hospital();
        kit.Relationships.Add(("dr.bob", "p-ann", new Relationship("care-team", Kit.Ms(Kit.Start) - Day, Kit.Ms(Kit.Start) + Day)));
        Assert.Empty(Of(kit.Run(kit.Read("dr.bob", "p-ann", Kit.Start))));
    }

    [Fact]
    public void Same_department_only_from_the_configuration_leaves_other_departments_out()
    {
        var kit = Hospital();
        kit.ConfigText = "version: 1\ndetections:\n  coworker:\n    same-department-only: 1\n";
        var findings = Of(kit.Run(kit.Read("clerk.cy", "p-ann", Kit.Start), kit.Read("dr.bob", "p-ann", Kit.Start)));
        Assert.Equal("dr.bob", Assert.Single(findings).User);
    }

    [Fact]
    public void A_transfer_in_the_ledger_decides_the_shared_department()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(
            kit.Security("AccountChanged", "clerk.cy", Kit.Start.AddDays(-1), detail: "departments=cardiology"),
            kit.Read("clerk.cy", "p-ann", Kit.Start)));
        Assert.EndsWith(", in the same department", Assert.Single(findings).Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public void Unknown_user_and_patient_do_not_throw()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(kit.Read("left.long.ago", "p-ann", Kit.Start), kit.Read("dr.bob", "p-gone", Kit.Start)));
        Assert.Equal("left.long.ago", Assert.Single(findings).User);
    }
}
