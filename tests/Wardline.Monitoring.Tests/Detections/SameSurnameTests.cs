namespace Wardline.Monitoring.Tests.Detections;

public sealed class SameSurnameTests
{
    private static readonly long Day = TimeSpan.FromDays(1).Ticks / TimeSpan.TicksPerMillisecond;

    private static Kit Hospital()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("nurse.kim", ["nurse"], ["cardiology"], [], SurnameKey: "s-kim", FullNameKey: "n-kim", AddressKey: "a-1", OwnPatientId: "p-own"));
        kit.Staff.Add(new StaffMember("hl7.feed", ["interface"], [], [], Service: true, SurnameKey: "s-kim"));
        kit.Patients.Add(new PatientProfile("p-rel", SurnameKey: "s-kim", AddressKey: "a-9"));
        kit.Patients.Add(new PatientProfile("p-home", SurnameKey: "s-kim", AddressKey: "a-1"));
        kit.Patients.Add(new PatientProfile("p-other", SurnameKey: "s-lee", AddressKey: "a-2"));
        kit.Patients.Add(new PatientProfile("p-own", SurnameKey: "s-kim", AddressKey: "a-1", StaffUser: "nurse.kim"));
        return kit;
    }

    private static List<Finding> Of(List<Finding> findings) => [.. findings.Where(f => f.Detection == "same-surname")];

    [Fact]
    public void Nurse_reading_a_patient_with_her_surname_is_found_once_a_day()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(
            kit.Read("nurse.kim", "p-rel", Kit.Start, "Observation", "o1"),
            kit.Read("nurse.kim", "p-rel", Kit.Start.AddMinutes(1), "Condition", "c1"),
            kit.Read("nurse.kim", "p-rel", Kit.Start.AddMinutes(2), "MedicationRequest", "m1"),
            kit.Read("nurse.kim", "p-rel", Kit.Start.AddDays(1), "Observation", "o1")));
        Assert.Equal(2, findings.Count);
        var f = findings[0];
        Assert.Equal(("nurse.kim", "p-rel", Severity.Medium), (f.User, f.Patient, f.Severity));
        Assert.Equal([0L], f.Entries);
        Assert.Equal([3L], findings[1].Entries);
        Assert.Equal("this user and the patient share a surname", f.Evidence);
        Assert.Null(f.GroupKey);
    }

    [Fact]
    public void Patient_with_another_surname_is_not_found()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(kit.Read("nurse.kim", "p-other", Kit.Start))));
    }

    [Fact]
    public void Same_surname_and_address_is_left_to_same_address()
    {
        var kit = Hospital();
        var findings = kit.Run(kit.Read("nurse.kim", "p-home", Kit.Start));
        Assert.Empty(Of(findings));
        Assert.Single(findings, f => f.Detection == "same-address");
    }

    [Fact]
    public void Same_surname_and_address_is_raised_here_when_same_address_is_switched_off()
    {
        var kit = Hospital();
        kit.ConfigText = "version: 1\ndetections:\n  same-address:\n    enabled: false\n";
        Assert.Single(Of(kit.Run(kit.Read("nurse.kim", "p-home", Kit.Start))));
    }

    [Fact]
    public void Own_record_and_service_accounts_are_not_same_surname()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(kit.Read("nurse.kim", "p-own", Kit.Start), kit.Read("hl7.feed", "p-rel", Kit.Start))));
    }

    [Fact]
    public void Same_surname_on_the_care_team_is_silenced()
    {
        var kit = Hospital();
        kit.Relationships.Add(("nurse.kim", "p-rel", new Relationship("care-team", Kit.Ms(Kit.Start) - Day, null)));
        var engine = kit.Engine();
        var findings = new List<Finding>();
        engine.Examine(kit.Read("nurse.kim", "p-rel", Kit.Start), findings);
        Assert.Empty(Of(findings));
        Assert.Equal(1, engine.Context.Suppressed["same-surname"]);
    }

    [Fact]
    public void Appointment_grace_days_from_the_configuration_decide()
    {
        var kit = Hospital();
        kit.Relationships.Add(("nurse.kim", "p-rel", new Relationship("appointment", Kit.Ms(Kit.Start) - 3 * Day, Kit.Ms(Kit.Start) - 2 * Day)));
        Assert.Single(Of(kit.Run(kit.Read("nurse.kim", "p-rel", Kit.Start))));
        kit.ConfigText = "version: 1\nexplanations:\n  appointment:\n    suppresses: [same-surname]\n    grace-days: 3\n";
        Assert.Empty(Of(kit.Run(kit.Read("nurse.kim", "p-rel", Kit.Start))));
    }

    [Fact]
    public void Unknown_user_and_patient_do_not_throw()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(kit.Read("left.long.ago", "p-rel", Kit.Start), kit.Read("nurse.kim", "p-gone", Kit.Start))));
    }
}
