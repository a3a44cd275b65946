namespace Wardline.Monitoring.Tests.Detections;

public sealed class PrivilegedGrantTests
{
    private static MonitorEvent Created(Kit kit, string user, string describe, string actor = "alice", DateTimeOffset? at = null) =>
        kit.Security("AccountCreated", user, at ?? Kit.Start, detail: describe + " password=none", actor: actor);

    private static MonitorEvent Changed(Kit kit, string user, string fields, string describe, string actor = "alice", DateTimeOffset? at = null) =>
        kit.Security("AccountChanged", user, at ?? Kit.Start.AddMinutes(5), detail: $"changed {fields}; now {describe}", actor: actor);

    private static List<Finding> Grants(List<Finding> findings) => [.. findings.Where(f => f.Detection == "privileged-grant")];

    [Fact]
    public void Creating_a_tier_1_physician_is_found_with_who_gave_what_to_whom()
    {
        var kit = new Kit();
        var e = Created(kit, "dr.new", "roles=physician tier=1 departments=cardiology treats=PSY break-glass=no");
        var f = Assert.Single(Grants(kit.Run(e)));
        Assert.Equal("dr.new", f.User);
        Assert.Null(f.Patient);
        Assert.Null(f.GroupKey);
        Assert.Equal(Severity.High, f.Severity);
        Assert.Equal([e.Index], f.Entries);
        Assert.Equal("alice gave account dr.new tier 1 (full access) with the clinical role physician", f.Evidence);
    }

    [Fact]
    public void Creating_an_account_with_break_glass_approval_or_a_powerful_role_is_found()
    {
        var kit = new Kit();
        Assert.Equal("alice gave account nurse.new break-glass approval",
            Assert.Single(Grants(kit.Run(Created(kit, "nurse.new", "roles=nurse tier=2 departments=emergency treats= break-glass=yes")))).Evidence);
        Assert.Equal("root on the command line gave account it.new the administrator role",
            Assert.Single(Grants(kit.Run(Created(kit, "it.new", "roles=administrator tier=2 departments= treats= break-glass=no", actor: "cli:root")))).Evidence);
        Assert.Equal("alice gave account dr.chief tier 1 (full access) with the clinical role physician, break-glass approval and the privacy_officer and security_officer roles",
            Assert.Single(Grants(kit.Run(Created(kit, "dr.chief", "roles=physician,privacy_officer,security_officer tier=1 departments= treats= break-glass=yes")))).Evidence);
    }

    [Fact]
    public void Creating_an_ordinary_account_is_not_found()
    {
        var kit = new Kit();
        Assert.Empty(Grants(kit.Run(
            Created(kit, "nurse.tmp", "roles=nurse tier=3 departments=oncology treats= break-glass=no"),
            Created(kit, "dr.ward", "roles=physician tier=2 departments=oncology treats= break-glass=no"),
            // Tier 1 without a clinical role reads no chart: the billing clerk's tier says nothing of charts.
            Created(kit, "billing.lead", "roles=billing_clerk tier=1 departments=billing treats= break-glass=no"))));
    }

    [Fact]
    public void A_change_adding_break_glass_or_raising_to_tier_1_is_found()
    {
        var kit = new Kit();
        var findings = Grants(kit.Run(
            Created(kit, "nurse.ann", "roles=nurse tier=2 departments=oncology treats= break-glass=no", at: Kit.Start.AddDays(-10)),
            Created(kit, "dr.bob", "roles=physician tier=2 departments=oncology treats= break-glass=no", at: Kit.Start.AddDays(-10)),
            Changed(kit, "nurse.ann", "break-glass", "roles=nurse tier=2 departments=oncology treats= break-glass=yes"),
            Changed(kit, "dr.bob", "tier", "roles=physician tier=1 departments=oncology treats= break-glass=no", actor: "cli:ops")));
        Assert.Equal(["alice gave account nurse.ann break-glass approval", "ops on the command line gave account dr.bob tier 1 (full access) with the clinical role physician"],
            findings.Select(f => f.Evidence));
    }

    [Fact]
    public void A_change_of_display_or_departments_of_a_powerful_account_is_not_found()
    {
        var kit = new Kit();
        const string Powerful = "roles=physician,administrator tier=1 departments=oncology treats=PSY break-glass=yes";
        Assert.Empty(Grants(kit.Run(
            Changed(kit, "dr.chief", "display", Powerful),
            Changed(kit, "dr.chief", "departments,shift", Powerful.Replace("oncology", "cardiology", StringComparison.Ordinal)),
            Changed(kit, "dr.chief", "treats,expires,practitioner", Powerful),
            // Removing break-glass approval, lowering the tier: taking away is not a grant.
            Changed(kit, "dr.chief", "break-glass", "roles=physician,administrator tier=1 departments=cardiology treats= break-glass=no"),
            Changed(kit, "dr.chief", "tier", "roles=physician,administrator tier=2 departments=cardiology treats= break-glass=no"),
            kit.Security("AccountChanged", "dr.chief", Kit.Start.AddMinutes(9), detail: "enabled", actor: "alice"),
            kit.Security("AccountChanged", "dr.chief", Kit.Start.AddMinutes(9), detail: "unlocked (failed sign-in attempts cleared)", actor: "alice"))));
    }

    [Fact]
    public void A_change_of_roles_reports_only_what_it_added_when_the_account_is_known()
    {
        var kit = new Kit();
        var findings = Grants(kit.Run(
            Created(kit, "dr.chief", "roles=physician,administrator tier=1 departments= treats= break-glass=no", at: Kit.Start.AddDays(-3)),
            // Dropping the administrator role, keeping the tier 1 physician: nothing granted.
            Changed(kit, "dr.chief", "roles", "roles=physician tier=1 departments= treats= break-glass=no", at: Kit.Start),
            // Adding nurse to a tier 1 physician: already full access.
            Changed(kit, "dr.chief", "roles", "roles=physician,nurse tier=1 departments= treats= break-glass=no", at: Kit.Start.AddMinutes(1)),
            Changed(kit, "dr.chief", "roles", "roles=physician,nurse,security_officer tier=1 departments= treats= break-glass=no", at: Kit.Start.AddMinutes(2))));
        Assert.Equal(["alice gave account dr.chief tier 1 (full access) with the clinical role physician and the administrator role", "alice gave account dr.chief the security_officer role"],
            findings.Select(f => f.Evidence));
        Assert.Equal(Kit.Ms(Kit.Start.AddMinutes(2)), findings[1].AtMs);
    }

    [Fact]
    public void A_change_of_roles_of_an_account_the_history_never_described_says_what_it_now_includes()
    {
        var kit = new Kit();
        var f = Assert.Single(Grants(kit.Run(
            Changed(kit, "dr.old", "roles", "roles=physician,administrator tier=1 departments= treats= break-glass=no"))));
        Assert.Equal("alice changed the roles of account dr.old, which now include administrator and the clinical role physician at tier 1 (full access)", f.Evidence);
        var g = Assert.Single(Grants(kit.Run(
            Changed(kit, "nurse.old", "roles,break-glass", "roles=nurse,privacy_officer tier=2 departments= treats= break-glass=yes"))));
        Assert.Equal("alice gave account nurse.old break-glass approval and changed its roles, which now include privacy_officer", g.Evidence);
    }

    [Fact]
    public void A_grant_to_ones_own_account_is_critical_and_its_evidence_holds_only_who_what_and_whom()
    {
        var kit = new Kit();
        var findings = Grants(kit.Run(
            Created(kit, "alice", "roles=administrator tier=2 departments=it-services treats=HIV break-glass=no", actor: "bob", at: Kit.Start.AddDays(-30)),
            Changed(kit, "alice", "roles,tier,break-glass,departments", "roles=administrator,physician tier=1 departments=it-services,oncology treats=HIV break-glass=yes")));
        Assert.Equal([Severity.High, Severity.Critical], findings.Select(f => f.Severity));
        var f = findings[1];
        Assert.Equal("alice", f.User);
        Assert.Equal("alice gave their own account tier 1 (full access) with the clinical role physician and break-glass approval", f.Evidence);
        foreach (var other in new[] { "it-services", "oncology", "HIV", "treats", "departments", "administrator", "password" })
            Assert.DoesNotContain(other, f.Evidence, StringComparison.Ordinal);
        // Another account of the same person is another account: the severity is the configured one.
        Assert.Equal(Severity.High, Assert.Single(Grants(kit.Run(Created(kit, "alice.admin", "roles=administrator tier=2 departments= treats= break-glass=no")))).Severity);
    }

    [Fact]
    public void A_self_grant_is_a_step_above_the_configured_severity_and_no_explanation_silences_it()
    {
        var kit = new Kit { ConfigText = "version: 1\ndetections:\n  privileged-grant:\n    severity: medium\n" };
        var findings = Grants(kit.Run(
            Created(kit, "it.ops", "roles=administrator tier=2 departments= treats= break-glass=no"),
            Created(kit, "it.self", "roles=administrator tier=2 departments= treats= break-glass=no", actor: "it.self")));
        Assert.Equal([Severity.Medium, Severity.High], findings.Select(f => f.Severity));
        Assert.False(Catalog.Find("privileged-grant")!.Suppressible);
        var e = Assert.Throws<MonitorConfigException>(() => MonitorConfig.Parse("version: 1\nexplanations:\n  care-team:\n    suppresses: [privileged-grant]\n", "test.yaml"));
        Assert.Contains("privileged-grant cannot be explained away", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_configured_role_lists_decide_what_is_powerful()
    {
        var kit = new Kit
        {
            ConfigText = "version: 1\ndetections:\n  privileged-grant:\n    powerful-roles: [billing_clerk]\n    clinical-roles: [physician]\n",
        };
        var findings = Grants(kit.Run(
            Created(kit, "it.new", "roles=administrator tier=2 departments= treats= break-glass=no"),
            Created(kit, "nurse.lead", "roles=nurse tier=1 departments= treats= break-glass=no"),
            Created(kit, "billing.new", "roles=billing_clerk tier=2 departments= treats= break-glass=no")));
        Assert.Equal("alice gave account billing.new the billing_clerk role", Assert.Single(findings).Evidence);
        var none = new Kit { ConfigText = "version: 1\ndetections:\n  privileged-grant:\n    powerful-roles: []\n" };
        Assert.Empty(Grants(none.Run(Created(none, "it.new", "roles=administrator tier=2 departments= treats= break-glass=no"))));
    }

    [Theory]
    [InlineData("version: 1\ndetections:\n  privileged-grant:\n    powerful-roles: administrator\n", "test.yaml:4:21: detections.privileged-grant.powerful-roles must be a list of names")]
    [InlineData("version: 1\ndetections:\n  privileged-grant:\n    powerful-roles: [Administrator]\n", "test.yaml:4:22: detections.privileged-grant.powerful-roles: 'Administrator' is not a name")]
    [InlineData("version: 1\ndetections:\n  privileged-grant:\n    powerful-role: [administrator]\n", "test.yaml:4:5: 'powerful-role' is not known in detections.privileged-grant; known: enabled, severity, powerful-roles, clinical-roles")]
    public void A_bad_role_list_is_refused_with_its_position(string text, string expected)
    {
        var e = Assert.Throws<MonitorConfigException>(() => MonitorConfig.Parse(text, "test.yaml"));
        Assert.StartsWith(expected, e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Nothing_is_found_while_warming_but_what_the_account_held_is_learned()
    {
        var kit = new Kit();
        var engine = kit.Engine();
        engine.Warm(Created(kit, "dr.chief", "roles=physician,administrator tier=1 departments= treats= break-glass=yes", at: Kit.Start.AddDays(-5)));
        engine.Warm(Created(kit, "it.new", "roles=administrator tier=2 departments= treats= break-glass=no", at: Kit.Start.AddDays(-4)));
        Assert.Equal(0, engine.Context.Reported.GetValueOrDefault("privileged-grant"));
        var findings = new List<Finding>();
        // The warm-up said dr.chief was a tier 1 physician and administrator: adding nurse grants nothing new.
        engine.Examine(Changed(kit, "dr.chief", "roles", "roles=physician,administrator,nurse tier=1 departments= treats= break-glass=yes"), findings);
        Assert.Empty(Grants(findings));
    }

    [Fact]
    public void Odd_account_entries_do_not_throw()
    {
        var kit = new Kit();
        Assert.Empty(Grants(kit.Run(
            kit.Security("AccountCreated", null, Kit.Start, detail: "roles=administrator tier=1 departments= treats= break-glass=yes"),
            kit.Security("AccountCreated", "x", Kit.Start, detail: null),
            kit.Security("AccountCreated", "x", Kit.Start, detail: "roles=administrator tier=high"),
            kit.Security("AccountChanged", "x", Kit.Start, detail: "changed roles"),
            kit.Security("AccountChanged", "x", Kit.Start, detail: "changed ; now "),
            kit.Security("AccountCreated", "y", Kit.Start, outcome: "failed", detail: "roles=administrator tier=2 departments= treats= break-glass=no"))));
        Assert.Equal("someone (no actor recorded) gave account z the administrator role",
            Assert.Single(Grants(kit.Run(kit.Security("AccountCreated", "z", Kit.Start, detail: "roles=administrator tier=2 departments= treats= break-glass=no")))).Evidence);
    }
}
