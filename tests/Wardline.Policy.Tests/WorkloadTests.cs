namespace Wardline.Policy.Tests;

/// <summary>The 51 workload rules in Wardline's format decide all 100,000 requests as Cedar did.</summary>
public sealed class WorkloadTests
{
    private static readonly Workload Data = Workload.Instance;

    [Fact]
    public void The_workload_policy_has_the_51_cedar_rules_with_their_ids()
    {
        Assert.Equal(51, Data.Policy.Rules.Count);
        Assert.Equal(25, Data.Policy.Rules.Count(r => r.Effect == "permit"));
        Assert.Equal(26, Data.Policy.Rules.Count(r => r.Effect == "forbid"));
        Assert.Equal(
            [.. Enumerable.Range(1, 25).Select(i => $"P{i:00}"), .. Enumerable.Range(1, 26).Select(i => $"F{i:00}")],
            Data.Policy.Rules.Select(r => r.Id));
        Assert.Equal(13, Data.Policy.Roles.Count);
    }

    [Fact]
    public void Every_one_of_the_100000_decisions_agrees_with_cedar()
    {
        Assert.Equal(100_000, Data.Requests.Count);
        var mismatches = new List<string>();
        var count = 0;
        foreach (var request in Data.Requests)
        {
            var decision = Data.Policy.Decide(request.Subject, request.Action, request.Resource, request.Context);
            if (decision.Permitted != request.Expected)
            {
                if (++count <= 20)
                {
                    mismatches.Add($"request {request.Index}: {request.UserId} {request.Action} {request.Resource.Id} ({request.Resource.Kind}) -> {(decision.Permitted ? "allow" : "deny")} by {decision.RuleId}, Cedar said {(request.Expected ? "allow" : "deny")}");
                }
            }
        }
        Assert.True(count == 0, $"{count} of {Data.Requests.Count} decisions differ from Cedar's:\n{string.Join("\n", mismatches)}");
    }

    [Fact]
    public void Every_workload_rule_but_one_decides_some_request()
    {
        var deciding = Data.Requests
            .Select(r => Data.Policy.Decide(r.Subject, r.Action, r.Resource, r.Context).RuleId)
            .ToHashSet();

        Assert.Contains("default-deny", deciding);
        var silent = Data.Policy.Rules.Select(r => r.Id).Where(id => !deciding.Contains(id)).ToList();
        // F16 (own record) applies to one request only, which an earlier forbid already denies.
        Assert.Equal(["F16"], silent);
        var own = Assert.Single(Data.Requests, r => r.Resource.Patient?.StaffUserId == r.UserId);
        var explanation = Data.Policy.Explain(own.Subject, own.Action, own.Resource, own.Context);
        Assert.False(explanation.Decision.Permitted);
        Assert.Contains(explanation.Trace, t => t.RuleId == "F16" && t.Applied && !t.Decided);
    }

    [Fact]
    public void Partial_evaluation_agrees_with_decide_on_every_read_and_search_request()
    {
        var mismatches = new List<string>();
        var count = 0;
        var checkedCount = 0;
        foreach (var request in Data.Requests.Where(r => r.Action is PolicyAction.Read or PolicyAction.Search))
        {
            checkedCount++;
            var decision = Data.Policy.Decide(request.Subject, request.Action, request.Resource, request.Context);
            var residual = Data.Policy.Partial(request.Subject, request.Action, request.Resource.Kind, request.Context);
            if (residual.Evaluate(request.Subject, request.Resource, request.Context) != decision.Permitted && ++count <= 20)
            {
                mismatches.Add($"request {request.Index}: decided {decision.Permitted} by {decision.RuleId}; residual {residual}");
            }
        }
        Assert.Equal(89_968, checkedCount);
        Assert.True(count == 0, $"{count} residuals differ from Decide:\n{string.Join("\n", mismatches)}");
    }
}
