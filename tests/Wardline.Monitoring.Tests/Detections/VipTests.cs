namespace Wardline.Monitoring.Tests.Detections;

public sealed class VipTests
{
    private static readonly long Day = TimeSpan.FromDays(1).Ticks / TimeSpan.TicksPerMillisecond;

    private static Kit Hospital()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("dr.bob", ["physician"], ["cardiology"], []));
        // Treated in cardiology last week: a recent stay, not a current one.
        kit.Patients.Add(new PatientProfile("p-star", Vip: true, Stays: [new DepartmentStay("cardiology", Kit.Ms(Kit.Start) - 10 * Day, Kit.Ms(Kit.Start) - 5 * Day)]));
        kit.Patients.Add(new PatientProfile("p-mayor", Vip: true));
        kit.Patients.Add(new PatientProfile("p-1"));
        return kit;
    }

    private static List<Finding> Of(List<Finding> findings) => [.. findings.Where(f => f.Detection == "vip")];

    [Fact]
    public void Physician_browsing_two_vip_records_is_found_for_each_patient_once_a_day()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(
            kit.Read("dr.bob", "p-star", Kit.Start),
            kit.Read("dr.bob", "p-star", Kit.Start.AddMinutes(1), "Condition"),
            kit.Read("dr.bob", "p-mayor", Kit.Start.AddMinutes(2))));
        Assert.Equal(["p-star", "p-mayor"], findings.Select(f => f.Patient));
        Assert.Equal([2L], findings[1].Entries);
        Assert.All(findings, f => Assert.Equal("the patient's record is flagged VIP (restricted)", f.Evidence));
        Assert.All(findings, f => Assert.Null(f.GroupKey));
    }

    [Fact]
    public void A_claim_of_a_recently_treated_vip_is_billing_work_but_a_clinical_read_or_a_claim_without_a_stay_is_not()
    {
        var kit = Hospital();
        kit.Staff.Add(new StaffMember("billing.001", ["billing_clerk"], ["billing"], []));
        var findings = Of(kit.Run(
            kit.Read("billing.001", "p-star", Kit.Start, "Claim", "cl1"),
            kit.Read("billing.001", "p-mayor", Kit.Start, "Claim", "cl2"),
            kit.Read("billing.001", "p-star", Kit.Start.AddHours(1), "Condition", "c1")));
        Assert.Equal([[1L], [2L]], findings.Select(f => f.Entries));
    }

    [Fact]
    public void An_ordinary_record_is_not_found()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(kit.Read("dr.bob", "p-1", Kit.Start))));
    }

    [Fact]
    public void A_vip_treated_in_the_users_department_last_week_is_found_but_one_on_the_ward_now_or_with_an_encounter_is_not()
    {
        var kit = Hospital();
        Assert.Single(Of(kit.Run(kit.Read("dr.bob", "p-star", Kit.Start))));
        kit.Patients.Add(new PatientProfile("p-admitted", Vip: true, Stays: [new DepartmentStay("cardiology", Kit.Ms(Kit.Start) - Day, null)]));
        Assert.Empty(Of(kit.Run(kit.Read("dr.bob", "p-admitted", Kit.Start))));
        kit.Relationships.Add(("dr.bob", "p-star", new Relationship("encounter", Kit.Ms(Kit.Start) - Day, null)));
        Assert.Empty(Of(kit.Run(kit.Read("dr.bob", "p-star", Kit.Start))));
    }

    [Fact]
    public void A_configuration_that_lets_the_department_stay_explain_it_is_followed()
    {
        var kit = Hospital();
        kit.ConfigText = "version: 1\nexplanations:\n  department-stay:\n    suppresses: [vip]\n    grace-days: 30\n";
        Assert.Empty(Of(kit.Run(kit.Read("dr.bob", "p-star", Kit.Start))));
        Assert.Single(Of(kit.Run(kit.Read("dr.bob", "p-mayor", Kit.Start))));
    }

    [Fact]
    public void Unknown_user_and_patient_do_not_throw()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(kit.Read("left.long.ago", "p-star", Kit.Start), kit.Read("dr.bob", "p-gone", Kit.Start)));
        Assert.Equal("left.long.ago", Assert.Single(findings).User);
    }
}
