using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using System.Text;

namespace Wardline.Policy;

/// <summary>
/// A compiled access policy: parsed from the institution's YAML file (docs/formats/policy.md), immutable
/// and safe to share between threads. Deny overrides permit: if any <c>forbid</c> rule applies the
/// request is denied; otherwise if any <c>permit</c> rule applies it is permitted; otherwise it is denied
/// by <c>default-deny</c>. Every decision names its rule.
/// </summary>
public sealed class Policy
{
    internal const string DefaultDenyId = "default-deny";
    internal const string EmergencyPurpose = "ETREAT";
    private const int ActionCount = (int)PolicyAction.Export + 1;
    private const int StackRoles = 8;

    private static readonly Decision DefaultDeny = new(false, DefaultDenyId, "no rule permits this request");
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly Symbols _symbols;
    private readonly CompiledRule[][] _forbids;
    private readonly CompiledRule[][] _permits;
    private readonly DecisionTable _table;
    private readonly int _roleCount;
    /// <summary>A resource's <see cref="ResourceFacts.KindId"/> + 1 to this policy's kind index (-1: no rule names it).</summary>
    private readonly int[] _kindOf;

    private Policy(string digest, ParsedPolicy parsed)
    {
        Digest = digest;
        Rules = [.. parsed.Rules.Select(r => r.Rule)];
        Roles = parsed.Roles;
        _symbols = parsed.Symbols;
        _forbids = new CompiledRule[ActionCount][];
        _permits = new CompiledRule[ActionCount][];
        for (var a = 0; a < ActionCount; a++)
        {
            var action = (PolicyAction)a;
            var forAction = parsed.Rules.Where(r => r.Rule.Actions.Contains(action)).ToList();
            _forbids[a] = [.. forAction.Where(r => r.Forbid)];
            _permits[a] = [.. forAction.Where(r => !r.Forbid)];
        }
        _roleCount = _symbols.Roles.Count;
        _table = new DecisionTable(parsed.Rules, _roleCount, _symbols.Kinds.Count);
        _kindOf = new int[FhirResourceTypes.Count + 1];
        Array.Fill(_kindOf, -1);
        foreach (var (kind, index) in _symbols.Kinds) _kindOf[FhirResourceTypes.Id[kind] + 1] = index;
    }

    /// <summary>The rules specialised per action, role and kind (for tests).</summary>
    internal DecisionTable Table => _table;

    /// <summary>Lower-case hex SHA-256 of the policy's source text (UTF-8, no byte-order mark).</summary>
    public string Digest { get; }

    /// <summary>The rules in file order.</summary>
    public IReadOnlyList<PolicyRule> Rules { get; }

    /// <summary>The roles declared in the file, in file order.</summary>
    public IReadOnlyList<PolicyRole> Roles { get; }

    /// <summary>Parses and compiles a policy; <paramref name="fileName"/> names the source in errors.</summary>
    /// <exception cref="PolicyException">The text is not a valid policy.</exception>
    public static Policy Parse(string yaml, string fileName)
    {
        ArgumentNullException.ThrowIfNull(yaml);
        ArgumentNullException.ThrowIfNull(fileName);
        var parsed = PolicyParser.Parse(yaml, fileName);
        // The digest is computed only for valid text, which is at most PolicyParser.MaxChars long.
        var digest = Convert.ToHexStringLower(SHA256.HashData(StrictUtf8.GetBytes(yaml)));
        return new Policy(digest, parsed);
    }

    /// <summary>Reads (UTF-8), parses and compiles the policy file at <paramref name="path"/>.</summary>
    /// <exception cref="PolicyException">The file is not a valid policy, is too large, or cannot be read.</exception>
    public static Policy Load(string path)
    {
        ArgumentNullException.ThrowIfNull(path);
        string text;
        try
        {
            using var stream = new FileStream(path, FileMode.Open, FileAccess.Read, FileShare.Read);
            // Refuse before reading: a policy is a few kilobytes, and a huge file must not be read into memory.
            if (stream.Length > PolicyParser.MaxChars * 3L)
            {
                throw new PolicyException(path, 1, 1, $"the policy file is larger than {PolicyParser.MaxChars / 1024} KiB; a policy is a few kilobytes");
            }
            using var reader = new StreamReader(stream, StrictUtf8, detectEncodingFromByteOrderMarks: false);
            text = reader.ReadToEnd();
        }
        catch (DecoderFallbackException e)
        {
            throw new PolicyException(path, 1, 1, "the policy file is not valid UTF-8: " + e.Message);
        }
        catch (Exception e) when (e is IOException or UnauthorizedAccessException)
        {
            throw new PolicyException($"{path}: cannot read the policy file: {e.Message}", e);
        }
        if (text.Length > 0 && text[0] == '\uFEFF') text = text[1..];
        return Parse(text, path);
    }

    /// <summary>Decides one request. Allocation-free (unless the subject holds more than 8 roles).</summary>
    // Fully optimised from the first call: a freshly started server decides at full speed at once
    // instead of after the JIT's tiering delay.
    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    public Decision Decide(Subject subject, PolicyAction action, ResourceFacts resource, in RequestContext context)
    {
        ArgumentNullException.ThrowIfNull(subject);
        ArgumentNullException.ThrowIfNull(resource);
        if ((uint)action >= ActionCount) return DefaultDeny;
        var roles = subject.Roles.Count <= StackRoles ? stackalloc int[StackRoles] : new int[subject.Roles.Count];
        var facts = NewFacts(subject, resource, in context, roles);
        facts.Context = ref context;

        var roleSlot = !_table.SpecialisesRoles ? 0 : facts.Roles.Length switch
        {
            0 => 0,
            1 => facts.Roles[0] + 1,
            _ => _roleCount + 1,
        };
        var row = _table.Get((int)action, roleSlot, facts.Kind + 1);
        foreach (var rule in row.Forbids)
        {
            if (Applies(rule, ref facts)) return rule.Decision;
        }
        foreach (var rule in row.Permits)
        {
            if (Applies(rule, ref facts)) return rule.Decision;
        }
        return DefaultDeny;
    }

    /// <summary>
    /// Decides one request and traces every rule for the action in evaluation order (forbids, then permits,
    /// each in file order), including the rules after the deciding one. A rule's <c>when</c> conditions are
    /// traced up to the first that failed; its <c>unless</c> groups up to the first that fully held.
    /// </summary>
    public Explanation Explain(Subject subject, PolicyAction action, ResourceFacts resource, in RequestContext context)
    {
        ArgumentNullException.ThrowIfNull(subject);
        ArgumentNullException.ThrowIfNull(resource);
        if ((uint)action >= ActionCount) return new Explanation(DefaultDeny, []);
        Span<int> roles = new int[subject.Roles.Count];
        var facts = NewFacts(subject, resource, in context, roles);
        facts.Context = ref context;

        var trace = new List<RuleTrace>();
        Decision? decision = null;
        foreach (var rule in _forbids[(int)action].Concat(_permits[(int)action]))
        {
            var conditions = new List<ConditionTrace>();
            var applies = true;
            foreach (var test in rule.When)
            {
                var held = Holds(test, ref facts);
                conditions.Add(new ConditionTrace("when", test.Text, held));
                if (!held)
                {
                    applies = false;
                    break;
                }
            }
            for (var g = 0; applies && g < rule.Unless.Length; g++)
            {
                var clause = rule.Unless.Length == 1 ? "unless" : $"unless #{g + 1}";
                var groupHeld = true;
                foreach (var test in rule.Unless[g])
                {
                    var held = Holds(test, ref facts);
                    conditions.Add(new ConditionTrace(clause, test.Text, held));
                    if (!held)
                    {
                        groupHeld = false;
                        break;
                    }
                }
                if (groupHeld) applies = false;
            }
            var decides = applies && decision is null;
            if (decides) decision = rule.Decision;
            trace.Add(new RuleTrace(rule.Rule.Id, rule.Rule.Effect, applies, decides, conditions));
        }
        return new Explanation(decision ?? DefaultDeny, trace);
    }

    /// <summary>
    /// The decision for every resource of <paramref name="kind"/> at once: a simplified formula over the
    /// resource's own facts (see <see cref="AtomKind"/>), with everything that depends on the subject,
    /// action, kind and context folded to constants. For every resource <c>r</c> of that kind,
    /// <c>Partial(s, a, kind, c).Evaluate(s, r, c) == Decide(s, a, r, c).Permitted</c>. The server turns
    /// it into a query filter so that search applies the policy in the query.
    /// </summary>
    public Residual Partial(Subject subject, PolicyAction action, string kind, in RequestContext context)
    {
        ArgumentNullException.ThrowIfNull(subject);
        ArgumentNullException.ThrowIfNull(kind);
        if ((uint)action >= ActionCount) return Residual.Constant.False;
        // Only the kind of this stand-in is read: every resource-dependent condition becomes an atom.
        var resource = new ResourceFacts(kind, null, [], [], null, null);
        Span<int> roles = new int[subject.Roles.Count];
        var facts = NewFacts(subject, resource, in context, roles);
        facts.Context = ref context;
        var atoms = new ResidualAtoms(subject, context);

        var forbids = new List<Residual>();
        foreach (var rule in _forbids[(int)action])
        {
            var applies = RuleResidual(rule, ref facts, atoms);
            if (applies == Residual.Constant.True) return Residual.Constant.False; // this forbid applies to every resource
            forbids.Add(applies);
        }
        var permits = new List<Residual>();
        foreach (var rule in _permits[(int)action])
        {
            permits.Add(RuleResidual(rule, ref facts, atoms));
        }
        return ResidualAlgebra.And([ResidualAlgebra.Not(ResidualAlgebra.Or(forbids)), ResidualAlgebra.Or(permits)]);
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private Facts NewFacts(Subject subject, ResourceFacts resource, in RequestContext context, Span<int> roles)
    {
        var count = 0;
        var subjectRoles = subject.Roles;
        for (var i = 0; i < subjectRoles.Count; i++)
        {
            if (_symbols.Roles.TryGetValue(subjectRoles[i], out var index)) roles[count++] = index;
        }
        var facts = new Facts
        {
            Subject = subject,
            Resource = resource,
            Roles = roles[..count],
            Kind = _kindOf[resource.KindId + 1],
            Purpose = context.Purpose is { } purpose && _symbols.Purposes.TryGetValue(purpose, out var p) ? p : -1,
            Status = resource.Status is { } status && _symbols.Statuses.TryGetValue(status, out var s) ? s : -1,
            Network = context.Network switch { "internal" => 1UL, "external" => 2UL, _ => 0UL },
            Labels = resource.LabelMask,
            Treats = subject.TreatsMask,
        };
        return facts;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    private static bool Applies(CompiledRule rule, ref Facts facts)
    {
        foreach (var test in rule.When)
        {
            if (!Holds(test, ref facts)) return false;
        }
        foreach (var group in rule.Unless)
        {
            var all = true;
            foreach (var test in group)
            {
                if (!Holds(test, ref facts))
                {
                    all = false;
                    break;
                }
            }
            if (all) return false;
        }
        return true;
    }

    [MethodImpl(MethodImplOptions.AggressiveOptimization)]
    internal static bool Holds(Test test, ref Facts facts)
    {
        bool held;
        switch (test.Kind)
        {
            case TestKind.Role:
                held = false;
                foreach (var role in facts.Roles)
                {
                    if (Test.Has(test.Bits, role))
                    {
                        held = true;
                        break;
                    }
                }
                break;
            case TestKind.Tier:
                var tier = facts.Subject.Tier;
                held = test.Tiers is null ? tier >= test.Min && tier <= test.Max : Array.IndexOf(test.Tiers, tier) >= 0;
                break;
            case TestKind.Kind: held = Test.Has(test.Bits, facts.Kind); break;
            case TestKind.Purpose: held = Test.Has(test.Bits, facts.Purpose); break;
            case TestKind.Status: held = Test.Has(test.Bits, facts.Status); break;
            case TestKind.Label: held = (facts.Labels & test.Mask) != 0; break;
            case TestKind.Treats: held = (facts.Treats & test.Mask) != 0; break;
            case TestKind.Network: held = (facts.Network & test.Mask) != 0; break;
            case TestKind.Department: held = facts.InOwnDepartment; break;
            case TestKind.CareTeam: held = facts.OnCareTeam; break;
            case TestKind.BreakGlass: held = facts.BreakGlass; break;
            case TestKind.Mfa: held = facts.Context.Mfa; break;
            case TestKind.AccountActive: held = facts.Subject.Active; break;
            case TestKind.AccountExpired: held = facts.Subject.AccountExpires <= facts.Context.Now; break;
            case TestKind.PatientRestricted: held = facts.Resource.PatientRestricted; break;
            case TestKind.ResearchConsent: held = facts.Resource.PatientResearchConsent; break;
            case TestKind.HasPatient: held = facts.Resource.PatientId is not null; break;
            case TestKind.OwnRecord:
                held = facts.Resource.PatientStaffUserId is { } staff && string.Equals(staff, facts.Subject.Id, StringComparison.Ordinal);
                break;
            case TestKind.Hour:
                var hour = facts.Context.Hour;
                held = (uint)hour < 24 && ((test.Mask >> hour) & 1) != 0;
                break;
            case TestKind.Weekday:
                var day = facts.Context.Weekday;
                held = (uint)day <= 7 && ((test.Mask >> day) & 1) != 0;
                break;
            case TestKind.Shift:
                held = facts.Subject.Shift is not { } shift || shift.Contains(facts.Context.Hour);
                break;
            default:
                held = false;
                break;
        }
        return held != test.Negate;
    }

    private static Residual RuleResidual(CompiledRule rule, ref Facts facts, ResidualAtoms atoms)
    {
        var parts = new List<Residual>(rule.When.Length + 1);
        foreach (var test in rule.When)
        {
            var r = atoms.Of(test, ref facts);
            if (r == Residual.Constant.False) return r;
            parts.Add(r);
        }
        var unless = new List<Residual>(rule.Unless.Length);
        foreach (var group in rule.Unless)
        {
            var all = new List<Residual>(group.Length);
            foreach (var test in group) all.Add(atoms.Of(test, ref facts));
            unless.Add(ResidualAlgebra.And(all));
        }
        parts.Add(ResidualAlgebra.Not(ResidualAlgebra.Or(unless)));
        return ResidualAlgebra.And(parts);
    }
}
