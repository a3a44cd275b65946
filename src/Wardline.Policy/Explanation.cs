namespace Wardline.Policy;

/// <summary>A decision with the trace of every rule for the action, in evaluation order (forbids, then permits).</summary>
public sealed class Explanation
{
    internal Explanation(Decision decision, IReadOnlyList<RuleTrace> trace)
    {
        Decision = decision;
        Trace = trace;
    }

    public Decision Decision { get; }

    public IReadOnlyList<RuleTrace> Trace { get; }
}

/// <summary>How one rule fared.</summary>
public sealed class RuleTrace
{
    internal RuleTrace(string ruleId, string effect, bool applied, bool decided, IReadOnlyList<ConditionTrace> conditions)
    {
        RuleId = ruleId;
        Effect = effect;
        Applied = applied;
        Decided = decided;
        Conditions = conditions;
    }

    public string RuleId { get; }

    /// <summary><c>permit</c> or <c>forbid</c>.</summary>
    public string Effect { get; }

    /// <summary>Every <c>when</c> condition held and no <c>unless</c> group held.</summary>
    public bool Applied { get; }

    /// <summary>This rule made the decision.</summary>
    public bool Decided { get; }

    /// <summary>The conditions evaluated, in order, with whether each held.</summary>
    public IReadOnlyList<ConditionTrace> Conditions { get; }

    /// <inheritdoc/>
    public override string ToString() =>
        $"{RuleId} ({Effect}) {(Applied ? "applied" : "did not apply")}{(Decided ? ", decided" : "")}: {string.Join("; ", Conditions)}";
}

/// <summary>One condition of a rule and whether it held.</summary>
/// <param name="Clause"><c>when</c>, or <c>unless</c> / <c>unless[i]</c> for the i-th unless group.</param>
/// <param name="Condition">The condition as text, e.g. <c>role in [nurse]</c>.</param>
public sealed record ConditionTrace(string Clause, string Condition, bool Held)
{
    /// <inheritdoc/>
    public override string ToString() => $"{Clause} {Condition}: {(Held ? "held" : "failed")}";
}
