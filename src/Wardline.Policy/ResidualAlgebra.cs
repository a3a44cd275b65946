namespace Wardline.Policy;

/// <summary>
/// Builds residuals already simplified: constants folded, nested And/Or flattened, no And/Or of a single
/// operand, double negation removed, structurally equal operands of one And/Or kept once, and an operand
/// next to its own negation folded (x and not x is false, x or not x is true).
/// </summary>
internal static class ResidualAlgebra
{
    public static Residual Not(Residual operand) => operand switch
    {
        Residual.Constant c => c.Value ? Residual.Constant.False : Residual.Constant.True,
        Residual.Not n => n.Operand,
        _ => new Residual.Not(operand),
    };

    public static Residual And(IReadOnlyList<Residual> operands) => Combine(operands, isAnd: true);

    public static Residual Or(IReadOnlyList<Residual> operands) => Combine(operands, isAnd: false);

    private static Residual Combine(IReadOnlyList<Residual> operands, bool isAnd)
    {
        var identity = isAnd ? Residual.Constant.True : Residual.Constant.False;
        var absorbing = isAnd ? Residual.Constant.False : Residual.Constant.True;
        var flat = new List<Residual>(operands.Count);
        foreach (var operand in operands)
        {
            if (operand == absorbing) return absorbing;
            if (operand == identity) continue;
            var nested = isAnd ? (operand as Residual.And)?.Operands : (operand as Residual.Or)?.Operands;
            foreach (var item in nested ?? [operand])
            {
                if (flat.Exists(existing => SameAs(existing, item))) continue;
                // x and not x is false; x or not x is true.
                if (flat.Exists(existing => IsNegationOf(existing, item))) return absorbing;
                flat.Add(item);
            }
        }
        return flat.Count switch
        {
            0 => identity,
            1 => flat[0],
            _ => isAnd ? new Residual.And(flat) : new Residual.Or(flat),
        };
    }

    private static bool IsNegationOf(Residual a, Residual b) =>
        (a is Residual.Not na && SameAs(na.Operand, b)) || (b is Residual.Not nb && SameAs(nb.Operand, a));

    /// <summary>Structural equality, cheap for the shapes Partial makes (atoms share their value arrays).</summary>
    private static bool SameAs(Residual a, Residual b) => (a, b) switch
    {
        _ when ReferenceEquals(a, b) => true,
        (Residual.Atom x, Residual.Atom y) => x.Kind == y.Kind && (ReferenceEquals(x.Values, y.Values) || x.Values.SequenceEqual(y.Values, StringComparer.Ordinal)),
        (Residual.Not x, Residual.Not y) => SameAs(x.Operand, y.Operand),
        (Residual.And x, Residual.And y) => SameList(x.Operands, y.Operands),
        (Residual.Or x, Residual.Or y) => SameList(x.Operands, y.Operands),
        _ => false,
    };

    private static bool SameList(IReadOnlyList<Residual> a, IReadOnlyList<Residual> b)
    {
        if (a.Count != b.Count) return false;
        for (var i = 0; i < a.Count; i++)
        {
            if (!SameAs(a[i], b[i])) return false;
        }
        return true;
    }
}

/// <summary>
/// Turns one condition into a residual for a fixed subject and context: subject- and context-only
/// conditions are evaluated to constants; resource-dependent ones become atoms. The atoms of one subject
/// share their value arrays (the subject's departments, care-team patients, live break-glass grants).
/// </summary>
internal sealed class ResidualAtoms(Subject subject, RequestContext context)
{
    private static readonly string[] NoValues = [];

    private Residual? _department;
    private Residual? _careTeam;
    private Residual? _breakGlass;
    private Residual? _ownRecord;

    public Residual Of(Test test, ref Facts facts)
    {
        Residual atom;
        switch (test.Kind)
        {
            case TestKind.Department:
                atom = _department ??= subject.Departments.Count == 0
                    ? Residual.Constant.False
                    : new Residual.Atom(AtomKind.InSubjectDepartment, [.. subject.Departments.Distinct(StringComparer.Ordinal)]);
                break;
            case TestKind.CareTeam:
                atom = _careTeam ??= subject.CareTeamPatients.Count == 0
                    ? Residual.Constant.False
                    : new Residual.Atom(AtomKind.OnCareTeam, [.. subject.CareTeamPatients.Order(StringComparer.Ordinal)]);
                break;
            case TestKind.BreakGlass:
                atom = _breakGlass ??= BreakGlass();
                break;
            case TestKind.OwnRecord:
                atom = _ownRecord ??= new Residual.Atom(AtomKind.OwnRecord, [subject.Id]);
                break;
            case TestKind.Label:
                atom = new Residual.Atom(AtomKind.HasLabel, test.Values);
                break;
            case TestKind.Status:
                atom = new Residual.Atom(AtomKind.StatusIn, test.Values);
                break;
            case TestKind.PatientRestricted:
                atom = new Residual.Atom(AtomKind.PatientRestricted, NoValues);
                break;
            case TestKind.ResearchConsent:
                atom = new Residual.Atom(AtomKind.ResearchConsent, NoValues);
                break;
            case TestKind.HasPatient:
                atom = new Residual.Atom(AtomKind.HasPatient, NoValues);
                break;
            default:
                // Depends on the subject, the context or the kind only (the stand-in resource has the kind).
                return Policy.Holds(test, ref facts) ? Residual.Constant.True : Residual.Constant.False;
        }
        return test.Negate ? ResidualAlgebra.Not(atom) : atom;
    }

    private Residual BreakGlass()
    {
        if (!string.Equals(context.Purpose, Policy.EmergencyPurpose, StringComparison.Ordinal)) return Residual.Constant.False;
        var live = new List<string>();
        foreach (var (patient, until) in subject.BreakGlassUntil)
        {
            if (until > context.Now) live.Add(patient);
        }
        live.Sort(StringComparer.Ordinal);
        return live.Count == 0 ? Residual.Constant.False : new Residual.Atom(AtomKind.BreakGlass, live);
    }
}
