using System.Globalization;
using System.Text.Json;
using Hl7.Fhir.Introspection;
using Hl7.Fhir.Model;
using Hl7.Fhir.Serialization;
using Hl7.Fhir.Utility;

namespace Wardline.Server.Modules.Records;

/// <summary>
/// The one place that parses and writes FHIR JSON. Parsing is strict: every structural and
/// cardinality problem Firely finds is collected and reported, none is silently dropped.
/// </summary>
internal static class FhirJson
{
    /// <summary>Nesting deeper than this is refused before Firely sees it (a cheap guard against stack abuse).</summary>
    public const int MaxDepth = 64;

    private static readonly FhirJsonDeserializer Deserializer =
        new(new DeserializerSettings().UsingMode(DeserializationMode.Strict));

    /// <summary>For content Wardline itself stored (validated strictly when it was written): no validation, the same model.</summary>
    private static readonly FhirJsonDeserializer StoredDeserializer =
        new(new DeserializerSettings().UsingMode(DeserializationMode.Ostrich));

    private static readonly FhirJsonSerializer Serializer = new();

    /// <summary>
    /// Content Wardline stored itself, parsed without validating it again (it was parsed strictly, then serialized by
    /// <see cref="Serialize"/>, when it was written): for checks that re-derive what was derived at write time. Null
    /// where it does not parse at all.
    /// </summary>
    public static Resource? ParseStored(ReadOnlySpan<byte> utf8)
    {
        try
        {
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = MaxDepth });
            return StoredDeserializer.DeserializeResource(ref reader);
        }
        catch (Exception ex) when (ex is DeserializationFailedException or JsonException or FormatException or InvalidOperationException)
        {
            return null;
        }
    }

    public static ParseResult Parse(ReadOnlySpan<byte> utf8)
    {
        var issues = new List<string>();
        try
        {
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = MaxDepth, CommentHandling = JsonCommentHandling.Disallow });
            var resource = Deserializer.DeserializeResource(ref reader);
            // Firely stops at the end of the resource; anything after it (a second value, stray
            // text) makes the body malformed. Read() throws on non-whitespace trailing content.
            if (reader.Read())
            {
                return ParseResult.Fail(["Malformed JSON: there is content after the resource."]);
            }
            return ParseResult.Ok(resource);
        }
        catch (DeserializationFailedException ex)
        {
            var rootType = RootType(utf8);
            foreach (var e in ex.Exceptions)
            {
                issues.Add(Describe(e, rootType));
            }
            if (issues.Count == 0)
            {
                issues.Add("The resource could not be parsed.");
            }
            return ParseResult.Fail(issues);
        }
        catch (JsonException ex)
        {
            // System.Text.Json messages name the line and byte position and never echo the value.
            return ParseResult.Fail([$"Malformed JSON: {Sanitize(ex.Message)}"]);
        }
        catch (FormatException ex)
        {
            return ParseResult.Fail([$"Malformed JSON: {Sanitize(ex.Message)}"]);
        }
        catch (InvalidOperationException ex)
        {
            return ParseResult.Fail([$"Malformed JSON: {Sanitize(ex.Message)}"]);
        }
    }

    public static byte[] Serialize(Resource resource) => Serializer.SerializeToBytes(resource);

    private static string Describe(CodedException e, string? rootType)
    {
        if (e is not ExtendedCodedException x)
        {
            return Sanitize(e.Message);
        }
        // Firely quotes values and unknown element names in its message and appends the path,
        // which may run through an unknown element: a property name can carry patient data as
        // well as a value can ("JohannaSmithers": true). So the path is cut at the first segment
        // that is not an element of the FHIR model, and quoted parts of the message are dropped
        // unless they name an element of the type the path ends at (a missing required element).
        var (path, mapping) = SafePath(Rooted(x.InstancePath, rootType));
        var message = Sanitize(x.BaseErrorMessage, quoted =>
        {
            if (quoted.Contains('.', StringComparison.Ordinal))
            {
                var (quotedPath, _) = SafePath(Rooted(quoted, rootType));
                return quotedPath.Contains('…', StringComparison.Ordinal) ? null : quotedPath;
            }
            return mapping is not null && FindElement(mapping, quoted) is not null ? quoted : null;
        });
        var at = x.LineNumber is { } line && x.Position is { } pos
            ? string.Create(CultureInfo.InvariantCulture, $" (line {line}, position {pos})")
            : "";
        return path.Length == 0 ? message + at : $"{path}: {message}{at}";
    }

    /// <summary>Firely names the root of some paths $this; the resource type reads better.</summary>
    private static string? Rooted(string? path, string? rootType) =>
        rootType is not null && path is not null && (path == "$this" || path.StartsWith("$this.", StringComparison.Ordinal)) ? rootType + path[5..] : path;

    /// <summary>The resourceType of a top-level JSON object, or null.</summary>
    private static string? RootType(ReadOnlySpan<byte> utf8)
    {
        try
        {
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = MaxDepth });
            if (!reader.Read() || reader.TokenType != JsonTokenType.StartObject) return null;
            while (reader.Read() && reader.TokenType == JsonTokenType.PropertyName)
            {
                var isType = reader.ValueTextEquals("resourceType"u8);
                reader.Read();
                if (isType) return reader.TokenType == JsonTokenType.String ? reader.GetString() : null;
                reader.Skip();
            }
        }
        catch (JsonException)
        {
        }
        return null;
    }

    /// <summary>The instance path up to its first segment that is not an element of the FHIR model, and the type it ends at.</summary>
    private static (string Path, ClassMapping? EndsAt) SafePath(string? path)
    {
        if (string.IsNullOrEmpty(path))
        {
            return ("", null);
        }
        var inspector = ModelInfo.ModelInspector;
        var kept = new List<string>();
        ClassMapping? current = null;
        foreach (var segment in path.Split('.'))
        {
            var bracket = segment.IndexOf('[', StringComparison.Ordinal);
            var name = bracket < 0 ? segment : segment[..bracket];
            var next = kept.Count == 0
                ? inspector.FindClassMapping(name) is { IsResource: true } root ? root : null
                : current is null ? null : ChildType(inspector, current, name);
            if (next is null)
            {
                kept.Add("…");
                return (string.Join('.', kept), null);
            }
            kept.Add(segment);
            current = next;
        }
        return (string.Join('.', kept), current);
    }

    private static PropertyMapping? FindElement(ClassMapping mapping, string name) =>
        mapping.FindMappedElementByName(name) ?? mapping.FindMappedElementByChoiceName(name);

    private static ClassMapping? ChildType(ModelInspector inspector, ClassMapping parent, string name)
    {
        if (FindElement(parent, name) is not { } element)
        {
            return null;
        }
        if (name.Length > element.Name.Length && name.StartsWith(element.Name, StringComparison.Ordinal))
        {
            // A choice element such as valueString: the suffix names the type.
            var suffix = name[element.Name.Length..];
            return inspector.FindClassMapping(suffix) ?? inspector.FindClassMapping(char.ToLowerInvariant(suffix[0]) + suffix[1..]);
        }
        return inspector.FindOrImportClassMapping(element.ImplementingType);
    }

    /// <summary>
    /// Keeps an error message short and free of quoted values (which could hold patient data). A message with one quoted part
    /// shows it only as <paramref name="quotedAs"/> allows; any other number of quote characters means a value held quotes of
    /// its own (O'Brien), so quotes no longer pair up: everything from the first to the last is hidden.
    /// </summary>
    /// <param name="quotedAs">What a quoted part may be shown as (null: hidden).</param>
    internal static string Sanitize(string message, Func<string, string?>? quotedAs = null)
    {
        var first = message.AsSpan().IndexOfAny('\'', '"');
        var last = message.AsSpan().LastIndexOfAny('\'', '"');
        var result = first < 0 ? message
            : first == last ? string.Concat(message.AsSpan(0, first), "'…")
            : message.AsSpan(first + 1, last - first - 1).IndexOfAny('\'', '"') < 0
                ? $"{message[..first]}'{quotedAs?.Invoke(message[(first + 1)..last]) ?? "…"}'{message[(last + 1)..]}"
                : $"{message[..first]}'…'{message[(last + 1)..]}";
        return result.Length > 300 ? string.Concat(result.AsSpan(0, 300), "…") : result;
    }
}

internal sealed record ParseResult(Resource? Resource, IReadOnlyList<string> Issues)
{
    public static ParseResult Ok(Resource r) => new(r, []);
    public static ParseResult Fail(IReadOnlyList<string> issues) => new(null, issues);
}
