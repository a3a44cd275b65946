using System.Security.Cryptography;
using System.Text;

namespace Wardline.Policy.Tests;

public sealed class DecisionTests
{
    private static readonly Policy Ward = Policies.Parse("""
          - id: nurse-reads-own-department
            effect: permit
            description: Nurses read records of their departments.
            actions: [read, search]
            when: {role: nurse, department: own}

          - id: psy-needs-treats
            effect: forbid
            description: PSY-labelled records only for those who treat PSY, or in an emergency.
            actions: any
            when: {label: PSY}
            unless:
              - {treats: PSY}
              - {break-glass: true}

          - id: clerk-reads-financial
            effect: permit
            description: Clerks read financial records.
            actions: [read]
            when: {role: clerk, kind: $financial}

          - id: no-updates-from-outside
            effect: forbid
            description: No updates from the external network.
            actions: [update]
            when: {network: external}
        """);

    [Fact]
    public void Nurse_reads_an_observation_of_her_department_and_the_decision_names_the_rule()
    {
        var decision = new Scenario().DecideWith(Ward);

        Assert.Equal(new Decision(true, "nurse-reads-own-department", "Nurses read records of their departments."), decision);
    }

    [Fact]
    public void Nurse_in_cardiology_cannot_read_an_oncology_note()
    {
        var decision = new Scenario { Departments = ["cardiology"], ResourceDepartments = ["oncology"], Kind = "DocumentReference" }.DecideWith(Ward);

        Assert.Equal(new Decision(false, "default-deny", "no rule permits this request"), decision);
    }

    [Fact]
    public void A_forbid_overrides_a_permit_written_before_it()
    {
        var decision = new Scenario { Labels = ["PSY"] }.DecideWith(Ward);

        Assert.Equal(new Decision(false, "psy-needs-treats", "PSY-labelled records only for those who treat PSY, or in an emergency."), decision);
    }

    [Fact]
    public void An_unless_group_that_holds_lifts_the_forbid()
    {
        Assert.True(new Scenario { Labels = ["PSY"], Treats = ["PSY"] }.DecideWith(Ward).Permitted);
        Assert.True(new Scenario { Labels = ["PSY"], Purpose = "ETREAT", BreakGlass = new() { ["P1"] = 1_800_000_100 } }.DecideWith(Ward).Permitted);
        Assert.False(new Scenario { Labels = ["PSY"], Treats = ["HIV"] }.DecideWith(Ward).Permitted);
    }

    [Fact]
    public void An_unless_group_lifts_the_forbid_only_when_all_of_its_conditions_hold()
    {
        var policy = Policies.Parse("""
              - id: all
                effect: permit
                description: everything
                actions: any
              - id: night
                effect: forbid
                description: nights need a tier-1 with MFA
                actions: any
                when: {hour: {not: {from: 7, to: 19}}}
                unless: {tier: 1, mfa: true}
            """);

        Assert.True(new Scenario { Hour = 3, Tier = 1, Mfa = true }.DecideWith(policy).Permitted);
        Assert.Equal("night", new Scenario { Hour = 3, Tier = 1, Mfa = false }.DecideWith(policy).RuleId);
        Assert.Equal("night", new Scenario { Hour = 3, Tier = 2, Mfa = true }.DecideWith(policy).RuleId);
        Assert.Equal("all", new Scenario { Hour = 12, Tier = 2, Mfa = false }.DecideWith(policy).RuleId);
    }

    [Fact]
    public void A_rule_applies_only_to_its_actions_and_any_means_all_six()
    {
        Assert.False(new Scenario { Action = PolicyAction.Update }.DecideWith(Ward).Permitted);
        Assert.Equal("default-deny", new Scenario { Action = PolicyAction.Delete }.DecideWith(Ward).RuleId);
        Assert.Equal("no-updates-from-outside", new Scenario { Action = PolicyAction.Update, Network = "external" }.DecideWith(Ward).RuleId);
        Assert.Equal("nurse-reads-own-department", new Scenario { Action = PolicyAction.Read, Network = "external" }.DecideWith(Ward).RuleId);
        foreach (var action in Enum.GetValues<PolicyAction>())
        {
            Assert.Equal("psy-needs-treats", new Scenario { Action = action, Labels = ["PSY"] }.DecideWith(Ward).RuleId);
        }
    }

    [Fact]
    public void An_action_outside_the_enum_is_denied_by_default()
    {
        Assert.Equal("default-deny", new Scenario { Action = (PolicyAction)42 }.DecideWith(Ward).RuleId);
        Assert.Equal(Residual.Constant.False, new Scenario { Action = (PolicyAction)42 }.PartialWith(Ward));
    }

    [Fact]
    public void Explain_traces_forbids_then_permits_and_names_the_deciding_rule()
    {
        var explanation = new Scenario { Labels = ["PSY"], Treats = ["HIV"] }.ExplainWith(Ward);

        Assert.Equal("psy-needs-treats", explanation.Decision.RuleId);
        Assert.Equal(["psy-needs-treats", "nurse-reads-own-department", "clerk-reads-financial"], explanation.Trace.Select(t => t.RuleId));
        var forbid = explanation.Trace[0];
        Assert.True(forbid.Applied);
        Assert.True(forbid.Decided);
        Assert.Equal("forbid", forbid.Effect);
        Assert.Equal(
            [
                new ConditionTrace("when", "label: PSY", true),
                new ConditionTrace("unless #1", "treats: PSY", false),
                new ConditionTrace("unless #2", "break-glass: true", false),
            ],
            forbid.Conditions);
        var permit = explanation.Trace[1];
        Assert.True(permit.Applied); // it applied too, but the forbid overrides it
        Assert.False(permit.Decided);
        Assert.Contains("psy-needs-treats (forbid) applied, decided: when label: PSY: held", forbid.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void Explain_shows_the_condition_that_failed_and_stops_there()
    {
        var explanation = new Scenario { Roles = ["physician"] }.ExplainWith(Ward);

        Assert.Equal("default-deny", explanation.Decision.RuleId);
        var permit = Assert.Single(explanation.Trace, t => t.RuleId == "nurse-reads-own-department");
        Assert.False(permit.Applied);
        Assert.Equal([new ConditionTrace("when", "role: nurse", false)], permit.Conditions);
        Assert.Equal([new ConditionTrace("when", "label: PSY", false)], explanation.Trace[0].Conditions);
    }

    [Fact]
    public void Explain_and_decide_agree()
    {
        foreach (var scenario in new[] { new Scenario(), new Scenario { Labels = ["PSY"] }, new Scenario { Roles = ["clerk"], Kind = "Claim" }, new Scenario { Roles = [] } })
        {
            Assert.Equal(scenario.DecideWith(Ward), scenario.ExplainWith(Ward).Decision);
        }
    }

    [Fact]
    public void Decide_allocates_nothing()
    {
        var scenario = new Scenario { Labels = ["PSY"], Treats = ["PSY"], CareTeam = ["P1", "P2"] };
        var (subject, resource, context) = (scenario.Subject, scenario.Resource, scenario.Context);
        Ward.Decide(subject, PolicyAction.Read, resource, context);

        var before = GC.GetAllocatedBytesForCurrentThread();
        for (var i = 0; i < 1000; i++) Ward.Decide(subject, PolicyAction.Read, resource, context);
        var allocated = GC.GetAllocatedBytesForCurrentThread() - before;

        Assert.Equal(0, allocated);
    }

    [Fact]
    public void A_policy_is_safe_to_share_between_threads()
    {
        var scenarios = Enumerable.Range(0, 64).Select(i => new Scenario
        {
            Roles = [i % 3 == 0 ? "clerk" : "nurse"],
            Kind = i % 2 == 0 ? "Claim" : "Observation",
            Labels = i % 5 == 0 ? ["PSY"] : [],
            ResourceDepartments = [i % 4 == 0 ? "D2" : "D1"],
        }).Select(s => (s.Subject, s.Resource, s.Context, Expected: s.DecideWith(Ward))).ToList();

        Parallel.For(0, 20_000, i =>
        {
            var (subject, resource, context, expected) = scenarios[i % scenarios.Count];
            Assert.Equal(expected, Ward.Decide(subject, PolicyAction.Read, resource, context));
        });
    }

    [Fact]
    public void The_digest_is_the_sha256_of_the_source_text()
    {
        var text = Policies.Head + """
              - id: a
                effect: permit
                description: d
                actions: any
            """;

        var policy = Policy.Parse(text, "p.yaml");

        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(text))), policy.Digest);
        Assert.NotEqual(policy.Digest, Policy.Parse(text + "\n# a comment\n", "p.yaml").Digest);
    }

    [Fact]
    public void Rules_and_roles_are_listed_as_written()
    {
        Assert.Equal(["nurse-reads-own-department", "psy-needs-treats", "clerk-reads-financial", "no-updates-from-outside"], Ward.Rules.Select(r => r.Id));
        var psy = Ward.Rules[1];
        Assert.Equal("forbid", psy.Effect);
        Assert.Equal(Enum.GetValues<PolicyAction>(), psy.Actions);
        Assert.Equal("when {label: PSY}; unless {treats: PSY}; unless {break-glass: true}", psy.Conditions);
        Assert.Equal([PolicyAction.Read, PolicyAction.Search], Ward.Rules[0].Actions);
        Assert.Equal("when {role: nurse, department: own}", Ward.Rules[0].Conditions);

        Assert.Equal(["nurse", "physician", "clerk"], Ward.Roles.Select(r => r.Name));
        Assert.Equal(("Billing clerk", false, ""), (Ward.Roles[2].Title, Ward.Roles[2].Clinical, Ward.Roles[2].Description));
        Assert.Equal(("Nurse", true, "Nurses"), (Ward.Roles[0].Title, Ward.Roles[0].Clinical, Ward.Roles[0].Description));
    }

    [Fact]
    public void A_subject_with_many_roles_is_decided_like_one_with_few()
    {
        var roles = Enumerable.Range(0, 20).Select(i => $"role{i}").Append("nurse").ToList();

        Assert.Equal("nurse-reads-own-department", new Scenario { Roles = roles }.DecideWith(Ward).RuleId);
    }
}
