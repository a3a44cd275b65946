namespace Wardline.Monitoring.Tests;

public sealed class MonitorContextTests
{
    private const long DayMs = 86_400_000;

    [Fact]
    public void An_unlock_in_the_ledger_does_not_hide_that_the_directory_has_the_account_disabled()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("nurse.gone", ["nurse"], ["cardiology"], [], DisabledAtMs: Kit.Ms(Kit.Start.AddDays(-3))));
        var engine = kit.Engine();
        engine.Warm(kit.Security("AccountChanged", "nurse.gone", Kit.Start.AddDays(-1), detail: "unlocked (failed sign-in attempts cleared)"));

        Assert.Equal(Kit.Ms(Kit.Start.AddDays(-3)), engine.Context.DisabledAt("nurse.gone", Kit.Ms(Kit.Start)));
    }

    [Fact]
    public void The_ledger_decides_once_it_saw_the_account_enabled_again()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("nurse.back", ["nurse"], ["cardiology"], [], DisabledAtMs: Kit.Ms(Kit.Start.AddDays(-3))));
        var engine = kit.Engine();
        engine.Warm(kit.Security("AccountChanged", "nurse.back", Kit.Start.AddDays(-1), detail: "enabled"));

        Assert.Null(engine.Context.DisabledAt("nurse.back", Kit.Ms(Kit.Start)));
    }

    [Fact]
    public void A_transfer_recorded_by_a_server_whose_clock_was_behind_still_counts_in_time_order()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("nurse.moved", ["nurse"], ["oncology"], []));
        var engine = kit.Engine();
        engine.Warm(kit.Security("AccountCreated", "nurse.moved", Kit.Start.AddDays(-20), detail: "roles=nurse tier=2 departments=cardiology treats= break-glass=no"));
        engine.Warm(kit.Security("AccountChanged", "nurse.moved", Kit.Start.AddDays(-2), detail: "changed departments; now roles=nurse tier=2 departments=oncology treats= break-glass=no"));
        // Written later, stamped earlier: a role change with the old department.
        engine.Warm(kit.Security("AccountChanged", "nurse.moved", Kit.Start.AddDays(-10), detail: "changed roles; now roles=nurse tier=2 departments=cardiology treats= break-glass=no"));

        var at = Kit.Ms(Kit.Start);
        Assert.Equal(["oncology"], engine.Context.DepartmentsOf("nurse.moved", at));
        Assert.Equal(["cardiology"], engine.Context.DepartmentsOf("nurse.moved", at - 5 * DayMs));
        Assert.Contains(("cardiology", at - 2 * DayMs), engine.Context.DepartmentsLeft("nurse.moved", at, 30 * DayMs));
    }

    [Fact]
    public void The_ledger_knows_an_account_it_created_and_tracks_its_departments_once_it_named_them_twice()
    {
        var kit = new Kit();
        var engine = kit.Engine();
        Assert.False(engine.Context.LedgerKnowsAccount("nurse.new"));
        engine.Warm(kit.Security("AccountCreated", "nurse.new", Kit.Start.AddDays(-20), detail: "roles=nurse tier=2 departments=cardiology treats= break-glass=no"));
        engine.Warm(kit.Security("AccountChanged", "nurse.new", Kit.Start.AddDays(-15), detail: "unlocked (failed sign-in attempts cleared)"));

        Assert.True(engine.Context.LedgerKnowsAccount("nurse.new"));
        Assert.False(engine.Context.LedgerTracksDepartments("nurse.new"));

        engine.Warm(kit.Security("AccountChanged", "nurse.new", Kit.Start.AddDays(-2), detail: "changed departments; now roles=nurse tier=2 departments=oncology treats= break-glass=no"));
        Assert.True(engine.Context.LedgerTracksDepartments("nurse.new"));
        Assert.False(engine.Context.LedgerKnowsAccount("nurse.other"));
    }
}

public sealed class StayExplanationTests
{
    private static Kit Ward()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("nurse.ann", ["nurse"], ["cardiology"], []));
        kit.Patients.Add(new PatientProfile("p-1", Stays: [new DepartmentStay("cardiology", Kit.Ms(Kit.Start.AddDays(20)), Kit.Ms(Kit.Start.AddDays(25)))]));
        kit.Patients.Add(new PatientProfile("p-2", Stays: [new DepartmentStay("cardiology", Kit.Ms(Kit.Start.AddDays(-2)), Kit.Ms(Kit.Start.AddDays(-1)))]));
        return kit;
    }

    [Fact]
    public void A_stay_that_starts_weeks_after_a_read_does_not_explain_it()
    {
        var kit = Ward();
        var ctx = kit.Engine().Context;
        Assert.False(ctx.Holds("department-stay", "nurse.ann", "p-1", Kit.Ms(Kit.Start), 30 * 86_400_000L));
        Assert.True(ctx.Holds("department-stay", "nurse.ann", "p-1", Kit.Ms(Kit.Start.AddDays(19.5)), 30 * 86_400_000L)); // the day before admission
    }

    [Fact]
    public void A_current_stay_explains_only_while_the_patient_is_on_the_ward()
    {
        var kit = Ward();
        var ctx = kit.Engine().Context;
        Assert.True(ctx.Holds("current-stay", "nurse.ann", "p-2", Kit.Ms(Kit.Start.AddDays(-1.5)), 0));
        Assert.False(ctx.Holds("current-stay", "nurse.ann", "p-2", Kit.Ms(Kit.Start), 0));
        Assert.Equal("current-stay", ctx.Explain("vip", "nurse.ann", "p-2", Kit.Ms(Kit.Start.AddDays(-1.5))));
        Assert.Null(ctx.Explain("same-address", "nurse.ann", "p-2", Kit.Ms(Kit.Start.AddDays(-1.5))));
    }
}
