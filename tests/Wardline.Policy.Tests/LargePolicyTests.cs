using System.Diagnostics;
using System.Text;

namespace Wardline.Policy.Tests;

/// <summary>
/// Large policies compile fast enough to reload, and the precomputed per-role, per-kind rule table
/// decides exactly as the plain rules do (<see cref="Policy.Explain"/> walks the plain rules).
/// </summary>
public sealed class LargePolicyTests
{
    private static readonly string[] Kinds = ["Observation", "Condition", "Patient", "Encounter", "Claim", "Coverage", "AuditEvent", "CarePlan"];

    [Theory]
    [InlineData(12, 60, true)]
    [InlineData(60, 400, true)]
    [InlineData(400, 600, false)]
    public void A_large_policy_compiles_quickly_and_its_table_decides_like_its_rules(int roleCount, int ruleCount, bool rolesSpecialised)
    {
        var random = new Random(roleCount);
        var yaml = LargePolicy(random, roleCount, ruleCount);

        var watch = Stopwatch.StartNew();
        var policy = Policy.Parse(yaml, "large.yaml");
        watch.Stop();

        Assert.True(watch.Elapsed < TimeSpan.FromSeconds(5), $"compiling took {watch.Elapsed}");
        Assert.Equal(rolesSpecialised, policy.Table.SpecialisesRoles);
        for (var i = 0; i < 3000; i++)
        {
            var scenario = new Scenario
            {
                Roles = [.. Enumerable.Range(0, random.Next(0, 3)).Select(_ => $"role{random.Next(roleCount + 2)}")],
                Kind = random.Next(10) == 0 ? "Basic" : Kinds[random.Next(Kinds.Length)],
                ResourceDepartments = [$"D{random.Next(3)}"],
                Labels = random.Next(4) == 0 ? ["PSY"] : [],
                Tier = random.Next(1, 4),
                Action = (PolicyAction)random.Next(6),
            };
            Assert.Equal(scenario.ExplainWith(policy).Decision, scenario.DecideWith(policy));
        }
    }

    private static string LargePolicy(Random random, int roleCount, int ruleCount)
    {
        var yaml = new StringBuilder("version: 1\nroles:\n");
        for (var r = 0; r < roleCount; r++) yaml.Append($"  role{r}: {{title: Role {r}}}\n");
        yaml.Append("rules:\n");
        for (var i = 0; i < ruleCount; i++)
        {
            var roles = string.Join(", ", Enumerable.Range(0, random.Next(1, 4)).Select(_ => $"role{random.Next(roleCount)}").Distinct());
            var kinds = string.Join(", ", Kinds.Where(_ => random.Next(3) == 0).DefaultIfEmpty("Patient"));
            var forbid = random.Next(4) == 0;
            var when = random.Next(4) switch
            {
                0 => $"role: [{roles}], kind: [{kinds}]",
                1 => $"role: {{not: [{roles}]}}, label: PSY",
                2 => $"kind: {{not: [{kinds}]}}, department: own",
                _ => $"role: [{roles}], tier: {{max: 2}}",
            };
            var unless = random.Next(3) == 0 ? $"\n    unless: [{{role: [{roles}]}}, {{kind: [{kinds}], tier: 1}}]" : "";
            yaml.Append($"  - id: rule{i}\n    effect: {(forbid ? "forbid" : "permit")}\n    description: rule {i}\n    actions: {(random.Next(2) == 0 ? "any" : "[read, search]")}\n    when: {{{when}}}{unless}\n");
        }
        return yaml.ToString();
    }
}
