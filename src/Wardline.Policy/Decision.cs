namespace Wardline.Policy;

/// <summary>The outcome of one decision and the rule that made it.</summary>
/// <param name="RuleId">The deciding rule's id, or <c>default-deny</c> when no rule applied.</param>
/// <param name="Reason">The deciding rule's description.</param>
public readonly record struct Decision(bool Permitted, string RuleId, string Reason);
