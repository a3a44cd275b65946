using System.Collections.Frozen;
using System.Globalization;

namespace Wardline.Policy;

/// <summary>Symbol tables that turn the strings of a request into small integers once per decision.</summary>
internal sealed class Symbols
{
    public required FrozenDictionary<string, int> Roles { get; init; }

    public required FrozenDictionary<string, int> Kinds { get; init; }

    public required FrozenDictionary<string, int> Purposes { get; init; }

    public required FrozenDictionary<string, int> Statuses { get; init; }
}

/// <summary>The result of parsing: what <see cref="Policy"/> is built from.</summary>
internal sealed class ParsedPolicy
{
    public required IReadOnlyList<PolicyRole> Roles { get; init; }

    public required IReadOnlyList<CompiledRule> Rules { get; init; }

    public required Symbols Symbols { get; init; }
}

/// <summary>
/// Turns the YAML text of a policy (docs/formats/policy.md) into compiled rules, checking everything it
/// can: every problem is a <see cref="PolicyException"/> at the line and column of the offending node.
/// </summary>
internal sealed class PolicyParser
{
    /// <summary>A policy is a few kilobytes; anything near this is not a policy (and bounds the parser's work).</summary>
    public const int MaxChars = 1 << 20;

    private static readonly string[] TopKeys = ["version", "sets", "roles", "rules"];
    private static readonly string[] RoleKeys = ["title", "clinical", "description"];
    private static readonly string[] RuleKeys = ["id", "effect", "description", "actions", "when", "unless"];

    private static readonly FrozenDictionary<string, PolicyAction> ActionNames = new Dictionary<string, PolicyAction>(StringComparer.Ordinal)
    {
        ["read"] = PolicyAction.Read,
        ["search"] = PolicyAction.Search,
        ["create"] = PolicyAction.Create,
        ["update"] = PolicyAction.Update,
        ["delete"] = PolicyAction.Delete,
        ["export"] = PolicyAction.Export,
    }.ToFrozenDictionary(StringComparer.Ordinal);

    /// <summary>The condition keys, in the order the format documents them.</summary>
    public static readonly IReadOnlyList<string> ConditionKeys =
    [
        "role", "tier", "kind", "department", "care-team", "label", "treats", "break-glass", "purpose", "mfa",
        "network", "account", "account-expired", "patient-restricted", "research-consent", "own-record",
        "has-patient", "hour", "weekday", "shift", "status",
    ];

    private readonly string _file;
    private readonly Dictionary<string, YSequence> _sets = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _roles = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _kinds = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _purposes = new(StringComparer.Ordinal);
    private readonly Dictionary<string, int> _statuses = new(StringComparer.Ordinal);

    private PolicyParser(string file) => _file = file;

    public static ParsedPolicy Parse(string text, string file)
    {
        if (text.Length > MaxChars)
        {
            throw new PolicyException(file, 1, 1, $"the policy file is larger than {MaxChars / 1024} KiB; a policy is a few kilobytes");
        }
        var root = YamlTree.Read(text, file) ?? throw new PolicyException(file, 1, 1, "the policy file is empty");
        return new PolicyParser(file).ParseRoot(root);
    }

    private ParsedPolicy ParseRoot(YNode rootNode)
    {
        var root = Mapping(rootNode, "the policy file must be a mapping with the keys version, sets, roles and rules");
        var top = Entries(root, TopKeys, "top-level key");
        if (!top.TryGetValue("version", out var version)) throw Error(root, "missing 'version: 1'");
        var v = Int(version.Value, "version");
        if (v != 1) throw Error(version.Value, $"unsupported version {v}; this Wardline reads version 1");

        if (top.TryGetValue("sets", out var sets)) ParseSets(sets.Value);
        var roles = top.TryGetValue("roles", out var rolesNode) ? ParseRoles(rolesNode.Value) : [];
        if (!top.TryGetValue("rules", out var rulesNode)) throw Error(root, "missing 'rules'; a policy with no rules would deny everything");
        var rules = ParseRules(rulesNode);

        return new ParsedPolicy
        {
            Roles = roles,
            Rules = rules,
            Symbols = new Symbols
            {
                Roles = _roles.ToFrozenDictionary(StringComparer.Ordinal),
                Kinds = _kinds.ToFrozenDictionary(StringComparer.Ordinal),
                Purposes = _purposes.ToFrozenDictionary(StringComparer.Ordinal),
                Statuses = _statuses.ToFrozenDictionary(StringComparer.Ordinal),
            },
        };
    }

    private void ParseSets(YNode node)
    {
        foreach (var (key, value) in Mapping(node, "'sets' must map set names to lists of strings").Entries)
        {
            if (!IsName(key.Value)) throw Error(key, $"set name '{key.Value}' must be letters, digits, '_' or '-'");
            var list = value as YSequence ?? throw Error(value, $"set '{key.Value}' must be a list of strings");
            if (list.Items.Count == 0) throw Error(value, $"set '{key.Value}' is empty");
            foreach (var item in list.Items)
            {
                var s = Str(item, $"an item of set '{key.Value}'");
                if (s.StartsWith('$')) throw Error(item, "a set cannot refer to another set");
            }
            _sets.Add(key.Value, list);
        }
    }

    private List<PolicyRole> ParseRoles(YNode node)
    {
        var roles = new List<PolicyRole>();
        foreach (var (key, value) in Mapping(node, "'roles' must map role names to {title, clinical, description}").Entries)
        {
            if (!IsName(key.Value)) throw Error(key, $"role name '{key.Value}' must be letters, digits, '_' or '-'");
            var fields = Entries(Mapping(value, $"role '{key.Value}' must be a mapping with title, clinical and description"), RoleKeys, "role key");
            if (!fields.TryGetValue("title", out var title)) throw Error(value, $"role '{key.Value}' has no title");
            var clinical = fields.TryGetValue("clinical", out var c) && Bool(c.Value, "clinical");
            var description = fields.TryGetValue("description", out var d) ? Text(d.Value, "description") : "";
            _roles.Add(key.Value, _roles.Count);
            roles.Add(new PolicyRole(key.Value, Text(title.Value, "title"), clinical, description));
        }
        return roles;
    }

    private List<CompiledRule> ParseRules(KeyValuePair<YScalar, YNode> rulesEntry)
    {
        var list = rulesEntry.Value as YSequence;
        if (list is null)
        {
            if (rulesEntry.Value is YScalar { IsNull: true }) throw Error(rulesEntry.Key, "'rules' is empty; a policy with no rules would deny everything");
            throw Error(rulesEntry.Value, "'rules' must be a list of rules");
        }
        if (list.Items.Count == 0) throw Error(rulesEntry.Key, "'rules' is empty; a policy with no rules would deny everything");
        var ids = new HashSet<string>(StringComparer.Ordinal);
        var rules = new List<CompiledRule>(list.Items.Count);
        foreach (var item in list.Items)
        {
            var rule = ParseRule(Mapping(item, "a rule must be a mapping with id, effect, description, actions, when and unless"));
            if (!ids.Add(rule.Rule.Id)) throw Error(RuleIdNode((YMapping)item), $"duplicate rule id '{rule.Rule.Id}'");
            rules.Add(rule);
        }
        return rules;
    }

    private static YNode RuleIdNode(YMapping rule) => rule.Entries.First(e => e.Key.Value == "id").Value;

    private CompiledRule ParseRule(YMapping node)
    {
        var fields = Entries(node, RuleKeys, "rule key");
        if (!fields.TryGetValue("id", out var idEntry)) throw Error(node, "the rule has no 'id'");
        var id = Str(idEntry.Value, "a rule id");
        if (!IsName(id.Replace('.', '_'))) throw Error(idEntry.Value, $"rule id '{id}' must be letters, digits, '_', '-' or '.'");
        if (id == Policy.DefaultDenyId) throw Error(idEntry.Value, $"'{Policy.DefaultDenyId}' is reserved for the decision made when no rule applies");
        if (!fields.TryGetValue("effect", out var effectEntry)) throw Error(node, $"rule '{id}' has no 'effect' (permit or forbid)");
        var effect = Str(effectEntry.Value, "effect");
        if (effect is not ("permit" or "forbid")) throw Error(effectEntry.Value, $"effect must be permit or forbid, not '{effect}'");
        if (!fields.TryGetValue("description", out var descriptionEntry)) throw Error(node, $"rule '{id}' has no 'description' (it is the reason every decision by this rule gives)");
        var description = Text(descriptionEntry.Value, "description");
        if (!fields.TryGetValue("actions", out var actionsEntry)) throw Error(node, $"rule '{id}' has no 'actions' (a list, or any)");
        var actions = Actions(actionsEntry.Value);

        var when = new List<Test>();
        var texts = new List<string>();
        if (fields.TryGetValue("when", out var whenEntry))
        {
            if (whenEntry.Value is not YScalar { IsNull: true })
            {
                when.AddRange(Conditions(Mapping(whenEntry.Value, "'when' must be a mapping of conditions")));
                if (when.Count > 0) texts.Add("when " + whenEntry.Value.Flow());
            }
        }
        var unless = new List<Test[]>();
        if (fields.TryGetValue("unless", out var unlessEntry))
        {
            IReadOnlyList<YNode> groups = unlessEntry.Value switch
            {
                YMapping m => [m],
                YSequence { Items.Count: > 0 } s => s.Items,
                _ => throw Error(unlessEntry.Value, "'unless' must be a mapping of conditions or a non-empty list of them"),
            };
            foreach (var group in groups)
            {
                var tests = Conditions(Mapping(group, "each 'unless' item must be a mapping of conditions"));
                if (tests.Count == 0) throw Error(group, "an empty 'unless' group always holds, so the rule would never apply");
                unless.Add([.. tests]);
                texts.Add("unless " + group.Flow());
            }
        }

        var rule = new PolicyRule(id, effect, description, actions, string.Join("; ", texts), node.Line);
        return new CompiledRule
        {
            Rule = rule,
            Forbid = effect == "forbid",
            When = [.. when.OrderBy(t => t.Cost)],
            Unless = [.. unless.Select(g => g.OrderBy(t => t.Cost).ToArray())],
            Decision = new Decision(effect == "permit", id, description),
        };
    }

    private PolicyAction[] Actions(YNode node)
    {
        if (node is YScalar { IsPlain: true, Value: "any" }) return Enum.GetValues<PolicyAction>();
        var items = node switch
        {
            YSequence { Items.Count: > 0 } s => s.Items,
            YScalar s when !s.IsNull => [s],
            _ => throw Error(node, "actions must be a list of read, search, create, update, delete, export, or any"),
        };
        var actions = new List<PolicyAction>();
        foreach (var item in items)
        {
            var name = Str(item, "an action");
            if (!ActionNames.TryGetValue(name, out var action))
            {
                throw Error(item, $"unknown action '{name}' (expected read, search, create, update, delete, export, or any for all)");
            }
            if (actions.Contains(action)) throw Error(item, $"action '{name}' is listed twice");
            actions.Add(action);
        }
        return [.. actions];
    }

    private List<Test> Conditions(YMapping map)
    {
        var tests = new List<Test>(map.Entries.Count);
        foreach (var (key, value) in map.Entries)
        {
            var text = key.Value + ": " + value.Flow();
            tests.Add(key.Value switch
            {
                "role" => Symbolic(TestKind.Role, value, text, "role", _roles, declaredOnly: true),
                "kind" => Symbolic(TestKind.Kind, value, text, "resource type", _kinds, declaredOnly: false),
                "purpose" => Symbolic(TestKind.Purpose, value, text, "purpose of use", _purposes, declaredOnly: false),
                "status" => Symbolic(TestKind.Status, value, text, "status code", _statuses, declaredOnly: false),
                "label" => Labels(TestKind.Label, value, text),
                "treats" => Labels(TestKind.Treats, value, text),
                "tier" => Tier(value, text),
                "department" => Keyword(TestKind.Department, value, text, "own", "not-own"),
                "account" => Keyword(TestKind.AccountActive, value, text, "active", "inactive"),
                "shift" => Keyword(TestKind.Shift, value, text, "inside", "outside"),
                "care-team" => Flag(TestKind.CareTeam, value, text),
                "break-glass" => Flag(TestKind.BreakGlass, value, text),
                "mfa" => Flag(TestKind.Mfa, value, text),
                "account-expired" => Flag(TestKind.AccountExpired, value, text),
                "patient-restricted" => Flag(TestKind.PatientRestricted, value, text),
                "research-consent" => Flag(TestKind.ResearchConsent, value, text),
                "own-record" => Flag(TestKind.OwnRecord, value, text),
                "has-patient" => Flag(TestKind.HasPatient, value, text),
                "network" => Network(value, text),
                "hour" => Hour(value, text),
                "weekday" => Weekday(value, text),
                _ => throw Error(key, $"unknown condition '{key.Value}' (expected one of: {string.Join(", ", ConditionKeys)})"),
            });
        }
        return tests;
    }

    private Test Flag(TestKind kind, YNode value, string text) =>
        new() { Kind = kind, Negate = !Bool(value, text.Split(':')[0]), Text = text };

    private Test Keyword(TestKind kind, YNode value, string text, string yes, string no)
    {
        var word = value is YScalar { IsPlain: true } s ? s.Value : null;
        if (word != yes && word != no) throw Error(value, $"{text.Split(':')[0]} must be {yes} or {no}");
        return new Test { Kind = kind, Negate = word == no, Text = text };
    }

    /// <summary>A string, $set or list of them, optionally under {not: ...}; values become symbol bits.</summary>
    private Test Symbolic(TestKind kind, YNode value, string text, string what, Dictionary<string, int> table, bool declaredOnly)
    {
        var (items, negate) = StringList(value, text.Split(':')[0]);
        var indexes = new List<int>();
        foreach (var (item, node, set) in items)
        {
            var problem = kind switch
            {
                TestKind.Role when !table.ContainsKey(item) => $"role '{item}' is not declared under 'roles'",
                TestKind.Kind when !FhirResourceTypes.All.Contains(item) => $"'{item}' is not a FHIR R4 resource type",
                TestKind.Purpose or TestKind.Status when !IsName(item.Replace('.', '_')) => $"{what} '{item}' must be letters, digits, '_', '-' or '.'",
                _ => null,
            };
            if (problem is not null) throw Error(node, set is null ? problem : $"{problem} (in set ${set})");
            if (!table.TryGetValue(item, out var index))
            {
                if (declaredOnly) throw Error(node, $"{what} '{item}' is not declared");
                index = table.Count;
                table.Add(item, index);
            }
            indexes.Add(index);
        }
        return new Test { Kind = kind, Negate = negate, Bits = BitsOf(indexes), Values = [.. items.Select(i => i.Value).Distinct()], Text = text };
    }

    private Test Labels(TestKind kind, YNode value, string text)
    {
        var (items, negate) = StringList(value, text.Split(':')[0]);
        ulong mask = 0;
        foreach (var (item, node, set) in items)
        {
            if (!SecurityLabels.Bit.TryGetValue(item, out var bit))
            {
                var problem = $"'{item}' is not a known security label code (confidentiality U, L, M, N, R, V or an HL7 v3 sensitivity code such as PSY, HIV, ETH, SDV, STD, GDIS)";
                throw Error(node, set is null ? problem : $"{problem} (in set ${set})");
            }
            mask |= 1UL << bit;
        }
        return new Test { Kind = kind, Negate = negate, Mask = mask, Values = [.. items.Select(i => i.Value).Distinct()], Text = text };
    }

    private Test Network(YNode value, string text)
    {
        var (items, negate) = StringList(value, "network");
        ulong mask = 0;
        foreach (var (item, node, _) in items)
        {
            mask |= item switch
            {
                "internal" => 1UL,
                "external" => 2UL,
                _ => throw Error(node, $"network must be internal or external, not '{item}'"),
            };
        }
        return new Test { Kind = TestKind.Network, Negate = negate, Mask = mask, Text = text };
    }

    private Test Tier(YNode value, string text)
    {
        switch (value)
        {
            case YScalar s:
                var tier = Int(s, "tier");
                return new Test { Kind = TestKind.Tier, Min = tier, Max = tier, Text = text };
            case YSequence { Items.Count: > 0 } list:
                return new Test { Kind = TestKind.Tier, Tiers = [.. list.Items.Select(i => Int(i, "tier"))], Text = text };
            case YMapping map:
                var range = Entries(map, ["min", "max"], "tier key");
                if (range.Count == 0) throw Error(map, "tier needs min, max or both");
                var min = range.TryGetValue("min", out var mn) ? Int(mn.Value, "tier min") : int.MinValue;
                var max = range.TryGetValue("max", out var mx) ? Int(mx.Value, "tier max") : int.MaxValue;
                if (min > max) throw Error(map, $"tier min {min} is above max {max}; no tier matches");
                return new Test { Kind = TestKind.Tier, Min = min, Max = max, Text = text };
            default:
                throw Error(value, "tier must be a number, a list of numbers, or {min: n} / {max: n}");
        }
    }

    private Test Hour(YNode value, string text)
    {
        var negate = false;
        if (value is YMapping { Entries: [{ Key.Value: "not" } inner] })
        {
            negate = true;
            value = inner.Value;
        }
        var window = Entries(Mapping(value, "hour must be {from: h, to: h} or {not: {from: h, to: h}}"), ["from", "to"], "hour key");
        if (!window.TryGetValue("from", out var fromEntry) || !window.TryGetValue("to", out var toEntry))
        {
            throw Error(value, "hour needs both from and to");
        }
        var from = Int(fromEntry.Value, "hour from");
        var to = Int(toEntry.Value, "hour to");
        if (from is < 0 or > 23) throw Error(fromEntry.Value, "hour from must be 0-23");
        if (to is < 0 or > 24) throw Error(toEntry.Value, "hour to must be 0-24");
        if (from == to % 24) throw Error(value, "from and to are the same hour; the window would be empty");
        ulong mask = 0;
        for (var h = 0; h < 24; h++)
        {
            if (from < to ? h >= from && h < to : h >= from || h < to) mask |= 1UL << h;
        }
        return new Test { Kind = TestKind.Hour, Negate = negate, Mask = mask, Text = text };
    }

    private Test Weekday(YNode value, string text)
    {
        var items = value switch
        {
            YSequence { Items.Count: > 0 } s => s.Items,
            YScalar s => [s],
            _ => throw Error(value, "weekday must be a day number 1-7 (1 = Monday) or a list of them"),
        };
        ulong mask = 0;
        foreach (var item in items)
        {
            var day = Int(item, "weekday");
            if (day is < 1 or > 7) throw Error(item, "weekday must be 1-7 (ISO: 1 = Monday, 7 = Sunday)");
            mask |= 1UL << day;
        }
        return new Test { Kind = TestKind.Weekday, Mask = mask, Text = text };
    }

    /// <summary>
    /// <c>x</c>, <c>$set</c>, <c>[x, $set, ...]</c> or <c>{not: any of those}</c>: the strings with the node
    /// each came from (a set's own item, so an error points at the value that is wrong) and the set's name.
    /// </summary>
    private (List<(string Value, YNode Node, string? Set)> Items, bool Negate) StringList(YNode value, string key)
    {
        var negate = false;
        if (value is YMapping map)
        {
            if (map.Entries is not [{ Key.Value: "not" } inner]) throw Error(map, $"{key} takes a value, a list, or {{not: ...}}");
            negate = true;
            value = inner.Value;
        }
        var nodes = value switch
        {
            YSequence { Items.Count: > 0 } s => s.Items,
            YSequence s => throw Error(s, $"an empty {key} list never matches"),
            YScalar s => [s],
            _ => throw Error(value, $"{key} takes a value, a list, or {{not: ...}}"),
        };
        var items = new List<(string, YNode, string?)>();
        foreach (var node in nodes)
        {
            var s = Str(node, $"a {key} value");
            if (s.StartsWith('$'))
            {
                var name = s[1..];
                if (!_sets.TryGetValue(name, out var set)) throw Error(node, $"unknown set '${name}' (sets are declared under 'sets')");
                items.AddRange(set.Items.Select(i => (((YScalar)i).Value, i, (string?)name)));
            }
            else
            {
                items.Add((s, node, null));
            }
        }
        return (items, negate);
    }

    private static ulong[] BitsOf(List<int> indexes)
    {
        var bits = new ulong[(indexes.Max() >> 6) + 1];
        foreach (var i in indexes) bits[i >> 6] |= 1UL << i;
        return bits;
    }

    /// <summary>The entries of a mapping by key, rejecting keys outside <paramref name="allowed"/>.</summary>
    private Dictionary<string, KeyValuePair<YScalar, YNode>> Entries(YMapping map, string[] allowed, string what)
    {
        var result = new Dictionary<string, KeyValuePair<YScalar, YNode>>(StringComparer.Ordinal);
        foreach (var entry in map.Entries)
        {
            if (Array.IndexOf(allowed, entry.Key.Value) < 0)
            {
                throw Error(entry.Key, $"unknown {what} '{entry.Key.Value}' (expected {string.Join(", ", allowed)})");
            }
            result.Add(entry.Key.Value, entry);
        }
        return result;
    }

    private YMapping Mapping(YNode node, string problem) => node as YMapping ?? throw Error(node, problem);

    /// <summary>A string value: quoted, or plain and not a number, boolean or null.</summary>
    private string Str(YNode node, string what)
    {
        if (node is not YScalar s) throw Error(node, $"{what} must be a single value, not a {(node is YSequence ? "list" : "mapping")}");
        if (s.IsNull) throw Error(node, $"{what} is missing (null)");
        if (s.IsPlain && (s.Value is "true" or "false" || long.TryParse(s.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out _)))
        {
            throw Error(node, $"{what} must be a name, not {s.Value} (quote it if it really is a name)");
        }
        if (s.Value.Trim().Length == 0) throw Error(node, $"{what} is empty");
        return s.Value;
    }

    /// <summary>Free text (titles, descriptions): any non-empty scalar.</summary>
    private string Text(YNode node, string what)
    {
        if (node is not YScalar s || s.IsNull || s.Value.Trim().Length == 0) throw Error(node, $"{what} must be a non-empty text");
        return s.Value;
    }

    private int Int(YNode node, string what)
    {
        if (node is YScalar { IsPlain: true } s && int.TryParse(s.Value, NumberStyles.AllowLeadingSign, CultureInfo.InvariantCulture, out var value))
        {
            return value;
        }
        throw Error(node, $"{what} must be a whole number");
    }

    private bool Bool(YNode node, string what) => node switch
    {
        YScalar { IsPlain: true, Value: "true" } => true,
        YScalar { IsPlain: true, Value: "false" } => false,
        _ => throw Error(node, $"{what} must be true or false"),
    };

    private static bool IsName(string s) => s.Length > 0 && s.All(c => char.IsAsciiLetterOrDigit(c) || c is '_' or '-');

    private PolicyException Error(YNode node, string problem) => new(_file, node.Line, node.Column, problem);
}
