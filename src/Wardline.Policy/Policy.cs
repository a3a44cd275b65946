namespace Wardline.Policy;

/// <summary>
/// A compiled access policy: parsed from the institution's YAML file (docs/formats/policy.md), immutable
/// and safe to share between threads. Deny overrides permit; when no rule applies the answer is
/// <c>default-deny</c>; every decision names its rule.
/// </summary>
public sealed class Policy
{
    private Policy(string digest, IReadOnlyList<PolicyRule> rules, IReadOnlyList<PolicyRole> roles)
    {
        Digest = digest;
        Rules = rules;
        Roles = roles;
    }

    /// <summary>Lower-case hex SHA-256 of the policy's source text (UTF-8, no byte-order mark).</summary>
    public string Digest { get; }

    /// <summary>The rules in file order.</summary>
    public IReadOnlyList<PolicyRule> Rules { get; }

    /// <summary>The roles declared in the file, in file order.</summary>
    public IReadOnlyList<PolicyRole> Roles { get; }

    /// <summary>Parses and compiles a policy; <paramref name="fileName"/> names the source in errors.</summary>
    /// <exception cref="PolicyException">The text is not a valid policy.</exception>
    public static Policy Parse(string yaml, string fileName) =>
        throw new PolicyException(fileName, 1, 1, "the policy parser is not written yet");

    /// <summary>Reads, parses and compiles the policy file at <paramref name="path"/>.</summary>
    /// <exception cref="PolicyException">The file is not a valid policy or cannot be read.</exception>
    public static Policy Load(string path) => Parse(File.ReadAllText(path), path);

    /// <summary>Decides one request. Allocation-free.</summary>
    public Decision Decide(Subject subject, PolicyAction action, ResourceFacts resource, in RequestContext context) =>
        new(false, "default-deny", Rules.Count == 0 ? "no rules" : "no rule applies");

    /// <summary>Decides one request and traces every rule for the action.</summary>
    public Explanation Explain(Subject subject, PolicyAction action, ResourceFacts resource, in RequestContext context) =>
        new(Decide(subject, action, resource, context), []);

    /// <summary>
    /// The decision for every resource of <paramref name="kind"/> at once, as a formula over the
    /// resource's facts (for turning into a query filter).
    /// </summary>
    public Residual Partial(Subject subject, PolicyAction action, string kind, in RequestContext context) =>
        Rules.Count == 0 ? Residual.Constant.False : Residual.Constant.False;
}
