namespace Wardline.Policy;

/// <summary>
/// The requesting user as the policy sees it; built once per request by the server. Immutable: the lists
/// and sets passed in must not change afterwards (the constructor derives what decisions read from them).
/// </summary>
public sealed class Subject
{
    /// <param name="accountExpires">Unix seconds; <see cref="long.MaxValue"/> means never.</param>
    /// <param name="shift">Null when the subject has no shift (always inside).</param>
    /// <param name="careTeamPatients">Ids of the patients whose care team the subject is on.</param>
    /// <param name="breakGlassUntil">Patient id to the unix second its break-glass grant expires.</param>
    public Subject(string id, IReadOnlyList<string> roles, int tier, IReadOnlyList<string> departments,
        IReadOnlyList<string> treats, bool active, long accountExpires, ShiftWindow? shift,
        IReadOnlySet<string> careTeamPatients, IReadOnlyDictionary<string, long> breakGlassUntil)
    {
        ArgumentNullException.ThrowIfNull(id);
        ArgumentNullException.ThrowIfNull(roles);
        ArgumentNullException.ThrowIfNull(departments);
        ArgumentNullException.ThrowIfNull(treats);
        ArgumentNullException.ThrowIfNull(careTeamPatients);
        ArgumentNullException.ThrowIfNull(breakGlassUntil);
        Id = id;
        Roles = roles;
        Tier = tier;
        Departments = departments;
        Treats = treats;
        Active = active;
        AccountExpires = accountExpires;
        Shift = shift;
        CareTeamPatients = careTeamPatients;
        BreakGlassUntil = breakGlassUntil;
        TreatsMask = SecurityLabels.MaskOf(treats);
        DepartmentArray = departments as string[] ?? [.. departments];
    }

    public string Id { get; }

    public IReadOnlyList<string> Roles { get; }

    public int Tier { get; }

    public IReadOnlyList<string> Departments { get; }

    /// <summary>Sensitivity codes the subject treats (e.g. PSY), which lift the matching label restrictions.</summary>
    public IReadOnlyList<string> Treats { get; }

    public bool Active { get; }

    /// <summary>Unix seconds; <see cref="long.MaxValue"/> means never.</summary>
    public long AccountExpires { get; }

    public ShiftWindow? Shift { get; }

    public IReadOnlySet<string> CareTeamPatients { get; }

    /// <summary>Patient id to the unix second its break-glass grant expires.</summary>
    public IReadOnlyDictionary<string, long> BreakGlassUntil { get; }

    /// <summary>The known sensitivity codes of <see cref="Treats"/> as label bits, computed once.</summary>
    internal ulong TreatsMask { get; }

    internal string[] DepartmentArray { get; }
}
