using System.Text;
using System.Text.Json;
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

    private static readonly FhirJsonSerializer Serializer = new();

    public static ParseResult Parse(ReadOnlySpan<byte> utf8)
    {
        var issues = new List<string>();
        try
        {
            var reader = new Utf8JsonReader(utf8, new JsonReaderOptions { MaxDepth = MaxDepth, CommentHandling = JsonCommentHandling.Disallow });
            var resource = Deserializer.DeserializeResource(ref reader);
            return ParseResult.Ok(resource);
        }
        catch (DeserializationFailedException ex)
        {
            foreach (var e in ex.Exceptions)
            {
                issues.Add(Describe(e));
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

    public static string SerializeToString(Base value) => Serializer.SerializeToString(value);

    private static string Describe(CodedException e)
    {
        // Firely's messages name the element path and the rule; values are not quoted for the
        // structural errors we allow through. We still cut them to stay well clear of content.
        return Sanitize(e.Message);
    }

    /// <summary>Keeps an error message short and free of quoted values (which could hold patient data).</summary>
    internal static string Sanitize(string message)
    {
        var sb = new StringBuilder(message.Length);
        var inQuote = false;
        foreach (var ch in message)
        {
            if (ch is '\'' or '"')
            {
                if (!inQuote)
                {
                    sb.Append("'…'");
                }
                inQuote = !inQuote;
                continue;
            }
            if (!inQuote)
            {
                sb.Append(ch);
            }
        }
        var text = sb.ToString();
        return text.Length > 300 ? string.Concat(text.AsSpan(0, 300), "…") : text;
    }
}

internal sealed record ParseResult(Resource? Resource, IReadOnlyList<string> Issues)
{
    public static ParseResult Ok(Resource r) => new(r, []);
    public static ParseResult Fail(IReadOnlyList<string> issues) => new(null, issues);
}
