using System.Buffers;
using System.Globalization;
using System.Text.Json;

namespace Wardline.Server.Modules.Records;

/// <summary>
/// Writes response Bundles directly as JSON, splicing in each resource's stored (decrypted)
/// bytes without re-parsing them: a search page costs a decrypt per entry and nothing more.
/// </summary>
internal sealed class BundleWriter : IDisposable
{
    private readonly ArrayBufferWriter<byte> _buffer = new(16 * 1024);
    private readonly Utf8JsonWriter _w;
    private bool _inEntries;

    public BundleWriter(string type, int? total, DateTimeOffset now)
    {
        // Relaxed escaping is safe here: the body is served as application/fhir+json, never as HTML.
        _w = new Utf8JsonWriter(_buffer, new JsonWriterOptions { SkipValidation = true, Encoder = System.Text.Encodings.Web.JavaScriptEncoder.UnsafeRelaxedJsonEscaping });
        _w.WriteStartObject();
        _w.WriteString("resourceType", "Bundle");
        _w.WriteString("id", Guid.NewGuid().ToString());
        _w.WriteStartObject("meta");
        _w.WriteString("lastUpdated", now.ToString("yyyy-MM-ddTHH:mm:ss.fffzzz", CultureInfo.InvariantCulture));
        _w.WriteEndObject();
        _w.WriteString("type", type);
        if (total is not null)
        {
            _w.WriteNumber("total", total.Value);
        }
    }

    public void Links(IEnumerable<(string Relation, string Url)> links)
    {
        _w.WriteStartArray("link");
        foreach (var (rel, url) in links)
        {
            _w.WriteStartObject();
            _w.WriteString("relation", rel);
            _w.WriteString("url", url);
            _w.WriteEndObject();
        }
        _w.WriteEndArray();
    }

    /// <summary>Writes one entry. Any of the parts may be absent; <paramref name="response"/> writes the response object's fields.</summary>
    public void Entry(string? fullUrl, byte[]? resource, string? searchMode = null, (string Method, string Url)? request = null, Action<Utf8JsonWriter>? response = null)
    {
        if (!_inEntries)
        {
            _w.WriteStartArray("entry");
            _inEntries = true;
        }
        _w.WriteStartObject();
        if (fullUrl is not null) _w.WriteString("fullUrl", fullUrl);
        if (resource is not null)
        {
            _w.WritePropertyName("resource");
            _w.WriteRawValue(resource, skipInputValidation: true);
        }
        if (searchMode is not null)
        {
            _w.WriteStartObject("search");
            _w.WriteString("mode", searchMode);
            _w.WriteEndObject();
        }
        if (request is { } rq)
        {
            _w.WriteStartObject("request");
            _w.WriteString("method", rq.Method);
            _w.WriteString("url", rq.Url);
            _w.WriteEndObject();
        }
        if (response is not null)
        {
            _w.WriteStartObject("response");
            response(_w);
            _w.WriteEndObject();
        }
        _w.WriteEndObject();
    }

    public byte[] Finish()
    {
        if (_inEntries) _w.WriteEndArray();
        _w.WriteEndObject();
        _w.Flush();
        return _buffer.WrittenSpan.ToArray();
    }

    public static string Instant(long unixMs) =>
        DateTimeOffset.FromUnixTimeMilliseconds(unixMs).ToString("yyyy-MM-ddTHH:mm:ss.fffzzz", CultureInfo.InvariantCulture);

    public void Dispose() => _w.Dispose();
}
