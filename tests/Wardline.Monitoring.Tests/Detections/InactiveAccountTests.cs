namespace Wardline.Monitoring.Tests.Detections;

public sealed class InactiveAccountTests
{
    private static Kit Hospital()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("nurse.ann", ["nurse"], ["oncology"], []));
        kit.Staff.Add(new StaffMember("dr.gone", ["physician"], ["cardiology"], [], DisabledAtMs: Kit.Ms(Kit.Start)));
        kit.Staff.Add(new StaffMember("dr.leaver", ["physician"], ["cardiology"], [], ExpiresMs: Kit.Ms(Kit.Start.AddDays(-3))));
        kit.Patients.Add(new PatientProfile("p-cardio", Stays: [new DepartmentStay("cardiology", Kit.Ms(Kit.Start.AddDays(-30)), null)]));
        kit.Patients.Add(new PatientProfile("p-onc", Stays: [new DepartmentStay("oncology", Kit.Ms(Kit.Start.AddDays(-30)), null)]));
        return kit;
    }

    private static Finding Inactive(List<Finding> findings) => Assert.Single(findings, f => f.Detection == "inactive-account");

    [Fact]
    public void A_read_after_the_ledger_disabled_the_account_is_found()
    {
        var kit = Hospital();
        var read = kit.Read("nurse.ann", "p-onc", Kit.Start.AddHours(2));
        var f = Inactive(kit.Run(kit.Security("AccountDisabled", "nurse.ann", Kit.Start, actor: "admin"), read));
        Assert.Equal("nurse.ann", f.User);
        Assert.Equal("p-onc", f.Patient);
        Assert.Equal(Severity.High, f.Severity);
        Assert.Equal("disabled", f.GroupKey);
        Assert.Equal([read.Index], f.Entries);
        Assert.Equal("the account was disabled on 2026-03-02 and still opened a patient's record", f.Evidence);
    }

    [Fact]
    public void A_sign_in_or_token_of_an_account_the_directory_says_is_disabled_is_found()
    {
        var kit = Hospital();
        Assert.Equal("the account was disabled on 2026-03-02 and still signed in",
            Inactive(kit.Run(kit.Security("SignIn", "dr.gone", Kit.Start.AddMinutes(5), detail: "password"))).Evidence);
        Assert.Equal("the account was disabled on 2026-03-02 and still was issued a token",
            Inactive(kit.Run(kit.Security("TokenIssued", "dr.gone", Kit.Start.AddMinutes(5)))).Evidence);
    }

    [Fact]
    public void Reads_before_disabling_after_re_enabling_and_refused_sign_ins_are_not_found()
    {
        var kit = Hospital();
        var findings = kit.Run(
            kit.Read("nurse.ann", "p-onc", Kit.Start),
            kit.Security("AccountDisabled", "nurse.ann", Kit.Start.AddHours(1)),
            kit.Security("SignInFailed", "nurse.ann", Kit.Start.AddHours(2), outcome: "refused", detail: "account disabled"),
            kit.Security("AccountChanged", "nurse.ann", Kit.Start.AddHours(3), detail: "enabled"),
            kit.Read("nurse.ann", "p-onc", Kit.Start.AddHours(4)));
        Assert.DoesNotContain(findings, f => f.Detection == "inactive-account");
    }

    [Fact]
    public void A_read_after_the_holders_leaving_date_is_found()
    {
        var kit = Hospital();
        var f = Inactive(kit.Run(kit.Read("dr.leaver", "p-cardio", Kit.Start)));
        Assert.Equal("departed", f.GroupKey);
        Assert.Equal("the account's holder left on 2026-02-27 and the account still opened a patient's record", f.Evidence);
    }

    [Fact]
    public void A_transferred_nurse_opening_a_patient_of_her_former_department_is_found()
    {
        var kit = Hospital();
        var findings = kit.Run(
            kit.Security("AccountCreated", "nurse.ann", Kit.Start.AddDays(-40), detail: "roles=nurse tier=1 departments=cardiology treats= break-glass=no"),
            kit.Security("AccountChanged", "nurse.ann", Kit.Start.AddDays(-12), detail: "changed departments; now roles=nurse tier=1 departments=oncology treats= break-glass=no"),
            kit.Read("nurse.ann", "p-onc", Kit.Start),
            kit.Read("nurse.ann", "p-cardio", Kit.Start.AddMinutes(1)));
        var f = Inactive(findings);
        Assert.Equal("transferred", f.GroupKey);
        Assert.Equal("p-cardio", f.Patient);
        Assert.Equal("moved out of cardiology 12 days ago and opened a patient treated there", f.Evidence);
    }

    [Fact]
    public void A_transfer_longer_ago_than_configured_is_not_found()
    {
        var kit = Hospital();
        MonitorEvent[] events =
        [
            kit.Security("AccountCreated", "nurse.ann", Kit.Start.AddDays(-40), detail: "departments=cardiology"),
            kit.Security("AccountChanged", "nurse.ann", Kit.Start.AddDays(-12), detail: "departments=oncology"),
            kit.Read("nurse.ann", "p-cardio", Kit.Start),
        ];
        Assert.Single(kit.Run(events), f => f.Detection == "inactive-account");
        kit.ConfigText = "version: 1\ndetections:\n  inactive-account:\n    transfer-days: 10\n";
        Assert.DoesNotContain(kit.Run(events), f => f.Detection == "inactive-account");
    }

    [Fact]
    public void An_account_unknown_to_the_directory_is_found_unless_the_ledger_created_it()
    {
        var kit = Hospital();
        var f = Inactive(kit.Run(kit.Read("ghost", "p-onc", Kit.Start)));
        Assert.Equal("unknown", f.GroupKey);
        Assert.Equal("an account unknown to the directory opened a patient's record", f.Evidence);
        Assert.DoesNotContain(kit.Run(kit.Security("AccountCreated", "new.nurse", Kit.Start, detail: "departments=oncology"), kit.Read("new.nurse", "p-onc", Kit.Start.AddMinutes(1))),
            f => f.Detection == "inactive-account");
        Assert.DoesNotContain(new Kit().Run(kit.Read("ghost", "p-onc", Kit.Start)), f => f.Detection == "inactive-account");
    }

    [Fact]
    public void A_disabled_account_reading_all_day_is_one_finding()
    {
        var kit = Hospital();
        var events = Enumerable.Range(0, 50).Select(i => kit.Read("dr.gone", "p-cardio", Kit.Start.AddMinutes(i * 5))).ToList();
        Inactive(kit.Run(events));
    }

    [Fact]
    public void A_read_stamped_before_the_disabling_but_recorded_after_it_is_found()
    {
        var kit = Hospital();
        var findings = kit.Run(
            kit.Security("AccountDisabled", "nurse.ann", Kit.Start.AddHours(1)),
            kit.Read("nurse.ann", "p-onc", Kit.Start.AddMinutes(30)));
        Assert.Equal("disabled", Inactive(findings).GroupKey);
    }

    [Fact]
    public void Unknown_patients_and_old_accounts_do_not_throw()
    {
        var kit = Hospital();
        var findings = kit.Run(
            kit.Security("AccountChanged", "nurse.ann", Kit.Start, detail: "departments=oncology"),
            kit.Read("nurse.ann", "p-gone", Kit.Start.AddMinutes(1)),
            kit.Security("SignIn", null, Kit.Start.AddMinutes(2)));
        Assert.DoesNotContain(findings, f => f.Detection == "inactive-account");
    }
}
