namespace Wardline.Monitoring.Tests.Detections;

public sealed class NoCareRelationshipTests
{
    private static readonly long Day = TimeSpan.FromDays(1).Ticks / TimeSpan.TicksPerMillisecond;

    private static Kit Hospital()
    {
        var kit = new Kit();
        var now = Kit.Ms(Kit.Start);
        kit.Staff.Add(new StaffMember("dr.bob", ["physician"], ["cardiology"], [], OwnPatientId: "p-bob"));
        kit.Staff.Add(new StaffMember("hl7.feed", ["interface"], [], [], Service: true));
        kit.Patients.Add(new PatientProfile("p-1"));
        kit.Patients.Add(new PatientProfile("p-bob", StaffUser: "dr.bob"));
        kit.Patients.Add(new PatientProfile("p-recent", Stays: [new DepartmentStay("cardiology", now - 25 * Day, now - 20 * Day)]));
        kit.Patients.Add(new PatientProfile("p-long-ago", Stays: [new DepartmentStay("cardiology", now - 50 * Day, now - 40 * Day)]));
        return kit;
    }

    private static List<Finding> Of(List<Finding> findings) => [.. findings.Where(f => f.Detection == "no-care-relationship")];

    [Fact]
    public void Physician_opening_a_record_nothing_links_him_to_is_found_once_a_day()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(
            kit.Read("dr.bob", "p-1", Kit.Start),
            kit.Read("dr.bob", "p-1", Kit.Start.AddMinutes(3), "Condition"),
            kit.Read("dr.bob", "p-long-ago", Kit.Start.AddMinutes(4))));
        Assert.Equal(["p-1", "p-long-ago"], findings.Select(f => f.Patient));
        var f = findings[0];
        Assert.Equal(("dr.bob", Severity.Medium), (f.User, f.Severity));
        Assert.Equal([0L], f.Entries);
        Assert.Equal("no care relationship, appointment, order or note links this user to the patient, and the patient was not treated in the user's department in the last 30 days", f.Evidence);
        Assert.Null(f.GroupKey);
    }

    [Theory]
    [InlineData("care-team")]
    [InlineData("encounter")]
    [InlineData("episode")]
    [InlineData("appointment")]
    [InlineData("consult-order")]
    [InlineData("referral")]
    public void Each_documented_relationship_explains_it(string kind)
    {
        var kit = Hospital();
        kit.Relationships.Add(("dr.bob", "p-1", new Relationship(kind, Kit.Ms(Kit.Start) - Day, null)));
        Assert.Empty(Of(kit.Run(kit.Read("dr.bob", "p-1", Kit.Start))));
    }

    [Fact]
    public void A_note_written_for_the_patient_explains_the_reads_after_it()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(
            kit.Write("dr.bob", "p-1", "DocumentReference", "d1", Kit.Start, "create"),
            kit.Read("dr.bob", "p-1", Kit.Start.AddHours(1)))));
    }

    [Fact]
    public void A_stay_in_the_users_department_within_30_days_explains_it()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(kit.Read("dr.bob", "p-recent", Kit.Start))));
    }

    [Fact]
    public void Own_record_service_accounts_and_break_glass_reads_are_left_to_others()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(
            kit.Read("dr.bob", "p-bob", Kit.Start),
            kit.Read("hl7.feed", "p-1", Kit.Start),
            kit.Read("dr.bob", "p-1", Kit.Start, purpose: "ETREAT"),
            kit.Denied("dr.bob", "p-1", Kit.Start))));
    }

    [Fact]
    public void Billing_reads_of_claims_and_coverage_are_finance_work()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(kit.Read("dr.bob", "p-1", Kit.Start, "Claim", "cl1"), kit.Read("dr.bob", "p-1", Kit.Start.AddHours(1), "Coverage", "cov1"))));
    }

    [Fact]
    public void The_department_stay_grace_from_the_configuration_decides_and_is_named()
    {
        var kit = Hospital();
        kit.ConfigText = "version: 1\nexplanations:\n  department-stay:\n    suppresses: [no-care-relationship]\n    grace-days: 10\n";
        var f = Assert.Single(Of(kit.Run(kit.Read("dr.bob", "p-recent", Kit.Start))));
        Assert.EndsWith("in the last 10 days", f.Evidence, StringComparison.Ordinal);
        kit.ConfigText = "version: 1\nexplanations:\n  department-stay:\n    suppresses: [no-care-relationship]\n    grace-days: 45\n";
        Assert.Empty(Of(kit.Run(kit.Read("dr.bob", "p-long-ago", Kit.Start))));
    }

    [Fact]
    public void Without_a_department_stay_explanation_the_evidence_does_not_claim_one_was_checked()
    {
        var kit = Hospital();
        kit.ConfigText = "version: 1\n";
        var f = Assert.Single(Of(kit.Run(kit.Read("dr.bob", "p-recent", Kit.Start))));
        Assert.Equal("no care relationship, appointment, order or note links this user to the patient", f.Evidence);
    }

    [Fact]
    public void Unknown_user_and_patient_do_not_throw()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(kit.Read("left.long.ago", "p-gone", Kit.Start)));
        Assert.Equal(("left.long.ago", "p-gone"), (Assert.Single(findings).User, findings[0].Patient));
    }
}
