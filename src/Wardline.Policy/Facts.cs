namespace Wardline.Policy;

/// <summary>
/// One request's facts as small integers and bit masks, computed once per decision so that each rule's
/// conditions are mask tests. The facts that cost a lookup (departments, care team, break-glass) are
/// computed on first use and remembered (0 unknown, 1 false, 2 true).
/// </summary>
internal ref struct Facts
{
    public Subject Subject;
    public ResourceFacts Resource;
    public ref readonly RequestContext Context;
    public ReadOnlySpan<int> Roles;
    public int Kind;
    public int Purpose;
    public int Status;
    public ulong Network;
    public ulong Labels;
    public ulong Treats;
    private byte _department;
    private byte _careTeam;
    private byte _breakGlass;

    public bool InOwnDepartment
    {
        get
        {
            if (_department == 0) _department = ComputeInOwnDepartment() ? (byte)2 : (byte)1;
            return _department == 2;
        }
    }

    public bool OnCareTeam
    {
        get
        {
            if (_careTeam == 0) _careTeam = Resource.PatientId is { } patient && Subject.CareTeamPatients.Contains(patient) ? (byte)2 : (byte)1;
            return _careTeam == 2;
        }
    }

    /// <summary>Purpose ETREAT and an unexpired grant for the resource's patient.</summary>
    public bool BreakGlass
    {
        get
        {
            if (_breakGlass == 0) _breakGlass = ComputeBreakGlass() ? (byte)2 : (byte)1;
            return _breakGlass == 2;
        }
    }

    private readonly bool ComputeInOwnDepartment()
    {
        var mine = Subject.DepartmentArray;
        var theirs = Resource.DepartmentArray;
        for (var i = 0; i < theirs.Length; i++)
        {
            for (var j = 0; j < mine.Length; j++)
            {
                if (string.Equals(theirs[i], mine[j], StringComparison.Ordinal)) return true;
            }
        }
        return false;
    }

    private readonly bool ComputeBreakGlass() =>
        string.Equals(Context.Purpose, Policy.EmergencyPurpose, StringComparison.Ordinal)
        && Resource.PatientId is { } patient
        && Subject.BreakGlassUntil.TryGetValue(patient, out var until)
        && until > Context.Now;
}
