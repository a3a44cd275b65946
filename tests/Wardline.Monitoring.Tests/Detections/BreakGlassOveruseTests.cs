namespace Wardline.Monitoring.Tests.Detections;

public sealed class BreakGlassOveruseTests
{
    private static Kit Hospital()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("dr.bob", ["physician"], ["emergency"], []));
        kit.Staff.Add(new StaffMember("dr.eve", ["physician"], ["emergency"], []));
        return kit;
    }

    private static MonitorEvent Declared(Kit kit, string user, DateTimeOffset at, string outcome = "granted") =>
        kit.Security("BreakGlassDeclared", user, at, outcome, $"declaration 0f3a patient Patient/p-{at.Day} purpose ETREAT until {at.AddHours(4):O}", actor: user);

    private static List<Finding> Of(List<Finding> findings) => [.. findings.Where(f => f.Detection == "break-glass-overuse")];

    [Fact]
    public void A_fourth_declaration_in_30_days_is_found_and_each_further_one_again()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(Enumerable.Range(0, 5).Select(i => Declared(kit, "dr.bob", Kit.Start.AddDays(5 * i)))));
        Assert.Equal(2, findings.Count);
        Assert.Equal("declared break-glass 4 times in 30 days (more than 3)", findings[0].Evidence);
        Assert.Equal([0L, 1L, 2L, 3L], findings[0].Entries);
        Assert.Equal("declared break-glass 5 times in 30 days (more than 3)", findings[1].Evidence);
        Assert.All(findings, f => Assert.Equal(("dr.bob", Severity.High, (string?)null), (f.User, f.Severity, f.Patient)));
    }

    [Fact]
    public void Three_declarations_spread_declarations_refusals_and_other_users_are_not_overuse()
    {
        var kit = Hospital();
        Assert.Empty(Of(kit.Run(
        [
            .. Enumerable.Range(0, 3).Select(i => Declared(kit, "dr.bob", Kit.Start.AddDays(i))),
            .. Enumerable.Range(0, 3).Select(i => Declared(kit, "dr.bob", Kit.Start.AddDays(i), "refused")),
            .. Enumerable.Range(0, 3).Select(i => Declared(kit, "dr.eve", Kit.Start.AddDays(i))),
            .. Enumerable.Range(0, 4).Select(i => Declared(kit, "dr.eve", Kit.Start.AddDays(40 + 12 * i))),
        ])));
    }

    [Fact]
    public void Limit_and_window_from_the_configuration_decide()
    {
        var kit = Hospital();
        kit.ConfigText = "version: 1\ndetections:\n  break-glass-overuse:\n    max-declarations: 1\n";
        Assert.Equal("declared break-glass 2 times in 30 days (more than 1)",
            Assert.Single(Of(kit.Run(Declared(kit, "dr.bob", Kit.Start), Declared(kit, "dr.bob", Kit.Start.AddDays(1))))).Evidence);
        kit.ConfigText = "version: 1\ndetections:\n  break-glass-overuse:\n    window-days: 60\n";
        Assert.Equal("declared break-glass 4 times in 60 days (more than 3)",
            Assert.Single(Of(kit.Run(Enumerable.Range(0, 4).Select(i => Declared(kit, "dr.bob", Kit.Start.AddDays(12 * i)))))).Evidence);
    }

    [Fact]
    public void A_clock_that_jumps_back_does_not_throw_and_old_declarations_age_out()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(
            Declared(kit, "dr.bob", Kit.Start.AddDays(100)),
            Declared(kit, "dr.bob", Kit.Start),
            Declared(kit, "dr.bob", Kit.Start.AddDays(101)),
            Declared(kit, "unknown.user", Kit.Start.AddDays(102)),
            Declared(kit, "dr.bob", Kit.Start.AddDays(102))));
        Assert.Empty(findings);
    }
}
