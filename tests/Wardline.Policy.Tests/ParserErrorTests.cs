using System.Text;

namespace Wardline.Policy.Tests;

/// <summary>A bad policy file fails with the file, line and column of what is wrong.</summary>
public sealed class ParserErrorTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wl-policy-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    /// <summary>A valid policy that the cases below break one way each (line numbers refer to this text).</summary>
    private const string Valid = """
        version: 1
        sets:
          money: [Claim, Account]
        roles:
          nurse: {title: Nurse, clinical: true}
        rules:
          - id: r1
            effect: permit
            description: nurses read
            actions: [read]
            when: {role: nurse, kind: $money}
        """;

    public static TheoryData<string, string, int, int, string> BadFiles => new()
    {
        { "unclosed quote", "version: 1\nrules:\n  - id: \"r1\n", 3, 9, "YAML syntax error" },
        { "tab indentation", "version: 1\nrules:\n\t- id: r1\n", 3, 1, "a tab in the indentation" },
        { "bad block indentation", Valid.Replace("    effect: permit", "   effect: permit"), 8, 4, "YAML syntax error" },
        { "unclosed flow mapping", "version: 1\nrules: [\n  {id: r1\n", 4, 1, "YAML syntax error" },
        { "unknown top-level key", Valid + "\npolicy: strict\n", 12, 1, "unknown top-level key 'policy'" },
        { "unknown condition", Valid.Replace("when: {role: nurse,", "when: {rol: nurse,"), 11, 12, "unknown condition 'rol'" },
        { "unknown rule key", Valid.Replace("    actions: [read]", "    action: [read]"), 10, 5, "unknown rule key 'action'" },
        { "wrong value type for a flag", Valid.Replace("role: nurse,", "mfa: yes,"), 11, 17, "mfa must be true or false" },
        { "a list where a value is expected", Valid.Replace("id: r1", "id: [r1]"), 7, 9, "a rule id must be a single value" },
        { "a number where a name is expected", Valid.Replace("kind: $money", "kind: 42"), 11, 31, "kind value must be a name, not 42" },
        { "undeclared role", Valid.Replace("role: nurse,", "role: surgeon,"), 11, 18, "role 'surgeon' is not declared under 'roles'" },
        { "unknown set", Valid.Replace("$money", "$mony"), 11, 31, "unknown set '$mony'" },
        { "unknown action", Valid.Replace("actions: [read]", "actions: [read, write]"), 10, 21, "unknown action 'write'" },
        { "duplicate rule id", Valid + "\n  - id: r1\n    effect: forbid\n    description: again\n    actions: any\n", 12, 9, "duplicate rule id 'r1'" },
        { "unknown label", Valid.Replace("role: nurse,", "label: PSX,"), 11, 19, "'PSX' is not a known security label code" },
        { "unknown label inside a set", Valid.Replace("money: [Claim, Account]", "money: [Claim, Account]\n  tags: [PSY, hiv]").Replace("role: nurse,", "label: $tags,"), 4, 15, "'hiv' is not a known security label code (confidentiality U, L, M, N, R, V or an HL7 v3 sensitivity code such as PSY, HIV, ETH, SDV, STD, GDIS) (in set $tags)" },
        { "misspelt resource type", Valid.Replace("kind: $money", "kind: Observaton"), 11, 31, "'Observaton' is not a FHIR R4 resource type" },
        { "unknown effect", Valid.Replace("effect: permit", "effect: allow"), 8, 13, "effect must be permit or forbid, not 'allow'" },
        { "missing description", Valid.Replace("    description: nurses read\n", ""), 7, 5, "rule 'r1' has no 'description'" },
        { "unsupported version", Valid.Replace("version: 1", "version: 2"), 1, 10, "unsupported version 2" },
        { "missing version", Valid.Replace("version: 1\n", ""), 1, 1, "missing 'version: 1'" },
        { "no rules", Valid[..Valid.IndexOf("  - id", StringComparison.Ordinal)] + "  []\n", 6, 1, "'rules' is empty" },
        { "rules key without rules", "version: 1\nrules:\n", 2, 1, "'rules' is empty" },
        { "missing rules", "version: 1\nroles: {}\n", 1, 1, "missing 'rules'" },
        { "empty file", "", 1, 1, "the policy file is empty" },
        { "comments only", "# nothing here\n", 1, 1, "the policy file is empty" },
        { "not a mapping", "- a\n- b\n", 1, 1, "the policy file must be a mapping" },
        { "duplicate mapping key", Valid.Replace("    actions: [read]", "    actions: [read]\n    effect: forbid"), 11, 5, "duplicate key 'effect'" },
        { "anchor", Valid.Replace("[Claim, Account]", "&m [Claim, Account]"), 3, 10, "YAML anchors (&m) are not allowed" },
        { "two documents", Valid + "\n---\nversion: 1\n", 12, 1, "one YAML document" },
        { "tags", Valid.Replace("version: 1", "version: !!int 1"), 1, 10, "YAML tags" },
        { "tier range the wrong way round", Valid.Replace("role: nurse,", "tier: {min: 3, max: 1},"), 11, 18, "tier min 3 is above max 1" },
        { "empty hour window", Valid.Replace("role: nurse,", "hour: {from: 7, to: 7},"), 11, 18, "the window would be empty" },
        { "hour out of range", Valid.Replace("role: nurse,", "hour: {from: 7, to: 25},"), 11, 32, "hour to must be 0-24" },
        { "weekday out of range", Valid.Replace("role: nurse,", "weekday: [0, 8],"), 11, 22, "weekday must be 1-7" },
        { "department keyword", Valid.Replace("role: nurse,", "department: mine,"), 11, 24, "department must be own or not-own" },
        { "network value", Valid.Replace("role: nurse,", "network: [internal, vpn],"), 11, 32, "network must be internal or external, not 'vpn'" },
        { "empty unless group", Valid + "\n    unless: {}\n", 12, 13, "an empty 'unless' group always holds" },
        { "empty list", Valid.Replace("role: nurse,", "purpose: [],"), 11, 21, "an empty purpose list never matches" },
        { "reserved rule id", Valid.Replace("id: r1", "id: default-deny"), 7, 9, "'default-deny' is reserved" },
        { "role without a title", Valid.Replace("{title: Nurse, clinical: true}", "{clinical: true}"), 5, 10, "role 'nurse' has no title" },
        { "a set referring to a set", Valid.Replace("[Claim, Account]", "[Claim, $other]"), 3, 18, "a set cannot refer to another set" },
        { "quoted boolean", Valid.Replace("role: nurse,", "mfa: 'true',"), 11, 17, "mfa must be true or false" },
    };

    [Theory]
    [MemberData(nameof(BadFiles))]
    public void A_bad_policy_file_is_refused_with_its_position(string why, string yaml, int line, int column, string problem)
    {
        var e = Assert.Throws<PolicyException>(() => Policy.Parse(yaml, "hospital.yaml"));

        Assert.True(e.Problem.Contains(problem, StringComparison.Ordinal), $"{why}: expected '{problem}' in '{e.Message}'");
        Assert.Equal(("hospital.yaml", line, column), (e.File, e.Line, e.Column));
        Assert.StartsWith($"hospital.yaml:{line}:{column}: ", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_valid_base_of_the_bad_files_parses()
    {
        var policy = Policy.Parse(Valid, "hospital.yaml");

        Assert.Equal("r1", Assert.Single(policy.Rules).Id);
    }

    [Fact]
    public void A_yaml_bomb_is_refused_at_its_first_anchor()
    {
        var bomb = new StringBuilder("version: 1\nsets:\n  a0: &a0 [Claim, Claim]\n");
        for (var i = 1; i < 12; i++) bomb.Append($"  a{i}: &a{i} [*a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}, *a{i - 1}]\n");
        bomb.Append("rules: [{id: r, effect: permit, description: d, actions: any, when: {kind: $a11}}]\n");

        var e = Assert.Throws<PolicyException>(() => Policy.Parse(bomb.ToString(), "bomb.yaml"));

        Assert.Equal((3, 7), (e.Line, e.Column));
        Assert.Contains("anchors", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_alias_without_an_anchor_is_refused()
    {
        var e = Assert.Throws<PolicyException>(() => Policy.Parse("version: 1\nrules: *r\n", "alias.yaml"));

        Assert.Equal(2, e.Line);
        Assert.Contains("alias", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Deep_nesting_is_refused_without_exhausting_the_stack()
    {
        var deep = "version: 1\nrules: " + new string('[', 100_000) + new string(']', 100_000) + "\n";

        var e = Assert.Throws<PolicyException>(() => Policy.Parse(deep, "deep.yaml"));

        Assert.Contains("nested more than", e.Message, StringComparison.Ordinal);
        Assert.Equal(2, e.Line);
    }

    [Fact]
    public void A_text_over_one_mebibyte_is_refused_before_parsing()
    {
        var huge = "version: 1\nrules:\n" + string.Concat(Enumerable.Repeat("  - {id: r, effect: permit, description: d, actions: any}\n", 200_000));

        var e = Assert.Throws<PolicyException>(() => Policy.Parse(huge, "huge.yaml"));

        Assert.Equal((1, 1), (e.Line, e.Column));
        Assert.Contains("larger than 1024 KiB", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_ten_megabyte_file_is_refused_without_reading_it()
    {
        var path = Path.Combine(_dir, "big.yaml");
        using (var file = File.Create(path)) file.SetLength(10 * 1024 * 1024);

        var e = Assert.Throws<PolicyException>(() => Policy.Load(path));

        Assert.Equal((path, 1, 1), (e.File, e.Line, e.Column));
        Assert.Contains("larger than", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_names_the_file_in_errors()
    {
        var path = Path.Combine(_dir, "policy.yaml");
        File.WriteAllText(path, Valid.Replace("role: nurse,", "role: surgeon,"));

        var e = Assert.Throws<PolicyException>(() => Policy.Load(path));

        Assert.StartsWith($"{path}:11:18: role 'surgeon'", e.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_refuses_a_missing_file_and_invalid_utf8()
    {
        var missing = Assert.Throws<PolicyException>(() => Policy.Load(Path.Combine(_dir, "nope.yaml")));
        Assert.Contains("cannot read the policy file", missing.Message, StringComparison.Ordinal);

        var path = Path.Combine(_dir, "latin1.yaml");
        File.WriteAllBytes(path, [.. Encoding.UTF8.GetBytes("version: 1\n# caf"), 0xE9, (byte)'\n']);
        var invalid = Assert.Throws<PolicyException>(() => Policy.Load(path));
        Assert.Contains("not valid UTF-8", invalid.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Load_reads_a_file_with_a_byte_order_mark_and_digests_the_text()
    {
        var path = Path.Combine(_dir, "bom.yaml");
        File.WriteAllText(path, Valid, new UTF8Encoding(encoderShouldEmitUTF8Identifier: true));

        var policy = Policy.Load(path);

        Assert.Equal(Policy.Parse(Valid, "x").Digest, policy.Digest);
    }
}
