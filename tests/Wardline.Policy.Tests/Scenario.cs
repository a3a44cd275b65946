namespace Wardline.Policy.Tests;

/// <summary>
/// A request to decide, with ordinary defaults (a tier-2 nurse in D1 on P1's care team reading a final
/// Observation of P1 in D1, for treatment, on a Wednesday morning, inside, with MFA) that a test changes.
/// </summary>
internal sealed class Scenario
{
    public string UserId { get; set; } = "u1";
    public List<string> Roles { get; set; } = ["nurse"];
    public int Tier { get; set; } = 2;
    public List<string> Departments { get; set; } = ["D1"];
    public List<string> Treats { get; set; } = [];
    public bool Active { get; set; } = true;
    public long AccountExpires { get; set; } = long.MaxValue;
    public ShiftWindow? Shift { get; set; }
    public HashSet<string> CareTeam { get; set; } = ["P1"];
    public Dictionary<string, long> BreakGlass { get; set; } = [];

    public string Kind { get; set; } = "Observation";
    public List<string> ResourceDepartments { get; set; } = ["D1"];
    public List<string> Labels { get; set; } = [];
    public string? Status { get; set; } = "final";
    public bool HasPatient { get; set; } = true;
    public string PatientId { get; set; } = "P1";
    public bool Restricted { get; set; }
    public bool ResearchConsent { get; set; }
    public string? StaffUserId { get; set; }

    public PolicyAction Action { get; set; } = PolicyAction.Read;
    public string Purpose { get; set; } = "TREAT";
    public long Now { get; set; } = 1_800_000_000;
    public int Hour { get; set; } = 10;
    public int Weekday { get; set; } = 3;
    public bool Mfa { get; set; } = true;
    public string Network { get; set; } = "internal";

    public Subject Subject => new(UserId, Roles, Tier, Departments, Treats, Active, AccountExpires, Shift, CareTeam, BreakGlass);

    public ResourceFacts Resource => new(Kind, "r1", ResourceDepartments, Labels, Status,
        HasPatient ? new PatientFacts(PatientId, Restricted, ResearchConsent, StaffUserId) : null);

    public RequestContext Context => new(Purpose, Now, Hour, Weekday, Mfa, Network);

    public Decision DecideWith(Policy policy) => policy.Decide(Subject, Action, Resource, Context);

    public Explanation ExplainWith(Policy policy) => policy.Explain(Subject, Action, Resource, Context);

    public Residual PartialWith(Policy policy) => policy.Partial(Subject, Action, Kind, Context);
}

/// <summary>Small policies for tests: a standard head (roles, sets) and the rules a test writes.</summary>
internal static class Policies
{
    public const string Head = """
        version: 1
        sets:
          financial: [Coverage, Claim, ExplanationOfBenefit, Account]
          sensitive: [PSY, HIV]
        roles:
          nurse: {title: Nurse, clinical: true, description: Nurses}
          physician: {title: Physician, clinical: true}
          clerk: {title: Billing clerk, clinical: false}
        rules:

        """;

    /// <summary>A policy whose only rule permits reading when <paramref name="conditions"/> (a flow mapping's body) hold.</summary>
    public static Policy PermitWhen(string conditions) => Parse($$"""
          - id: only
            effect: permit
            description: the rule under test
            actions: [read]
            when: {{{conditions}}}
        """);

    public static Policy Parse(string rules, string file = "test-policy.yaml") => Policy.Parse(Head + rules, file);
}
