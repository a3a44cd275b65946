namespace Wardline.Monitoring.Tests.Detections;

public sealed class SelfAccessTests
{
    private static Kit Hospital()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("nurse.ann", ["nurse"], ["cardiology"], [], OwnPatientId: "p-ann"));
        kit.Staff.Add(new StaffMember("dr.bob", ["physician"], ["cardiology"], []));
        kit.Patients.Add(new PatientProfile("p-ann", StaffUser: "nurse.ann"));
        kit.Patients.Add(new PatientProfile("p-1"));
        return kit;
    }

    [Fact]
    public void Nurse_opening_her_own_record_is_found_with_plain_evidence()
    {
        var kit = Hospital();
        var findings = kit.Run(kit.Read("nurse.ann", "p-ann", Kit.Start));
        var f = Assert.Single(findings, x => x.Detection == "self-access");
        Assert.Equal("nurse.ann", f.User);
        Assert.Equal("p-ann", f.Patient);
        Assert.Equal(Severity.High, f.Severity);
        Assert.Equal([0L], f.Entries);
        Assert.Contains("own patient record", f.Evidence, StringComparison.Ordinal);
    }

    [Fact]
    public void Colleague_opening_the_nurses_record_is_not_self_access()
    {
        var kit = Hospital();
        Assert.DoesNotContain(kit.Run(kit.Read("dr.bob", "p-ann", Kit.Start)), x => x.Detection == "self-access");
    }

    [Fact]
    public void An_attempt_the_policy_refused_is_found_a_step_lower()
    {
        var kit = Hospital();
        var f = Assert.Single(kit.Run(kit.Denied("nurse.ann", "p-ann", Kit.Start)), x => x.Detection == "self-access");
        Assert.Equal(Severity.Medium, f.Severity);
        Assert.Equal("this user tried to open their own patient record; the policy refused it", f.Evidence);
    }

    [Fact]
    public void Unknown_user_and_patient_in_old_entries_do_not_throw()
    {
        var kit = Hospital();
        Assert.DoesNotContain(kit.Run(kit.Read("left.long.ago", "p-gone", Kit.Start)), x => x.Detection == "self-access");
    }
}
