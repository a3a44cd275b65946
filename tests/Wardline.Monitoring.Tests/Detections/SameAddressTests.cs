namespace Wardline.Monitoring.Tests.Detections;

public sealed class SameAddressTests
{
    private static readonly long Day = TimeSpan.FromDays(1).Ticks / TimeSpan.TicksPerMillisecond;

    private static Kit Hospital()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("dr.ray", ["physician"], ["oncology"], [], SurnameKey: "s-ray", AddressKey: "a-1"));
        kit.Staff.Add(new StaffMember("hl7.feed", ["interface"], [], [], Service: true, AddressKey: "a-1"));
        kit.Patients.Add(new PatientProfile("p-lodger", SurnameKey: "s-cho", AddressKey: "a-1"));
        kit.Patients.Add(new PatientProfile("p-son", SurnameKey: "s-ray", AddressKey: "a-1"));
        kit.Patients.Add(new PatientProfile("p-next-door", SurnameKey: "s-ray", AddressKey: "a-2"));
        return kit;
    }

    private static List<Finding> Of(List<Finding> findings) => [.. findings.Where(f => f.Detection == "same-address")];

    [Fact]
    public void Physician_reading_a_housemates_record_is_found_per_patient()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(
            kit.Read("dr.ray", "p-lodger", Kit.Start, "Observation", "o1"),
            kit.Read("dr.ray", "p-lodger", Kit.Start.AddMinutes(5), "Observation", "o2")));
        var f = Assert.Single(findings);
        Assert.Equal(("dr.ray", "p-lodger", Severity.High, "p-lodger"), (f.User, f.Patient, f.Severity, f.GroupKey));
        Assert.Equal([0L], f.Entries);
        Assert.Equal("this user and the patient share the street address", f.Evidence);
    }

    [Fact]
    public void Shared_surname_and_address_are_named_together()
    {
        var kit = Hospital();
        var f = Assert.Single(Of(kit.Run(kit.Read("dr.ray", "p-son", Kit.Start))));
        Assert.Equal("this user and the patient share the surname and street address", f.Evidence);
    }

    [Fact]
    public void Another_address_is_not_found()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(kit.Read("dr.ray", "p-next-door", Kit.Start), kit.Read("hl7.feed", "p-lodger", Kit.Start))));
    }

    [Fact]
    public void Same_address_under_a_consult_order_is_silenced()
    {
        var kit = Hospital();
        kit.Relationships.Add(("dr.ray", "p-son", new Relationship("consult-order", Kit.Ms(Kit.Start) - 10 * Day, Kit.Ms(Kit.Start) - 5 * Day)));
        Assert.Empty(Of(kit.Run(kit.Read("dr.ray", "p-son", Kit.Start))));
    }

    [Fact]
    public void Consult_order_grace_days_from_the_configuration_decide()
    {
        var kit = Hospital();
        kit.Relationships.Add(("dr.ray", "p-son", new Relationship("consult-order", Kit.Ms(Kit.Start) - 10 * Day, Kit.Ms(Kit.Start) - 5 * Day)));
        kit.ConfigText = "version: 1\nexplanations:\n  consult-order:\n    suppresses: [same-address]\n    grace-days: 2\n";
        Assert.Single(Of(kit.Run(kit.Read("dr.ray", "p-son", Kit.Start))));
    }

    [Fact]
    public void Unknown_user_and_patient_do_not_throw()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(kit.Read("left.long.ago", "p-son", Kit.Start), kit.Read("dr.ray", "p-gone", Kit.Start))));
    }
}
