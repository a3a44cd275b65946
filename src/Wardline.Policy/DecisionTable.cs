namespace Wardline.Policy;

/// <summary>The rules that can still apply to one (action, role, kind) combination.</summary>
internal sealed class RuleSet(CompiledRule[] forbids, CompiledRule[] permits)
{
    public CompiledRule[] Forbids { get; } = forbids;

    public CompiledRule[] Permits { get; } = permits;
}

/// <summary>
/// The policy specialised ahead of time for every action x subject role x resource kind: for each
/// combination, only the rules that can still apply, with their <c>role</c> and <c>kind</c> conditions
/// already decided and removed. A decision looks up its row and evaluates what is left, which for a
/// typical request is a handful of one-test rules instead of every rule of the action.
/// Role slot 0: the subject holds no declared role; 1..R: exactly that one role; R+1: several roles
/// (role conditions kept and evaluated). Kind slot 0: a kind no rule names; 1..K: that kind.
/// When roles x kinds would make the table large, roles are not specialised (every subject uses slot 0,
/// whose rules keep their role conditions).
/// </summary>
internal sealed class DecisionTable
{
    /// <summary>Bounds the table's size and build time (a policy reload builds it).</summary>
    public const int MaxRows = 1 << 14;

    private const int ActionCount = (int)PolicyAction.Export + 1;

    /// <summary>A slot that leaves a rule's tests of that key undecided.</summary>
    private const long Undecided = -1;

    private readonly RuleSet[] _rows;
    private readonly int _kindSlots;

    public DecisionTable(IReadOnlyList<CompiledRule> rules, int roleCount, int kindCount)
    {
        _kindSlots = kindCount + 1;
        SpecialisesRoles = (long)ActionCount * (roleCount + 2) * _kindSlots <= MaxRows;
        RoleSlots = SpecialisesRoles ? roleCount + 2 : 1;
        _rows = new RuleSet[ActionCount * RoleSlots * _kindSlots];

        // How each slot decides each rule's role (kind) tests, as bits: bit 2i set = test i decided,
        // bit 2i+1 = its value. Rules with equal signatures in two slots specialise the same way.
        var roleSignature = new long[rules.Count, RoleSlots];
        var kindSignature = new long[rules.Count, _kindSlots];
        for (var r = 0; r < rules.Count; r++)
        {
            var tests = AllTests(rules[r]);
            for (var slot = 0; slot < RoleSlots; slot++)
            {
                roleSignature[r, slot] = !SpecialisesRoles || slot == roleCount + 1 ? Undecided : Signature(tests, TestKind.Role, slot - 1);
            }
            for (var slot = 0; slot < _kindSlots; slot++) kindSignature[r, slot] = Signature(tests, TestKind.Kind, slot - 1);
        }

        var variants = new Dictionary<(int, long, long), CompiledRule?>();
        var rows = new Dictionary<string, CompiledRule[]>(StringComparer.Ordinal);
        var ids = new Dictionary<CompiledRule, int>(ReferenceEqualityComparer.Instance);
        var forbids = new List<CompiledRule>();
        var permits = new List<CompiledRule>();
        for (var action = 0; action < ActionCount; action++)
        {
            var forAction = Enumerable.Range(0, rules.Count).Where(r => rules[r].Rule.Actions.Contains((PolicyAction)action)).ToArray();
            for (var roleSlot = 0; roleSlot < RoleSlots; roleSlot++)
            {
                for (var kindSlot = 0; kindSlot < _kindSlots; kindSlot++)
                {
                    forbids.Clear();
                    permits.Clear();
                    foreach (var r in forAction)
                    {
                        var key = (r, roleSignature[r, roleSlot], kindSignature[r, kindSlot]);
                        if (!variants.TryGetValue(key, out var variant))
                        {
                            variant = Specialise(rules[r], key.Item2, key.Item3);
                            variants.Add(key, variant);
                        }
                        if (variant is not null) (variant.Forbid ? forbids : permits).Add(variant);
                    }
                    _rows[(action * RoleSlots + roleSlot) * _kindSlots + kindSlot] = new RuleSet(Shared(forbids, rows, ids), Shared(permits, rows, ids));
                }
            }
        }
    }

    public bool SpecialisesRoles { get; }

    public int RoleSlots { get; }

    /// <summary>The row for a request; <paramref name="roleSlot"/> and <paramref name="kindSlot"/> as described on the class.</summary>
    public RuleSet Get(int action, int roleSlot, int kindSlot) => _rows[(action * RoleSlots + roleSlot) * _kindSlots + kindSlot];

    private static List<Test> AllTests(CompiledRule rule) => [.. rule.When, .. rule.Unless.SelectMany(g => g)];

    /// <summary>
    /// The decided values of a rule's tests of one key for a slot whose only symbol is <paramref name="symbol"/>
    /// (-1: none): bit 2i set when test i is decided, bit 2i+1 its value. Only the first 31 tests are
    /// decided; any further ones stay for decision time.
    /// </summary>
    private static long Signature(List<Test> tests, TestKind kind, int symbol)
    {
        long signature = 0;
        for (var i = 0; i < tests.Count && i < 31; i++)
        {
            var test = tests[i];
            if (test.Kind != kind) continue;
            signature |= 1L << (2 * i);
            if (Test.Has(test.Bits, symbol) != test.Negate) signature |= 1L << (2 * i + 1);
        }
        return signature;
    }

    /// <summary>The rule with its decided tests removed; null when it cannot apply in this slot.</summary>
    private static CompiledRule? Specialise(CompiledRule rule, long roleSignature, long kindSignature)
    {
        var all = AllTests(rule);
        bool? Known(Test test)
        {
            var i = all.IndexOf(test);
            if (i >= 31) return null; // beyond the signature's reach: evaluated at decision time
            var signature = test.Kind switch { TestKind.Role => roleSignature, TestKind.Kind => kindSignature, _ => Undecided };
            if (signature == Undecided || (signature & (1L << (2 * i))) == 0) return null;
            return (signature & (1L << (2 * i + 1))) != 0;
        }

        if (rule.When.Any(t => Known(t) == false)) return null;
        var unless = new List<Test[]>();
        foreach (var group in rule.Unless)
        {
            if (group.Any(t => Known(t) == false)) continue; // this group can never hold
            var rest = group.Where(t => Known(t) is null).ToArray();
            if (rest.Length == 0) return null; // this group always holds, so the rule never applies
            unless.Add(rest);
        }
        var when = rule.When.Where(t => Known(t) is null).ToArray();
        var unchanged = when.Length == rule.When.Length && unless.Count == rule.Unless.Length
            && unless.Select((g, i) => g.Length == rule.Unless[i].Length).All(same => same);
        return unchanged ? rule : new CompiledRule { Rule = rule.Rule, Forbid = rule.Forbid, When = when, Unless = [.. unless], Decision = rule.Decision };
    }

    /// <summary>One array per distinct list of rules, shared between the rows that hold it.</summary>
    private static CompiledRule[] Shared(List<CompiledRule> list, Dictionary<string, CompiledRule[]> rows, Dictionary<CompiledRule, int> ids)
    {
        var key = string.Join(',', list.Select(r => ids.TryGetValue(r, out var id) ? id : ids[r] = ids.Count));
        if (rows.TryGetValue(key, out var shared)) return shared;
        CompiledRule[] array = [.. list];
        rows.Add(key, array);
        return array;
    }
}
