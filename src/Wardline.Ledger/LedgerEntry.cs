using System.Globalization;
using System.Text;
using System.Text.Json;

namespace Wardline.Ledger;

/// <summary>
/// One ledger entry (docs/formats/ledger-entry.md): identifiers of who did what to which record, when
/// and why, never clinical content. Its canonical form is compact UTF-8 JSON with the members in a fixed
/// order and absent members left out; the leaf hash covers exactly those bytes, so <see cref="Decode"/>
/// accepts only canonical bytes.
/// </summary>
public sealed record LedgerEntry
{
    public const int FormatVersion = 1;

    /// <summary>access, security, write or system.</summary>
    public required string Type { get; init; }

    public required DateTimeOffset At { get; init; }

    /// <summary>What happened within the type: an access's phase (decision, outcome, request, review, explain), a security event's kind, a write's create/update/delete.</summary>
    public string? Event { get; init; }

    /// <summary>The account the entry is about: who accessed, signed in, or wrote.</summary>
    public string? User { get; init; }

    public IReadOnlyList<string>? Roles { get; init; }

    public IReadOnlyList<string>? Departments { get; init; }

    /// <summary>The OAuth client (application) the request came through.</summary>
    public string? Client { get; init; }

    /// <summary>Who caused a security event, when not the user themself (an administrator, the CLI operator).</summary>
    public string? Actor { get; init; }

    /// <summary>The patient whose record was touched, as "Patient/id".</summary>
    public string? Patient { get; init; }

    /// <summary>"Type", "Type/id" or "Type/id/_history/version".</summary>
    public string? Resource { get; init; }

    public string? Action { get; init; }

    public string? Purpose { get; init; }

    public bool? Permitted { get; init; }

    public string? Rule { get; init; }

    public string? Reason { get; init; }

    /// <summary>The HTTP status the request ended with.</summary>
    public int? Status { get; init; }

    /// <summary>A security event's outcome (success, failure, ...).</summary>
    public string? Outcome { get; init; }

    public string? Detail { get; init; }

    /// <summary>A write's SHA-256 of the stored version's canonical bytes, lowercase hex.</summary>
    public string? Sha256 { get; init; }

    public string? Source { get; init; }

    public string? Correlation { get; init; }

    private static readonly string[] Members =
        ["v", "type", "at", "event", "user", "roles", "departments", "client", "actor", "patient", "resource", "action",
         "purpose", "permitted", "rule", "reason", "status", "outcome", "detail", "sha256", "source", "correlation"];

    public byte[] Encode()
    {
        if (string.IsNullOrEmpty(Type)) throw new LedgerFormatException("An entry needs a type.");
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("v", FormatVersion);
            w.WriteString("type", Checked("type", Type));
            w.WriteString("at", FormatTime(At));
            Str(w, "event", Event);
            Str(w, "user", User);
            List(w, "roles", Roles);
            List(w, "departments", Departments);
            Str(w, "client", Client);
            Str(w, "actor", Actor);
            Str(w, "patient", Patient);
            Str(w, "resource", Resource);
            Str(w, "action", Action);
            Str(w, "purpose", Purpose);
            if (Permitted is { } permitted) w.WriteBoolean("permitted", permitted);
            Str(w, "rule", Rule);
            Str(w, "reason", Reason);
            if (Status is { } status) w.WriteNumber("status", status);
            Str(w, "outcome", Outcome);
            Str(w, "detail", Detail);
            Str(w, "sha256", Sha256);
            Str(w, "source", Source);
            Str(w, "correlation", Correlation);
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    /// <summary>Reads canonical bytes back; anything else (other order, spacing, unknown members, another version) is refused.</summary>
    public static LedgerEntry Decode(ReadOnlySpan<byte> bytes)
    {
        LedgerEntry entry;
        try
        {
            entry = Read(bytes);
        }
        catch (Exception ex) when (ex is JsonException or FormatException or InvalidOperationException or OverflowException)
        {
            throw new LedgerFormatException($"Not a ledger entry: {ex.Message}", ex);
        }
        if (!bytes.SequenceEqual(entry.Encode())) throw new LedgerFormatException("The entry is not in canonical form.");
        return entry;
    }

    private static LedgerEntry Read(ReadOnlySpan<byte> bytes)
    {
        var r = new Utf8JsonReader(bytes);
        if (!r.Read() || r.TokenType != JsonTokenType.StartObject) throw new FormatException("an entry is a JSON object");
        var values = new Dictionary<string, object?>(StringComparer.Ordinal);
        while (r.Read() && r.TokenType != JsonTokenType.EndObject)
        {
            var name = r.GetString()!;
            if (Array.IndexOf(Members, name) < 0) throw new FormatException($"unknown member '{name}'");
            if (!r.Read()) throw new FormatException("truncated");
            values[name] = r.TokenType switch
            {
                JsonTokenType.String => r.GetString(),
                JsonTokenType.Number => r.GetInt32(),
                JsonTokenType.True => true,
                JsonTokenType.False => false,
                JsonTokenType.StartArray => ReadList(ref r),
                _ => throw new FormatException($"member '{name}' has an unexpected value"),
            };
        }
        if (values.GetValueOrDefault("v") is not int v || v != FormatVersion) throw new FormatException($"format version must be {FormatVersion}");
        return new LedgerEntry
        {
            Type = values.GetValueOrDefault("type") as string ?? throw new FormatException("no type"),
            At = ParseTime(values.GetValueOrDefault("at") as string ?? throw new FormatException("no time")),
            Event = S(values, "event"),
            User = S(values, "user"),
            Roles = values.GetValueOrDefault("roles") as List<string>,
            Departments = values.GetValueOrDefault("departments") as List<string>,
            Client = S(values, "client"),
            Actor = S(values, "actor"),
            Patient = S(values, "patient"),
            Resource = S(values, "resource"),
            Action = S(values, "action"),
            Purpose = S(values, "purpose"),
            Permitted = values.GetValueOrDefault("permitted") as bool?,
            Rule = S(values, "rule"),
            Reason = S(values, "reason"),
            Status = values.GetValueOrDefault("status") as int?,
            Outcome = S(values, "outcome"),
            Detail = S(values, "detail"),
            Sha256 = S(values, "sha256"),
            Source = S(values, "source"),
            Correlation = S(values, "correlation"),
        };
    }

    private static List<string> ReadList(ref Utf8JsonReader r)
    {
        var list = new List<string>();
        while (r.Read() && r.TokenType != JsonTokenType.EndArray)
        {
            if (r.TokenType != JsonTokenType.String) throw new FormatException("lists hold strings");
            list.Add(r.GetString()!);
        }
        return list;
    }

    private static string? S(Dictionary<string, object?> values, string name) =>
        values.GetValueOrDefault(name) switch
        {
            null => null,
            string s => s,
            _ => throw new FormatException($"member '{name}' must be a string"),
        };

    private static void Str(Utf8JsonWriter w, string name, string? value)
    {
        if (value is not null) w.WriteString(name, Checked(name, value));
    }

    private static void List(Utf8JsonWriter w, string name, IReadOnlyList<string>? values)
    {
        if (values is null) return;
        w.WriteStartArray(name);
        foreach (var v in values) w.WriteStringValue(Checked(name, v));
        w.WriteEndArray();
    }

    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    /// <summary>
    /// Refuses text that is not valid UTF-16 (a lone surrogate): the writer would record it as U+FFFD, so
    /// different entries would share one canonical form and one leaf hash.
    /// </summary>
    private static string Checked(string name, string value)
    {
        try
        {
            StrictUtf8.GetByteCount(value);
        }
        catch (EncoderFallbackException ex)
        {
            throw new LedgerFormatException($"Member '{name}' is not valid Unicode text.", ex);
        }
        return value;
    }

    /// <summary>UTC to the millisecond, always 24 characters: 2026-11-29T04:05:06.789Z.</summary>
    public static string FormatTime(DateTimeOffset at) =>
        DateTimeOffset.FromUnixTimeMilliseconds(at.ToUnixTimeMilliseconds()).UtcDateTime.ToString("yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture);

    private static DateTimeOffset ParseTime(string s) =>
        DateTimeOffset.ParseExact(s, "yyyy-MM-dd'T'HH:mm:ss.fff'Z'", CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal);

    /// <summary>The entry as text, for a human or a SIEM: the canonical bytes are UTF-8 JSON.</summary>
    public override string ToString() => Encoding.UTF8.GetString(Encode());
}

/// <summary>Bytes that are not a canonical ledger entry or tree head.</summary>
public sealed class LedgerFormatException : Exception
{
    public LedgerFormatException(string message) : base(message)
    {
    }

    public LedgerFormatException(string message, Exception inner) : base(message, inner)
    {
    }
}
