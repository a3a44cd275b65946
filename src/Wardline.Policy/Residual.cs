namespace Wardline.Policy;

/// <summary>
/// What remains of a decision once the subject, action, resource kind and context are known: a boolean
/// formula over the resource-dependent facts only (<see cref="AtomKind"/>). Made by
/// <see cref="Policy.Partial"/>; for every resource of that kind, <see cref="Evaluate"/> equals
/// <see cref="Policy.Decide"/>'s <see cref="Decision.Permitted"/>. Simplified: no And/Or holds a constant
/// or a single operand, and a constant is only ever the whole formula.
/// </summary>
public abstract class Residual
{
    private protected Residual()
    {
    }

    /// <summary>Evaluates the formula for one resource.</summary>
    public abstract bool Evaluate(Subject subject, ResourceFacts resource, in RequestContext context);

    /// <summary>True or false.</summary>
    public sealed class Constant : Residual
    {
        private Constant(bool value) => Value = value;

        public static Constant True { get; } = new(true);

        public static Constant False { get; } = new(false);

        public bool Value { get; }

        /// <inheritdoc/>
        public override bool Evaluate(Subject subject, ResourceFacts resource, in RequestContext context) => Value;

        /// <inheritdoc/>
        public override string ToString() => Value ? "true" : "false";
    }

    /// <summary>All operands hold.</summary>
    public sealed class And : Residual
    {
        public And(IReadOnlyList<Residual> operands)
        {
            ArgumentNullException.ThrowIfNull(operands);
            Operands = operands;
        }

        public IReadOnlyList<Residual> Operands { get; }

        /// <inheritdoc/>
        public override bool Evaluate(Subject subject, ResourceFacts resource, in RequestContext context)
        {
            foreach (var operand in Operands)
            {
                if (!operand.Evaluate(subject, resource, context)) return false;
            }
            return true;
        }

        /// <inheritdoc/>
        public override string ToString() => "(" + string.Join(" and ", Operands) + ")";
    }

    /// <summary>At least one operand holds.</summary>
    public sealed class Or : Residual
    {
        public Or(IReadOnlyList<Residual> operands)
        {
            ArgumentNullException.ThrowIfNull(operands);
            Operands = operands;
        }

        public IReadOnlyList<Residual> Operands { get; }

        /// <inheritdoc/>
        public override bool Evaluate(Subject subject, ResourceFacts resource, in RequestContext context)
        {
            foreach (var operand in Operands)
            {
                if (operand.Evaluate(subject, resource, context)) return true;
            }
            return false;
        }

        /// <inheritdoc/>
        public override string ToString() => "(" + string.Join(" or ", Operands) + ")";
    }

    /// <summary>The operand does not hold.</summary>
    public sealed class Not : Residual
    {
        public Not(Residual operand)
        {
            ArgumentNullException.ThrowIfNull(operand);
            Operand = operand;
        }

        public Residual Operand { get; }

        /// <inheritdoc/>
        public override bool Evaluate(Subject subject, ResourceFacts resource, in RequestContext context) =>
            !Operand.Evaluate(subject, resource, context);

        /// <inheritdoc/>
        public override string ToString() => "not " + Operand;
    }

    /// <summary>One resource-dependent fact; see <see cref="AtomKind"/> for what <see cref="Values"/> holds.</summary>
    public sealed class Atom : Residual
    {
        public Atom(AtomKind kind, IReadOnlyList<string> values)
        {
            ArgumentNullException.ThrowIfNull(values);
            Kind = kind;
            Values = values;
        }

        public AtomKind Kind { get; }

        public IReadOnlyList<string> Values { get; }

        /// <inheritdoc/>
        public override bool Evaluate(Subject subject, ResourceFacts resource, in RequestContext context)
        {
            var patient = resource.Patient;
            return Kind switch
            {
                AtomKind.InSubjectDepartment => AnyIn(resource.Departments, Values),
                AtomKind.OnCareTeam or AtomKind.BreakGlass => patient is not null && Contains(Values, patient.Id),
                AtomKind.PatientRestricted => patient is { Restricted: true },
                AtomKind.ResearchConsent => patient is { ResearchConsent: true },
                AtomKind.OwnRecord => patient?.StaffUserId is { } staff && Contains(Values, staff),
                AtomKind.HasLabel => AnyIn(resource.Labels, Values),
                AtomKind.StatusIn => resource.Status is { } status && Contains(Values, status),
                AtomKind.HasPatient => patient is not null,
                _ => false,
            };
        }

        /// <inheritdoc/>
        public override string ToString() => Values.Count == 0 ? Kind.ToString() : $"{Kind}[{string.Join(", ", Values)}]";

        private static bool AnyIn(IReadOnlyList<string> items, IReadOnlyList<string> values)
        {
            for (var i = 0; i < items.Count; i++)
            {
                if (Contains(values, items[i])) return true;
            }
            return false;
        }

        private static bool Contains(IReadOnlyList<string> values, string item)
        {
            for (var i = 0; i < values.Count; i++)
            {
                if (string.Equals(values[i], item, StringComparison.Ordinal)) return true;
            }
            return false;
        }
    }
}
