namespace Wardline.Monitoring.Tests.Detections;

public sealed class ListedContactTests
{
    private static readonly long Day = TimeSpan.FromDays(1).Ticks / TimeSpan.TicksPerMillisecond;

    private static Kit Hospital()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("clerk.ola", ["clerk"], ["admissions"], [], FullNameKey: "n-ola"));
        kit.Staff.Add(new StaffMember("clerk.ben", ["clerk"], ["admissions"], [], FullNameKey: "n-ben"));
        kit.Patients.Add(new PatientProfile("p-mother", ContactNameKeys: ["n-sis", "n-ola"]));
        kit.Patients.Add(new PatientProfile("p-1"));
        return kit;
    }

    private static List<Finding> Of(List<Finding> findings) => [.. findings.Where(f => f.Detection == "listed-contact")];

    [Fact]
    public void Clerk_reading_the_record_of_someone_who_lists_her_as_next_of_kin_is_found()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(kit.Read("clerk.ola", "p-mother", Kit.Start), kit.Read("clerk.ola", "p-mother", Kit.Start.AddHours(1))));
        var f = Assert.Single(findings);
        Assert.Equal(("clerk.ola", "p-mother", Severity.High, "p-mother"), (f.User, f.Patient, f.Severity, f.GroupKey));
        Assert.Equal([0L], f.Entries);
        Assert.Equal("this user is listed as a contact (next of kin or emergency contact) of the patient", f.Evidence);
    }

    [Fact]
    public void A_colleague_who_is_not_listed_is_not_found()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(kit.Read("clerk.ben", "p-mother", Kit.Start), kit.Read("clerk.ola", "p-1", Kit.Start))));
    }

    [Fact]
    public void Listed_contact_with_a_referral_is_silenced()
    {
        var kit = Hospital();
        kit.Relationships.Add(("clerk.ola", "p-mother", new Relationship("referral", Kit.Ms(Kit.Start) - Day, null)));
        Assert.Empty(Of(kit.Run(kit.Read("clerk.ola", "p-mother", Kit.Start))));
    }

    [Fact]
    public void Severity_from_the_configuration_is_used()
    {
        var kit = Hospital();
        kit.ConfigText = "version: 1\ndetections:\n  listed-contact:\n    severity: critical\n";
        Assert.Equal(Severity.Critical, Assert.Single(Of(kit.Run(kit.Read("clerk.ola", "p-mother", Kit.Start)))).Severity);
    }

    [Fact]
    public void Unknown_user_and_patient_do_not_throw()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(kit.Read("left.long.ago", "p-mother", Kit.Start), kit.Read("clerk.ola", "p-gone", Kit.Start))));
    }
}
