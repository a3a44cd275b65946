namespace Wardline.Policy;

/// <summary>One rule as written in the policy file.</summary>
public sealed class PolicyRule
{
    internal PolicyRule(string id, string effect, string description, IReadOnlyList<PolicyAction> actions, string conditions, int line)
    {
        Id = id;
        Effect = effect;
        Description = description;
        Actions = actions;
        Conditions = conditions;
        Line = line;
    }

    public string Id { get; }

    /// <summary><c>permit</c> or <c>forbid</c>.</summary>
    public string Effect { get; }

    public string Description { get; }

    public IReadOnlyList<PolicyAction> Actions { get; }

    /// <summary>A readable text of the rule's conditions, e.g. <c>when role in [nurse] and department own; unless treats PSY</c>.</summary>
    public string Conditions { get; }

    /// <summary>The line of the rule in the policy file.</summary>
    public int Line { get; }
}
