using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Wardline.Ledger;
using Wardline.Monitoring;
using Wardline.Server.Modules.Ledger.Export;

namespace Wardline.Server.Modules.Monitoring.Notifications;

/// <summary>
/// What each channel says of an alert: the detection and its fixed title, severity, user, patient id, times, counts and the
/// console link. Nothing else: a notification leaves the institution's systems, so it carries identifiers, never patient data.
/// The evidence in words stays in the console: some detections' evidence names a record's sensitive category ("labelled HIV")
/// or the departments treating the patient, which next to the patient's id is clinical information.
/// </summary>
internal static class AlertMessages
{
    public static string SeverityName(Severity s) => s switch
    {
        Severity.Low => "low",
        Severity.Medium => "medium",
        Severity.High => "high",
        Severity.Critical => "critical",
        _ => "unknown",
    };

    /// <summary>low, medium, high, critical to a Severity (the options were validated at start).</summary>
    public static Severity ParseSeverity(string name) => name switch
    {
        "low" => Severity.Low,
        "high" => Severity.High,
        "critical" => Severity.Critical,
        _ => Severity.Medium,
    };

    /// <summary>CEF severity 0-10: low 3, medium 5, high 8, critical 10 (syslog: informational, notice, warning, critical).</summary>
    public static int CefSeverity(Severity s) => s switch
    {
        Severity.Low => 3,
        Severity.Medium => 5,
        Severity.High => 8,
        Severity.Critical => 10,
        _ => 5,
    };

    public static string Subject(NotifiedAlert a) =>
        string.Create(CultureInfo.InvariantCulture, $"[Wardline] {Capitalised(SeverityName(a.Severity))} alert {a.Id}: {OneLine(a.Title)}");

    public static string EmailBody(NotifiedAlert a, string link) => string.Create(CultureInfo.InvariantCulture, $"""
        Wardline raised alert {a.Id}.

        Detection: {a.Title} ({a.Detection})
        Severity:  {SeverityName(a.Severity)}
        User:      {a.User}
        Patient:   {(a.Patient is null ? "-" : "Patient/" + a.Patient)}{(a.Patients > 1 ? $" and {a.Patients - 1} more" : "")}
        First:     {LedgerEntry.FormatTime(a.FirstAt)}
        Last:      {LedgerEntry.FormatTime(a.LastAt)}
        Entries:   {a.Entries}

        Review it in the console: {link}
        """);

    /// <summary>The webhook body: compact JSON, one object, fields in a fixed order.</summary>
    public static byte[] WebhookBody(NotifiedAlert a, string link)
    {
        using var buffer = new MemoryStream();
        using (var w = new Utf8JsonWriter(buffer))
        {
            w.WriteStartObject();
            w.WriteNumber("id", a.Id);
            w.WriteString("detection", a.Detection);
            w.WriteString("title", a.Title);
            w.WriteString("severity", SeverityName(a.Severity));
            w.WriteString("user", a.User);
            if (a.Patient is null) w.WriteNull("patient");
            else w.WriteString("patient", a.Patient);
            w.WriteString("firstAt", LedgerEntry.FormatTime(a.FirstAt));
            w.WriteString("lastAt", LedgerEntry.FormatTime(a.LastAt));
            w.WriteString("status", a.Status);
            w.WriteNumber("patients", a.Patients);
            w.WriteNumber("entries", a.Entries);
            w.WriteString("url", link);
            w.WriteEndObject();
        }
        return buffer.ToArray();
    }

    /// <summary>"sha256=" and the lowercase hex HMAC-SHA256, keyed by the secret, of the timestamp, a dot and the body.</summary>
    public static string Signature(string secret, long timestamp, ReadOnlySpan<byte> body)
    {
        var prefix = Encoding.ASCII.GetBytes(timestamp.ToString(CultureInfo.InvariantCulture) + ".");
        var signed = new byte[prefix.Length + body.Length];
        prefix.CopyTo(signed, 0);
        body.CopyTo(signed.AsSpan(prefix.Length));
        return "sha256=" + Convert.ToHexStringLower(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed));
    }

    /// <summary>The RFC 5424 message (unframed) with the alert as a CEF event, escaped as the ledger export escapes its events.</summary>
    public static string Syslog(NotifiedAlert a, string hostName, string link)
    {
        var severity = CefSeverity(a.Severity);
        var sb = new StringBuilder(256);
        sb.Append("CEF:0|Wardline|Wardline|1.0|")
            .Append(SiemFormat.EscapeHeader("alert:" + a.Detection)).Append('|')
            .Append(SiemFormat.EscapeHeader(a.Title)).Append('|')
            .Append(severity.ToString(CultureInfo.InvariantCulture)).Append('|');
        var first = true;
        void Add(string key, string? value)
        {
            if (value is null) return;
            if (!first) sb.Append(' ');
            first = false;
            sb.Append(key).Append('=').Append(SiemFormat.EscapeExtension(value));
        }
        void Labelled(string key, string label, string? value)
        {
            if (value is null) return;
            Add(key + "Label", label);
            Add(key, value);
        }
        Add("rt", a.LastAt.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
        Add("start", a.FirstAt.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
        Add("end", a.LastAt.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
        Add("cat", "alert");
        Add("suser", a.User);
        Labelled("cs1", "detection", a.Detection);
        Labelled("cs2", "status", a.Status);
        Labelled("cs3", "patient", a.Patient);
        Labelled("cn1", "alertId", a.Id.ToString(CultureInfo.InvariantCulture));
        Labelled("cn2", "patients", a.Patients.ToString(CultureInfo.InvariantCulture));
        Labelled("cn3", "entries", a.Entries.ToString(CultureInfo.InvariantCulture));
        Add("request", link);
        return SiemFormat.Message(a.LastAt, hostName, "alert", "alert", a.Id, severity, sb.ToString());
    }

    private static string Capitalised(string s) => s.Length == 0 ? s : char.ToUpperInvariant(s[0]) + s[1..];

    private static string OneLine(string s) => s.Replace('\r', ' ').Replace('\n', ' ');
}
