namespace Wardline.Policy.Tests;

/// <summary>
/// Every condition of the format, each shown holding and failing: the only rule permits when it holds,
/// so the decision is the condition's value. Each case also checks the explainer and the partial evaluator.
/// </summary>
public sealed class ConditionTests
{
    private sealed record Case(string Condition, Action<Scenario> Holds, Action<Scenario> Fails);

    private const long Now = 1_800_000_000;

    private static readonly Dictionary<string, Case> Cases = new()
    {
        ["role any of"] = new("role: [nurse, clerk]", s => s.Roles = ["physician", "clerk"], s => s.Roles = ["physician"]),
        ["role not"] = new("role: {not: [nurse]}", s => s.Roles = ["physician"], s => s.Roles = ["physician", "nurse"]),
        ["role with a role the policy does not declare"] = new("role: {not: nurse}", s => s.Roles = ["janitor"], s => s.Roles = ["janitor", "nurse"]),
        ["tier exact"] = new("tier: 1", s => s.Tier = 1, s => s.Tier = 2),
        ["tier list"] = new("tier: [1, 2]", s => s.Tier = 2, s => s.Tier = 3),
        ["tier min"] = new("tier: {min: 2}", s => s.Tier = 2, s => s.Tier = 1),
        ["tier max"] = new("tier: {max: 1}", s => s.Tier = 1, s => s.Tier = 2),
        ["tier range"] = new("tier: {min: 2, max: 3}", s => s.Tier = 3, s => s.Tier = 4),
        ["kind list"] = new("kind: [Observation, Condition]", s => s.Kind = "Condition", s => s.Kind = "Patient"),
        ["kind set"] = new("kind: $financial", s => s.Kind = "Claim", s => s.Kind = "Observation"),
        ["kind not"] = new("kind: {not: $financial}", s => s.Kind = "Patient", s => s.Kind = "Account"),
        ["kind not, for a name that is no FHIR type"] = new("kind: {not: Observation}", s => s.Kind = "Spaceship", s => s.Kind = "Observation"),
        ["kind list mixing a set and names"] = new("kind: [$financial, Patient]", s => s.Kind = "Patient", s => s.Kind = "Encounter"),
        ["department own"] = new("department: own", s => s.ResourceDepartments = ["D9", "D1"], s => s.ResourceDepartments = ["D2"]),
        ["department own of a resource in no department"] = new("department: own", s => s.Departments = ["D1", "D2"], s => s.ResourceDepartments = []),
        ["department not-own"] = new("department: not-own", s => s.ResourceDepartments = ["D2"], s => s.ResourceDepartments = ["D1"]),
        ["care-team true"] = new("care-team: true", s => s.CareTeam = ["P1"], s => s.CareTeam = ["P2"]),
        ["care-team true without a patient"] = new("care-team: true", s => s.CareTeam = ["P1"], s => s.HasPatient = false),
        ["care-team false"] = new("care-team: false", s => s.CareTeam = [], s => s.CareTeam = ["P1"]),
        ["label one"] = new("label: PSY", s => s.Labels = ["R", "PSY"], s => s.Labels = ["R"]),
        ["label any of"] = new("label: [PSY, HIV]", s => s.Labels = ["HIV"], s => s.Labels = ["ETH"]),
        ["label set"] = new("label: $sensitive", s => s.Labels = ["PSY"], s => s.Labels = ["XYZ"]),
        ["treats"] = new("treats: PSY", s => s.Treats = ["HIV", "PSY"], s => s.Treats = ["HIV"]),
        ["break-glass true"] = new("break-glass: true",
            s => { s.Purpose = "ETREAT"; s.BreakGlass = new() { ["P1"] = Now + 60 }; },
            s => { s.Purpose = "ETREAT"; s.BreakGlass = new() { ["P1"] = Now }; }),
        ["break-glass needs purpose ETREAT"] = new("break-glass: true",
            s => { s.Purpose = "ETREAT"; s.BreakGlass = new() { ["P1"] = Now + 60 }; },
            s => { s.Purpose = "TREAT"; s.BreakGlass = new() { ["P1"] = Now + 60 }; }),
        ["break-glass is for one patient"] = new("break-glass: true",
            s => { s.Purpose = "ETREAT"; s.BreakGlass = new() { ["P1"] = Now + 60 }; },
            s => { s.Purpose = "ETREAT"; s.BreakGlass = new() { ["P2"] = Now + 60 }; }),
        ["break-glass false"] = new("break-glass: false", s => s.Purpose = "ETREAT", s => { s.Purpose = "ETREAT"; s.BreakGlass = new() { ["P1"] = Now + 1 }; }),
        ["purpose"] = new("purpose: [TREAT, ETREAT]", s => s.Purpose = "ETREAT", s => s.Purpose = "HPAYMT"),
        ["purpose not"] = new("purpose: {not: HRESCH}", s => s.Purpose = "TREAT", s => s.Purpose = "HRESCH"),
        ["mfa true"] = new("mfa: true", s => s.Mfa = true, s => s.Mfa = false),
        ["mfa false"] = new("mfa: false", s => s.Mfa = false, s => s.Mfa = true),
        ["network"] = new("network: external", s => s.Network = "external", s => s.Network = "internal"),
        ["network list"] = new("network: [internal]", s => s.Network = "internal", s => s.Network = "vpn"),
        ["account active"] = new("account: active", s => s.Active = true, s => s.Active = false),
        ["account inactive"] = new("account: inactive", s => s.Active = false, s => s.Active = true),
        ["account-expired true"] = new("account-expired: true", s => s.AccountExpires = Now, s => s.AccountExpires = Now + 1),
        ["account-expired false"] = new("account-expired: false", s => s.AccountExpires = long.MaxValue, s => s.AccountExpires = Now - 1),
        ["patient-restricted true"] = new("patient-restricted: true", s => s.Restricted = true, s => s.Restricted = false),
        ["patient-restricted false"] = new("patient-restricted: false", s => s.HasPatient = false, s => s.Restricted = true),
        ["research-consent true"] = new("research-consent: true", s => s.ResearchConsent = true, s => s.ResearchConsent = false),
        ["research-consent false"] = new("research-consent: false", s => s.ResearchConsent = false, s => s.ResearchConsent = true),
        ["own-record true"] = new("own-record: true", s => s.StaffUserId = "u1", s => s.StaffUserId = "u2"),
        ["own-record false"] = new("own-record: false", s => s.StaffUserId = null, s => s.StaffUserId = "u1"),
        ["has-patient true"] = new("has-patient: true", s => s.HasPatient = true, s => s.HasPatient = false),
        ["has-patient false"] = new("has-patient: false", s => s.HasPatient = false, s => s.HasPatient = true),
        ["hour window includes from"] = new("hour: {from: 7, to: 19}", s => s.Hour = 7, s => s.Hour = 6),
        ["hour window excludes to"] = new("hour: {from: 7, to: 19}", s => s.Hour = 18, s => s.Hour = 19),
        ["hour window wrapping midnight"] = new("hour: {from: 22, to: 6}", s => s.Hour = 23, s => s.Hour = 6),
        ["hour not"] = new("hour: {not: {from: 7, to: 19}}", s => s.Hour = 3, s => s.Hour = 12),
        ["weekday"] = new("weekday: [6, 7]", s => s.Weekday = 7, s => s.Weekday = 5),
        ["shift inside"] = new("shift: inside", s => s.Shift = new ShiftWindow(8, 17), s => { s.Shift = new ShiftWindow(8, 17); s.Hour = 17; }),
        ["shift inside without a shift"] = new("shift: inside", s => s.Shift = null, s => s.Shift = new ShiftWindow(12, 20)),
        ["shift inside a night shift"] = new("shift: inside", s => { s.Shift = new ShiftWindow(22, 6); s.Hour = 2; }, s => { s.Shift = new ShiftWindow(22, 6); s.Hour = 6; }),
        ["shift outside"] = new("shift: outside", s => s.Shift = new ShiftWindow(12, 20), s => s.Shift = new ShiftWindow(8, 17)),
        ["status"] = new("status: [final, amended]", s => s.Status = "amended", s => s.Status = "preliminary"),
        ["status of a resource without one"] = new("status: [final]", s => s.Status = "final", s => s.Status = null),
    };

    public static TheoryData<string> CaseNames => [.. Cases.Keys];

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void A_condition_permits_when_it_holds(string name)
    {
        var policy = Policies.PermitWhen(Cases[name].Condition);
        var scenario = new Scenario();
        Cases[name].Holds(scenario);

        var decision = scenario.DecideWith(policy);

        Assert.Equal(new Decision(true, "only", "the rule under test"), decision);
        Assert.True(scenario.PartialWith(policy).Evaluate(scenario.Subject, scenario.Resource, scenario.Context));
        var trace = Assert.Single(scenario.ExplainWith(policy).Trace);
        Assert.Equal([new ConditionTrace("when", Cases[name].Condition, true)], trace.Conditions);
    }

    [Theory]
    [MemberData(nameof(CaseNames))]
    public void A_condition_that_fails_leaves_the_request_to_default_deny(string name)
    {
        var policy = Policies.PermitWhen(Cases[name].Condition);
        var scenario = new Scenario();
        Cases[name].Fails(scenario);

        var decision = scenario.DecideWith(policy);

        Assert.Equal("default-deny", decision.RuleId);
        Assert.False(decision.Permitted);
        Assert.False(scenario.PartialWith(policy).Evaluate(scenario.Subject, scenario.Resource, scenario.Context));
        var trace = Assert.Single(scenario.ExplainWith(policy).Trace);
        Assert.False(trace.Applied);
        Assert.Equal([new ConditionTrace("when", Cases[name].Condition, false)], trace.Conditions);
    }

    [Fact]
    public void Every_condition_key_of_the_format_has_a_case()
    {
        var covered = Cases.Values.Select(c => c.Condition.Split(':')[0]).ToHashSet();

        Assert.Equal(PolicyParser.ConditionKeys.Order(), covered.Order());
    }

    [Fact]
    public void All_conditions_of_a_when_must_hold()
    {
        var policy = Policies.PermitWhen("role: nurse, department: own, kind: Observation");

        Assert.True(new Scenario().DecideWith(policy).Permitted);
        Assert.False(new Scenario { Roles = ["physician"] }.DecideWith(policy).Permitted);
        Assert.False(new Scenario { ResourceDepartments = ["D2"] }.DecideWith(policy).Permitted);
        Assert.False(new Scenario { Kind = "Patient" }.DecideWith(policy).Permitted);
    }

    [Fact]
    public void A_rule_without_when_applies_to_every_request_for_its_actions()
    {
        var policy = Policies.Parse("""
              - id: open
                effect: permit
                description: anything goes
                actions: [search]
            """);

        Assert.True(new Scenario { Action = PolicyAction.Search, Roles = [], Kind = "Claim", HasPatient = false }.DecideWith(policy).Permitted);
        Assert.Equal("default-deny", new Scenario { Action = PolicyAction.Read }.DecideWith(policy).RuleId);
    }
}
