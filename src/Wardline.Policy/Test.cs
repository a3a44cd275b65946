namespace Wardline.Policy;

/// <summary>The condition keys of the policy format (docs/formats/policy.md), one evaluator case each.</summary>
internal enum TestKind : byte
{
    Role,
    Tier,
    Kind,
    Department,
    CareTeam,
    Label,
    Treats,
    BreakGlass,
    Purpose,
    Mfa,
    Network,
    AccountActive,
    AccountExpired,
    PatientRestricted,
    ResearchConsent,
    OwnRecord,
    HasPatient,
    Hour,
    Weekday,
    Shift,
    Status,
}

/// <summary>
/// One compiled condition. It computes a plain fact (e.g. "the resource belongs to one of the subject's
/// departments", "the purpose is one of Bits") and <see cref="Negate"/> flips it, so <c>care-team: false</c>,
/// <c>role: {not: ...}</c> and <c>shift: outside</c> need no cases of their own.
/// </summary>
internal sealed class Test
{
    public required TestKind Kind { get; init; }

    public bool Negate { get; init; }

    /// <summary>Labels/treats: label bits; network: bit 0 internal, bit 1 external; hour: bits 0-23; weekday: bits 1-7.</summary>
    public ulong Mask { get; init; }

    /// <summary>Role, kind, purpose, status: a bit per symbol index in the policy's table for that key.</summary>
    public ulong[] Bits { get; init; } = [];

    /// <summary>Tier: the inclusive range, and the allowed values when a list was given.</summary>
    public int Min { get; init; } = int.MinValue;

    public int Max { get; init; } = int.MaxValue;

    public int[]? Tiers { get; init; }

    /// <summary>Label and status: the codes, for residual atoms.</summary>
    public string[] Values { get; init; } = [];

    /// <summary>The condition as written, e.g. <c>role: [nurse]</c>.</summary>
    public required string Text { get; init; }

    /// <summary>Relative cost; a rule evaluates its cheap conditions first (a conjunction's order does not change its value).</summary>
    public int Cost => Kind switch
    {
        TestKind.Department or TestKind.OwnRecord => 2,
        TestKind.CareTeam or TestKind.BreakGlass => 3,
        TestKind.PatientRestricted or TestKind.ResearchConsent or TestKind.HasPatient or TestKind.Status => 1,
        _ => 0,
    };

    public static bool Has(ulong[] bits, int index) => (uint)index < (uint)(bits.Length * 64) && (bits[index >> 6] & (1UL << index)) != 0;
}

/// <summary>A rule compiled for evaluation.</summary>
internal sealed class CompiledRule
{
    public required PolicyRule Rule { get; init; }

    public required bool Forbid { get; init; }

    /// <summary>All must hold, cheapest first.</summary>
    public required Test[] When { get; init; }

    /// <summary>The rule does not apply if every test of any one group holds.</summary>
    public required Test[][] Unless { get; init; }

    /// <summary>The decision this rule makes, allocated once.</summary>
    public required Decision Decision { get; init; }
}
