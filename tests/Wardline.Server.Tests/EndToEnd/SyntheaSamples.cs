using System.Text.Json;

namespace Wardline.Server.Tests.EndToEnd;

/// <summary>
/// The 40 Synthea transaction Bundles in TestData/synthea (see its README), and facts derived from
/// them by reading the JSON directly, independently of Wardline's own parser.
/// </summary>
public static class SyntheaSamples
{
    public static string Folder { get; } = Path.Combine(AppContext.BaseDirectory, "TestData", "synthea");

    /// <summary>The bundle files, in ordinal order (some names are non-ASCII UTF-8).</summary>
    public static IReadOnlyList<string> Files { get; } =
        [.. Directory.EnumerateFiles(Folder, "*.json").Order(StringComparer.Ordinal)];

    private static readonly Lazy<Facts> Parsed = new(Parse);

    /// <summary>Entries over all files (8,838).</summary>
    public static int EntryCount => Parsed.Value.Entries;

    /// <summary>Distinct resource ids per resource type: what a correct import stores.</summary>
    public static IReadOnlyDictionary<string, int> DistinctIdsByType => Parsed.Value.DistinctIds;

    /// <summary>
    /// Patient-identifying and diagnostic text, with a category for each (never printed): patient
    /// names (given and family), identifier values, birth dates, telecom values, address lines, and
    /// Condition code.text and coding.display.
    /// </summary>
    public static IReadOnlyDictionary<string, string> SecretValues => Parsed.Value.Secrets;

    private sealed record Facts(int Entries, Dictionary<string, int> DistinctIds, Dictionary<string, string> Secrets);

    private static Facts Parse()
    {
        var entries = 0;
        var ids = new Dictionary<string, HashSet<string>>(StringComparer.Ordinal);
        var secrets = new Dictionary<string, string>(StringComparer.Ordinal);
        void Add(string category, JsonElement value)
        {
            if (value.ValueKind == JsonValueKind.String && value.GetString() is { Length: > 0 } s) secrets.TryAdd(s, category);
        }
        foreach (var file in Files)
        {
            using var doc = JsonDocument.Parse(File.ReadAllBytes(file));
            foreach (var entry in doc.RootElement.GetProperty("entry").EnumerateArray())
            {
                entries++;
                var r = entry.GetProperty("resource");
                var type = r.GetProperty("resourceType").GetString()!;
                if (!ids.TryGetValue(type, out var set)) ids[type] = set = new HashSet<string>(StringComparer.Ordinal);
                set.Add(r.GetProperty("id").GetString()!);
                if (type == "Patient")
                {
                    foreach (var name in Array(r, "name"))
                    {
                        if (name.TryGetProperty("family", out var family)) Add("name", family);
                        foreach (var given in Array(name, "given")) Add("name", given);
                    }
                    foreach (var identifier in Array(r, "identifier")) Add("identifier", identifier.GetProperty("value"));
                    if (r.TryGetProperty("birthDate", out var birthDate)) Add("birth date", birthDate);
                    foreach (var telecom in Array(r, "telecom")) Add("telecom", telecom.GetProperty("value"));
                    foreach (var address in Array(r, "address"))
                    {
                        foreach (var line in Array(address, "line")) Add("address line", line);
                    }
                }
                else if (type == "Condition" && r.TryGetProperty("code", out var code))
                {
                    if (code.TryGetProperty("text", out var text)) Add("condition text", text);
                    foreach (var coding in Array(code, "coding"))
                    {
                        if (coding.TryGetProperty("display", out var display)) Add("condition display", display);
                    }
                }
            }
        }
        return new Facts(entries, ids.ToDictionary(kv => kv.Key, kv => kv.Value.Count, StringComparer.Ordinal), secrets);
    }

    private static IEnumerable<JsonElement> Array(JsonElement parent, string name) =>
        parent.TryGetProperty(name, out var a) && a.ValueKind == JsonValueKind.Array ? a.EnumerateArray() : [];
}
