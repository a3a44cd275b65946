using System.Globalization;
using Wardline.Policy;

namespace Wardline.Monitoring;

/// <summary>A problem in a monitoring configuration file, with its position; the previous configuration stays in force.</summary>
internal sealed class MonitorConfigException(string message) : Exception(message)
{
    public static MonitorConfigException At(string file, int line, int column, string problem) => new($"{file}:{line}:{column}: {problem}");
}

/// <summary>A detection's tunable number: its name in the file, default, and the range a value must fall in; a count, a number of days or minutes is <paramref name="Whole"/>.</summary>
internal sealed record DetectionParameter(string Name, double Default, double Min, double Max, string Meaning, bool Whole = true);

/// <summary>
/// A detection's tunable list of names (roles): its name in the file, default, and what it means. Each item is a
/// name of the policy's vocabulary: lower-case letters, digits and _ (as a role is), 1 to 40 characters.
/// </summary>
internal sealed record DetectionList(string Name, IReadOnlyList<string> Default, string Meaning);

/// <summary>One detection's switch, severity and thresholds as configured.</summary>
internal sealed class DetectionSettings(string id, bool enabled, Severity severity, IReadOnlyDictionary<string, double> values,
    IReadOnlyDictionary<string, IReadOnlyList<string>>? lists = null)
{
    public string Id { get; } = id;

    public bool Enabled { get; } = enabled;

    public Severity Severity { get; } = severity;

    public IReadOnlyDictionary<string, double> Values { get; } = values;

    /// <summary>The configured lists (<see cref="DetectionInfo.Lists"/>), each its default when not set.</summary>
    public IReadOnlyDictionary<string, IReadOnlyList<string>> Lists { get; } = lists ?? new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);

    /// <summary>The configured value of a parameter the detection declared (its default when not set).</summary>
    public double this[string name] => Values.TryGetValue(name, out var v) ? v : throw new KeyNotFoundException($"The detection {Id} declares no parameter '{name}'.");

    /// <summary>The configured items of a list the detection declared (its default when not set).</summary>
    public IReadOnlyList<string> List(string name) => Lists.TryGetValue(name, out var v) ? v : throw new KeyNotFoundException($"The detection {Id} declares no list '{name}'.");
}

/// <summary>
/// A kind of legitimate reason to be in a record (care-team, encounter, episode, appointment,
/// consult-order, referral, wrote-for-patient) and the detections it silences while it holds, with
/// <see cref="GraceDays"/> of slack either side of its period.
/// </summary>
internal sealed record ExplanationSettings(string Kind, IReadOnlySet<string> Suppresses, double GraceDays);

/// <summary>
/// The monitoring configuration (docs/operations/monitoring.md): detection switches, severities and
/// thresholds, the explanations that suppress alerts, grouping and repeat-offender marking. Read from a
/// YAML file; every problem is reported with its line and column, and a file with any problem is refused
/// whole, so the configuration in force never changes half-way.
/// </summary>
internal sealed class MonitorConfig
{
    public static readonly IReadOnlyList<string> ExplanationKinds =
        ["care-team", "encounter", "episode", "appointment", "consult-order", "referral", "wrote-for-patient", "department-stay", "current-stay"];

    private MonitorConfig(IReadOnlyDictionary<string, DetectionSettings> detections, IReadOnlyList<ExplanationSettings> explanations,
        TimeZoneInfo? timeZone, int groupWindowMinutes, int repeatViolations, int repeatWithinDays, string text)
    {
        Detections = detections;
        Explanations = explanations;
        TimeZone = timeZone;
        GroupWindowMinutes = groupWindowMinutes;
        RepeatOffenderViolations = repeatViolations;
        RepeatOffenderWithinDays = repeatWithinDays;
        Text = text;
        Fingerprint = Convert.ToHexStringLower(System.Security.Cryptography.SHA256.HashData(System.Text.Encoding.UTF8.GetBytes(text)))[..16];
    }

    public IReadOnlyDictionary<string, DetectionSettings> Detections { get; }

    public IReadOnlyList<ExplanationSettings> Explanations { get; }

    /// <summary>The institution's time zone for working hours; null: the server's (Wardline:Access:TimeZone).</summary>
    public TimeZoneInfo? TimeZone { get; }

    /// <summary>Findings of one detection about one user within this window are one alert (a spree across 40 patients is one case).</summary>
    public int GroupWindowMinutes { get; }

    /// <summary>A user with this many alerts closed as violations within <see cref="RepeatOffenderWithinDays"/> is marked a repeat offender.</summary>
    public int RepeatOffenderViolations { get; }

    public int RepeatOffenderWithinDays { get; }

    /// <summary>The file's text, as loaded.</summary>
    public string Text { get; }

    /// <summary>First 16 hex digits of SHA-256 of the text: which configuration raised an alert.</summary>
    public string Fingerprint { get; }

    public DetectionSettings For(string detection) => Detections[detection];

    /// <summary>The configuration shipped with Wardline (monitoring.yaml in this project).</summary>
    public static MonitorConfig Default => Parse(DefaultText, "monitoring.yaml (built in)");

    public static string DefaultText
    {
        get
        {
            using var stream = typeof(MonitorConfig).Assembly.GetManifestResourceStream("Wardline.Monitoring.monitoring.yaml")!;
            using var reader = new StreamReader(stream);
            return reader.ReadToEnd();
        }
    }

    /// <summary>Reads a configuration; throws <see cref="MonitorConfigException"/> naming the file, line and column of the first problem.</summary>
    public static MonitorConfig Parse(string text, string file)
    {
        YNode? root;
        try
        {
            root = YamlTree.Read(text, file);
        }
        catch (PolicyException e)
        {
            throw new MonitorConfigException(e.Message.Replace("a policy file", "a monitoring file", StringComparison.Ordinal));
        }
        if (root is not YMapping map) throw MonitorConfigException.At(file, root?.Line ?? 1, root?.Column ?? 1, "the file must be a mapping with 'version: 1' and 'detections'");
        var catalog = Catalog.All.ToDictionary(d => d.Id, StringComparer.Ordinal);
        var detections = new Dictionary<string, DetectionSettings>(StringComparer.Ordinal);
        var explanations = new List<ExplanationSettings>();
        TimeZoneInfo? zone = null;
        var window = 24 * 60;
        var repeatViolations = 2;
        var repeatDays = 365;
        var sawVersion = false;
        foreach (var (key, value) in map.Entries)
        {
            switch (key.Value)
            {
                case "version":
                    if (Scalar(file, value, "version") != "1") throw MonitorConfigException.At(file, value.Line, value.Column, "version must be 1");
                    sawVersion = true;
                    break;
                case "time-zone":
                    var name = Scalar(file, value, "time-zone");
                    try
                    {
                        zone = TimeZoneInfo.FindSystemTimeZoneById(name);
                    }
                    catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
                    {
                        throw MonitorConfigException.At(file, value.Line, value.Column, $"'{name}' is not a known time zone (use an IANA name such as Europe/London)");
                    }
                    break;
                case "grouping":
                    foreach (var (k, v) in Mapping(file, value, "grouping").Entries)
                    {
                        if (k.Value != "window-minutes") throw Unknown(file, k, "grouping", ["window-minutes"]);
                        window = (int)Number(file, v, "grouping.window-minutes", 1, 7 * 24 * 60, integer: true);
                    }
                    break;
                case "repeat-offender":
                    foreach (var (k, v) in Mapping(file, value, "repeat-offender").Entries)
                    {
                        switch (k.Value)
                        {
                            case "violations": repeatViolations = (int)Number(file, v, "repeat-offender.violations", 1, 1000, integer: true); break;
                            case "within-days": repeatDays = (int)Number(file, v, "repeat-offender.within-days", 1, 3650, integer: true); break;
                            default: throw Unknown(file, k, "repeat-offender", ["violations", "within-days"]);
                        }
                    }
                    break;
                case "detections":
                    foreach (var (k, v) in Mapping(file, value, "detections").Entries)
                    {
                        if (!catalog.TryGetValue(k.Value, out var info)) throw Unknown(file, k, "detections", [.. catalog.Keys.Order(StringComparer.Ordinal)]);
                        detections[k.Value] = ReadDetection(file, info, Mapping(file, v, "detections." + k.Value));
                    }
                    break;
                case "explanations":
                    foreach (var (k, v) in Mapping(file, value, "explanations").Entries)
                    {
                        if (!ExplanationKinds.Contains(k.Value)) throw Unknown(file, k, "explanations", ExplanationKinds);
                        explanations.Add(ReadExplanation(file, k.Value, Mapping(file, v, "explanations." + k.Value), catalog));
                    }
                    break;
                default:
                    throw Unknown(file, key, "the file", ["version", "time-zone", "grouping", "repeat-offender", "detections", "explanations"]);
            }
        }
        if (!sawVersion) throw MonitorConfigException.At(file, map.Line, map.Column, "'version: 1' is missing");
        // A detection the file does not mention runs with its defaults: a new detection added by an upgrade is on.
        foreach (var info in catalog.Values)
        {
            if (!detections.ContainsKey(info.Id))
                detections[info.Id] = new DetectionSettings(info.Id, true, info.DefaultSeverity, info.Parameters.ToDictionary(p => p.Name, p => p.Default, StringComparer.Ordinal), DefaultLists(info));
        }
        return new MonitorConfig(detections, explanations, zone, window, repeatViolations, repeatDays, text);
    }

    private static DetectionSettings ReadDetection(string file, DetectionInfo info, YMapping map)
    {
        var enabled = true;
        var severity = info.DefaultSeverity;
        var values = info.Parameters.ToDictionary(p => p.Name, p => p.Default, StringComparer.Ordinal);
        var lists = DefaultLists(info);
        foreach (var (k, v) in map.Entries)
        {
            var where = $"detections.{info.Id}.{k.Value}";
            switch (k.Value)
            {
                case "enabled":
                    enabled = Scalar(file, v, where) switch
                    {
                        "true" => true,
                        "false" => false,
                        _ => throw MonitorConfigException.At(file, v.Line, v.Column, $"{where} must be true or false"),
                    };
                    break;
                case "severity":
                    var s = Scalar(file, v, where);
                    severity = s switch
                    {
                        "low" => Severity.Low,
                        "medium" => Severity.Medium,
                        "high" => Severity.High,
                        "critical" => Severity.Critical,
                        _ => throw MonitorConfigException.At(file, v.Line, v.Column, $"{where} must be low, medium, high or critical, not '{s}'"),
                    };
                    break;
                default:
                    if (info.Lists.FirstOrDefault(x => x.Name == k.Value) is { } list)
                    {
                        lists[list.Name] = Names(file, v, where);
                        break;
                    }
                    var p = info.Parameters.FirstOrDefault(x => x.Name == k.Value)
                        ?? throw Unknown(file, k, "detections." + info.Id, ["enabled", "severity", .. info.Parameters.Select(x => x.Name), .. info.Lists.Select(x => x.Name)]);
                    values[p.Name] = Number(file, v, where, p.Min, p.Max, integer: p.Whole);
                    break;
            }
        }
        return new DetectionSettings(info.Id, enabled, severity, values, lists);
    }

    private static Dictionary<string, IReadOnlyList<string>> DefaultLists(DetectionInfo info) =>
        info.Lists.ToDictionary(l => l.Name, l => l.Default, StringComparer.Ordinal);

    /// <summary>A list of names of the policy's vocabulary (roles): lower-case letters, digits and _, starting with a letter; may be empty.</summary>
    private static IReadOnlyList<string> Names(string file, YNode node, string where)
    {
        if (node is not YSequence seq) throw MonitorConfigException.At(file, node.Line, node.Column, $"{where} must be a list of names, e.g. [administrator, privacy_officer]");
        var names = new List<string>();
        foreach (var item in seq.Items)
        {
            var name = Scalar(file, item, where);
            if (name.Length is 0 or > 40 || name[0] is < 'a' or > 'z' || name.Any(c => c is not ((>= 'a' and <= 'z') or (>= '0' and <= '9') or '_')))
                throw MonitorConfigException.At(file, item.Line, item.Column, $"{where}: '{name}' is not a name: use lower-case letters, digits and _ (e.g. privacy_officer)");
            if (!names.Contains(name, StringComparer.Ordinal)) names.Add(name);
        }
        return names;
    }

    private static ExplanationSettings ReadExplanation(string file, string kind, YMapping map, Dictionary<string, DetectionInfo> catalog)
    {
        var suppresses = new HashSet<string>(StringComparer.Ordinal);
        var grace = 0.0;
        foreach (var (k, v) in map.Entries)
        {
            switch (k.Value)
            {
                case "suppresses":
                    if (v is not YSequence seq) throw MonitorConfigException.At(file, v.Line, v.Column, $"explanations.{kind}.suppresses must be a list of detection ids");
                    foreach (var item in seq.Items)
                    {
                        var id = Scalar(file, item, $"explanations.{kind}.suppresses");
                        if (!catalog.TryGetValue(id, out var info))
                            throw MonitorConfigException.At(file, item.Line, item.Column, $"'{id}' is not a detection; known: {string.Join(", ", catalog.Keys.Order(StringComparer.Ordinal))}");
                        if (!info.Suppressible)
                            throw MonitorConfigException.At(file, item.Line, item.Column, $"{id} cannot be explained away: no care relationship makes it legitimate");
                        suppresses.Add(id);
                    }
                    break;
                case "grace-days":
                    grace = Number(file, v, $"explanations.{kind}.grace-days", 0, 365, integer: false);
                    break;
                default:
                    throw Unknown(file, k, "explanations." + kind, ["suppresses", "grace-days"]);
            }
        }
        return new ExplanationSettings(kind, suppresses, grace);
    }

    private static string Scalar(string file, YNode node, string where) =>
        node is YScalar s ? s.Value : throw MonitorConfigException.At(file, node.Line, node.Column, $"{where} must be a single value, not {node.Flow()}");

    private static YMapping Mapping(string file, YNode node, string where) =>
        node as YMapping ?? (node is YScalar { IsNull: true } ? new YMapping(node.Line, node.Column, []) : throw MonitorConfigException.At(file, node.Line, node.Column, $"{where} must be a mapping of names to values"));

    private static double Number(string file, YNode node, string where, double min, double max, bool integer)
    {
        var text = Scalar(file, node, where);
        if (!double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var value) || !double.IsFinite(value))
            throw MonitorConfigException.At(file, node.Line, node.Column, $"{where} must be a number, not '{text}'");
        if (value < min || value > max) throw MonitorConfigException.At(file, node.Line, node.Column, $"{where} must be between {min.ToString(CultureInfo.InvariantCulture)} and {max.ToString(CultureInfo.InvariantCulture)}, not {text}");
        if (integer && value != Math.Floor(value)) throw MonitorConfigException.At(file, node.Line, node.Column, $"{where} must be a whole number, not {text}");
        return value;
    }

    private static MonitorConfigException Unknown(string file, YScalar key, string where, IEnumerable<string> known) =>
        MonitorConfigException.At(file, key.Line, key.Column, $"'{key.Value}' is not known in {where}; known: {string.Join(", ", known)}");
}
