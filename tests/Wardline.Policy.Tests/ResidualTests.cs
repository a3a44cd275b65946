using System.Text;

namespace Wardline.Policy.Tests;

/// <summary>
/// The partial evaluator's contract, property-tested over random policies, subjects, contexts and
/// resources: for every resource of the kind, <c>Partial(...).Evaluate(...) == Decide(...).Permitted</c>.
/// </summary>
public sealed class ResidualTests
{
    private static readonly string[] Roles = ["nurse", "physician", "clerk"];
    private static readonly string[] Kinds = ["Observation", "Patient", "Claim"];
    private static readonly string[] Departments = ["D1", "D2", "D3"];
    private static readonly string[] Patients = ["P1", "P2", "P3"];
    private static readonly string[] Labels = ["PSY", "HIV", "R"];
    private static readonly string[] Purposes = ["TREAT", "ETREAT", "HRESCH"];
    private static readonly string[] Statuses = ["final", "amended", "preliminary"];
    private const long Now = 1_800_000_000;

    [Fact]
    public void Partial_then_evaluate_equals_decide_for_random_policies_and_requests()
    {
        var random = new Random(20261129);
        var checkedResources = 0;
        var nonConstant = 0;
        for (var p = 0; p < 300; p++)
        {
            var yaml = RandomPolicy(random);
            var policy = Policy.Parse(yaml, $"random-{p}.yaml");
            for (var q = 0; q < 25; q++)
            {
                var subject = RandomSubject(random);
                var context = RandomContext(random);
                var action = Pick(random, Enum.GetValues<PolicyAction>());
                var kind = Pick(random, Kinds);
                var residual = policy.Partial(subject, action, kind, context);
                AssertSimplified(residual, top: true);
                if (residual is not Residual.Constant) nonConstant++;
                for (var r = 0; r < 25; r++)
                {
                    var resource = RandomResource(random, kind);
                    var decision = policy.Decide(subject, action, resource, context);
                    var evaluated = residual.Evaluate(subject, resource, context);
                    checkedResources++;
                    Assert.True(decision.Permitted == evaluated,
                        $"policy {p}, decided {decision.Permitted} by {decision.RuleId}, residual {residual} gave {evaluated}\n{yaml}");
                    Assert.Equal(decision, policy.Explain(subject, action, resource, context).Decision);
                }
            }
        }
        Assert.Equal(300 * 25 * 25, checkedResources);
        Assert.True(nonConstant > 1000, $"only {nonConstant} residuals had atoms; the generator is too weak");
    }

    [Fact]
    public void A_nurse_searching_observations_gets_her_departments_minus_the_psy_labelled_ones()
    {
        var policy = Policies.Parse("""
              - id: nurse-own
                effect: permit
                description: nurses read their departments
                actions: [read, search]
                when: {role: nurse, department: own}
              - id: psy
                effect: forbid
                description: PSY needs treats or break-glass
                actions: any
                when: {label: PSY}
                unless: [{treats: PSY}, {break-glass: true}]
              - id: clerk
                effect: permit
                description: clerks
                actions: [read]
                when: {role: clerk}
            """);
        var scenario = new Scenario { Action = PolicyAction.Search, Departments = ["D1", "D2"] };

        var residual = scenario.PartialWith(policy);

        Assert.Equal("(not HasLabel[PSY] and InSubjectDepartment[D1, D2])", residual.ToString());
        var and = Assert.IsType<Residual.And>(residual);
        var department = Assert.IsType<Residual.Atom>(and.Operands[1]);
        Assert.Equal(AtomKind.InSubjectDepartment, department.Kind);
        Assert.Equal(["D1", "D2"], department.Values);
    }

    [Fact]
    public void Subject_and_context_conditions_fold_to_constants()
    {
        var policy = Policies.Parse("""
              - id: tier1
                effect: permit
                description: tier 1 reads all
                actions: [read, search]
                when: {tier: 1}
              - id: outside
                effect: forbid
                description: not from outside
                actions: any
                when: {network: external}
            """);

        Assert.Same(Residual.Constant.True, new Scenario { Tier = 1 }.PartialWith(policy));
        Assert.Same(Residual.Constant.False, new Scenario { Tier = 2 }.PartialWith(policy));
        Assert.Same(Residual.Constant.False, new Scenario { Tier = 1, Network = "external" }.PartialWith(policy));
        Assert.Same(Residual.Constant.False, new Scenario { Tier = 1, Action = PolicyAction.Update }.PartialWith(policy));
    }

    [Fact]
    public void Break_glass_becomes_the_patients_with_a_live_grant_and_only_for_purpose_etreat()
    {
        var policy = Policies.PermitWhen("break-glass: true");
        var grants = new Dictionary<string, long> { ["P9"] = Now + 60, ["P1"] = Now + 5, ["P2"] = Now };

        var residual = new Scenario { Purpose = "ETREAT", BreakGlass = grants }.PartialWith(policy);

        var atom = Assert.IsType<Residual.Atom>(residual);
        Assert.Equal(AtomKind.BreakGlass, atom.Kind);
        Assert.Equal(["P1", "P9"], atom.Values);
        Assert.Same(Residual.Constant.False, new Scenario { Purpose = "TREAT", BreakGlass = grants }.PartialWith(policy));
    }

    [Fact]
    public void Care_team_and_own_record_atoms_carry_the_subjects_values()
    {
        var careTeam = Assert.IsType<Residual.Atom>(new Scenario { CareTeam = ["P2", "P1"] }.PartialWith(Policies.PermitWhen("care-team: true")));
        Assert.Equal(AtomKind.OnCareTeam, careTeam.Kind);
        Assert.Equal(["P1", "P2"], careTeam.Values);
        Assert.Same(Residual.Constant.False, new Scenario { CareTeam = [] }.PartialWith(Policies.PermitWhen("care-team: true")));

        var own = Assert.IsType<Residual.Not>(new Scenario { UserId = "u7" }.PartialWith(Policies.PermitWhen("own-record: false")));
        var atom = Assert.IsType<Residual.Atom>(own.Operand);
        Assert.Equal(AtomKind.OwnRecord, atom.Kind);
        Assert.Equal(["u7"], atom.Values);
    }

    [Fact]
    public void Status_labels_and_patient_facts_become_atoms()
    {
        var residual = new Scenario().PartialWith(Policies.PermitWhen("status: [final, amended], label: [PSY, HIV], patient-restricted: false, research-consent: true, has-patient: true"));

        Assert.Equal("(HasLabel[PSY, HIV] and StatusIn[final, amended] and not PatientRestricted and ResearchConsent and HasPatient)", residual.ToString());
    }

    [Fact]
    public void The_same_atom_twice_in_one_formula_is_kept_once()
    {
        var policy = Policies.Parse("""
              - id: a
                effect: permit
                description: a
                actions: [read]
                when: {department: own, kind: Observation}
              - id: b
                effect: permit
                description: b
                actions: [read]
                when: {department: own, role: nurse}
            """);

        Assert.Equal("InSubjectDepartment[D1]", new Scenario().PartialWith(policy).ToString());
    }

    /// <summary>No And/Or holds a constant, a single operand or a directly nested And/Or of its own kind; a constant is only ever the whole formula.</summary>
    private static void AssertSimplified(Residual residual, bool top)
    {
        switch (residual)
        {
            case Residual.Constant:
                Assert.True(top, "a constant inside a formula");
                break;
            case Residual.And and:
                Assert.True(and.Operands.Count >= 2);
                Assert.DoesNotContain(and.Operands, o => o is Residual.And);
                foreach (var o in and.Operands) AssertSimplified(o, top: false);
                break;
            case Residual.Or or:
                Assert.True(or.Operands.Count >= 2);
                Assert.DoesNotContain(or.Operands, o => o is Residual.Or);
                foreach (var o in or.Operands) AssertSimplified(o, top: false);
                break;
            case Residual.Not not:
                Assert.IsNotType<Residual.Not>(not.Operand);
                AssertSimplified(not.Operand, top: false);
                break;
            case Residual.Atom:
                break;
            default:
                Assert.Fail($"unknown residual {residual.GetType()}");
                break;
        }
    }

    private static string RandomPolicy(Random random)
    {
        var yaml = new StringBuilder(Policies.Head);
        var rules = random.Next(1, 9);
        for (var i = 0; i < rules; i++)
        {
            yaml.Append($"  - id: r{i}\n    effect: {(random.Next(3) == 0 ? "forbid" : "permit")}\n    description: rule {i}\n");
            yaml.Append(random.Next(3) == 0
                ? "    actions: any\n"
                : $"    actions: [{string.Join(", ", Subset(random, ["read", "search", "update", "export"], atLeastOne: true))}]\n");
            var when = RandomConditions(random, random.Next(0, 4));
            if (when.Length > 0) yaml.Append($"    when: {{{when}}}\n");
            var groups = random.Next(3) == 0 ? random.Next(1, 3) : 0;
            if (groups > 0)
            {
                yaml.Append("    unless: [").AppendJoin(", ", Enumerable.Range(0, groups).Select(_ => "{" + RandomConditions(random, random.Next(1, 3)) + "}")).Append("]\n");
            }
        }
        return yaml.ToString();
    }

    private static string RandomConditions(Random random, int count)
    {
        string[] keys = [.. PolicyParser.ConditionKeys];
        random.Shuffle(keys);
        return string.Join(", ", keys.Take(count).Select(key => key + ": " + RandomValue(random, key)));
    }

    private static string RandomValue(Random random, string key)
    {
        var not = random.Next(4) == 0;
        string List(string[] values) => "[" + string.Join(", ", Subset(random, values, atLeastOne: true)) + "]";
        string Maybe(string value) => not ? "{not: " + value + "}" : value;
        var from = random.Next(24);
        return key switch
        {
            "role" => Maybe(List(Roles)),
            "kind" => Maybe(random.Next(3) == 0 ? "$financial" : List(Kinds)),
            "purpose" => Maybe(List(Purposes)),
            "status" => Maybe(List(Statuses)),
            "label" or "treats" => Maybe(List(Labels)),
            "network" => Maybe(List(["internal", "external"])),
            "tier" => random.Next(3) switch { 0 => $"{random.Next(1, 4)}", 1 => $"{{min: {random.Next(1, 4)}}}", _ => $"[{random.Next(1, 4)}, {random.Next(1, 4)}]" },
            "department" => Pick(random, ["own", "not-own"]),
            "account" => Pick(random, ["active", "inactive"]),
            "shift" => Pick(random, ["inside", "outside"]),
            "hour" => (not ? "{not: " : "") + $"{{from: {from}, to: {(from + random.Next(1, 23)) % 24}}}" + (not ? "}" : ""),
            "weekday" => List(["1", "2", "3", "4", "5", "6", "7"]),
            _ => Pick(random, ["true", "false"]),
        };
    }

    private static Subject RandomSubject(Random random)
    {
        var grants = new Dictionary<string, long>(StringComparer.Ordinal);
        foreach (var patient in Subset(random, Patients, atLeastOne: false)) grants[patient] = Now + random.Next(-2, 3) * 60;
        return new Subject(
            Pick(random, ["u1", "u2"]),
            [.. Subset(random, [.. Roles, "janitor"], atLeastOne: false)],
            random.Next(1, 4),
            [.. Subset(random, Departments, atLeastOne: false)],
            [.. Subset(random, [.. Labels, "SDV"], atLeastOne: false)],
            random.Next(5) != 0,
            Pick(random, [Now - 1, Now, Now + 1, long.MaxValue]),
            random.Next(3) == 0 ? null : new ShiftWindow(random.Next(24), random.Next(24)),
            Subset(random, Patients, atLeastOne: false).ToHashSet(StringComparer.Ordinal),
            grants);
    }

    private static RequestContext RandomContext(Random random) =>
        new(Pick(random, [.. Purposes, "HPAYMT"]), Now, random.Next(24), random.Next(1, 8), random.Next(2) == 0, Pick(random, ["internal", "external", "other"]));

    private static ResourceFacts RandomResource(Random random, string kind) =>
        new(kind, "r", [.. Subset(random, Departments, atLeastOne: false)], [.. Subset(random, [.. Labels, "XYZ"], atLeastOne: false)],
            random.Next(4) == 0 ? null : Pick(random, [.. Statuses, "cancelled"]),
            random.Next(5) == 0 ? null : new PatientFacts(Pick(random, Patients), random.Next(2) == 0, random.Next(2) == 0, Pick(random, [null, "u1", "u2"])));

    private static T Pick<T>(Random random, T[] values) => values[random.Next(values.Length)];

    private static List<string> Subset(Random random, string[] values, bool atLeastOne)
    {
        var subset = values.Where(_ => random.Next(2) == 0).ToList();
        if (atLeastOne && subset.Count == 0) subset.Add(Pick(random, values));
        return subset;
    }
}
