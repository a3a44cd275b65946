namespace Wardline.Monitoring.Tests.Detections;

public sealed class BreakGlassTests
{
    private static readonly long Day = TimeSpan.FromDays(1).Ticks / TimeSpan.TicksPerMillisecond;

    private static Kit Hospital()
    {
        var kit = new Kit();
        kit.Staff.Add(new StaffMember("dr.bob", ["physician"], ["emergency"], []));
        kit.Patients.Add(new PatientProfile("p-1"));
        return kit;
    }

    private static MonitorEvent Declared(Kit kit, string user, string patient, DateTimeOffset at) =>
        kit.Security("BreakGlassDeclared", user, at, "granted", $"declaration 0f3a patient Patient/{patient} purpose ETREAT until {at.AddHours(4):O}", actor: user);

    private static List<Finding> Of(List<Finding> findings) => [.. findings.Where(f => f.Detection == "break-glass")];

    [Fact]
    public void A_granted_declaration_and_the_reads_under_it_are_one_case_per_patient()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(
            Declared(kit, "dr.bob", "p-1", Kit.Start),
            kit.Read("dr.bob", "p-1", Kit.Start.AddMinutes(1), purpose: "ETREAT"),
            kit.Read("dr.bob", "p-1", Kit.Start.AddMinutes(2), "Condition", purpose: "ETREAT"),
            kit.Read("dr.bob", "p-1", Kit.Start.AddDays(1), purpose: "ETREAT")));
        Assert.Equal(3, findings.Count);
        Assert.All(findings, f => Assert.Equal(("dr.bob", "p-1", "p-1", Severity.High), (f.User, f.Patient, f.GroupKey, f.Severity)));
        Assert.Equal("declared break-glass (emergency access) to the patient's record", findings[0].Evidence);
        Assert.Equal("read the patient's record under break-glass", findings[1].Evidence);
        Assert.Equal([[0L], [1L], [3L]], findings.Select(f => f.Entries));
    }

    [Fact]
    public void A_declaration_refused_for_the_grant_cap_says_so()
    {
        var kit = Hospital();
        var f = Assert.Single(Of(kit.Run(kit.Security("BreakGlassDeclared", "dr.bob", Kit.Start, "refused", "already holds active grants for 3 patients, the most at once", actor: "dr.bob"))));
        Assert.Equal("tried to declare break-glass for one more patient while holding the most grants allowed at once", f.Evidence);
    }

    [Fact]
    public void A_refused_declaration_is_found()
    {
        var kit = Hospital();
        var f = Assert.Single(Of(kit.Run(kit.Security("BreakGlassDeclared", "dr.bob", Kit.Start, "refused", "not pre-approved for break-glass", actor: "dr.bob"))));
        Assert.Equal("tried to declare break-glass without being pre-approved", f.Evidence);
        Assert.Null(f.Patient);
        Assert.Equal(Severity.Medium, f.Severity); // a step below a granted declaration: nothing was disclosed
        Assert.Equal("refused", f.GroupKey);
    }

    [Fact]
    public void Ordinary_reads_denied_emergency_reads_and_other_security_events_are_not_break_glass()
    {
        var kit = Hospital();
        var denied = kit.Denied("dr.bob", "p-1", Kit.Start) with { Purpose = "ETREAT" };
        Assert.Empty(Of(kit.Run(
            kit.Read("dr.bob", "p-1", Kit.Start),
            denied,
            kit.Security("SignIn", "dr.bob", Kit.Start),
            kit.Security("BreakGlassReviewed", "dr.bob", Kit.Start, "legitimate"))));
    }

    [Fact]
    public void A_care_relationship_does_not_silence_it()
    {
        var kit = Hospital();
        kit.Relationships.Add(("dr.bob", "p-1", new Relationship("care-team", Kit.Ms(Kit.Start) - Day, null)));
        Assert.Equal(2, Of(kit.Run(Declared(kit, "dr.bob", "p-1", Kit.Start), kit.Read("dr.bob", "p-1", Kit.Start, purpose: "ETREAT"))).Count);
    }

    [Fact]
    public void Severity_from_the_configuration_is_used()
    {
        var kit = Hospital();
        kit.ConfigText = "version: 1\ndetections:\n  break-glass:\n    severity: critical\n";
        Assert.Equal(Severity.Critical, Assert.Single(Of(kit.Run(Declared(kit, "dr.bob", "p-1", Kit.Start)))).Severity);
    }

    [Fact]
    public void Unknown_users_and_a_malformed_detail_do_not_throw()
    {
        var kit = Hospital();
        var findings = Of(kit.Run(
            kit.Security("BreakGlassDeclared", "left.long.ago", Kit.Start, "granted", "declaration 0f3a"),
            kit.Security("BreakGlassDeclared", "dr.bob", Kit.Start, "granted", null),
            kit.Read("left.long.ago", "p-gone", Kit.Start, purpose: "ETREAT")));
        Assert.Equal(3, findings.Count);
        Assert.Null(findings[0].Patient);
        Assert.Equal("p-gone", findings[2].Patient);
    }

    [Theory]
    [InlineData("declaration 0f3a patient Patient/p-1 purpose ETREAT until 2026-03-02T14:00:00.0000000+00:00", "p-1")]
    [InlineData("declaration 0f3a patient Patient/p-9", "p-9")]
    [InlineData("declaration 0f3a patient Patient/ purpose ETREAT", null)]
    [InlineData("not pre-approved for break-glass", null)]
    public void The_patient_is_read_from_the_declaration(string detail, string? patient) =>
        Assert.Equal(patient, Wardline.Monitoring.Detections.BreakGlass.PatientOf(detail));
}
