using System.Globalization;
using System.Net;
using System.Text;
using Wardline.Ledger;

namespace Wardline.Server.Modules.Ledger.Export;

/// <summary>
/// How a ledger entry looks to a SIEM. "syslog-cef": an RFC 5424 message whose MSG is an ArcSight CEF
/// event, framed for TCP by RFC 6587 octet counting ("LEN SP MSG", no trailer), so a value may hold any
/// character. "jsonl": {"idx":N,"entry":CANONICAL}\n, the entry's canonical bytes verbatim, so a reader
/// can hash them and check the leaf against a signed tree head.
/// </summary>
internal static class SiemFormat
{
    /// <summary>IANA's example enterprise number (RFC 5612), the SD-ID Wardline's structured data uses.</summary>
    public const string StructuredDataId = "wardline@32473";

    /// <summary>Syslog facility 13, "log audit".</summary>
    private const int Facility = 13;

    private static readonly UTF8Encoding Utf8 = new(encoderShouldEmitUTF8Identifier: false);

    /// <summary>The RFC 5424 message for entry <paramref name="index"/> (without framing).</summary>
    public static string Syslog(long index, LedgerEntry e, string hostName)
    {
        var severity = Severity(e);
        var pri = Facility * 8 + SyslogSeverity(severity);
        return string.Create(CultureInfo.InvariantCulture,
            $"<{pri}>1 {LedgerEntry.FormatTime(e.At)} {hostName} wardline - ledger [{StructuredDataId} idx=\"{index}\"] {Cef(index, e, severity)}");
    }

    /// <summary>
    /// An RFC 5424 message of Wardline's own that is not a ledger entry (an alert): facility log audit, the syslog severity of
    /// <paramref name="cefSeverity"/>, app "wardline", <paramref name="msgId"/>, one numeric structured-data parameter, the CEF event.
    /// </summary>
    public static string Message(DateTimeOffset at, string hostName, string msgId, string param, long value, int cefSeverity, string cef) =>
        string.Create(CultureInfo.InvariantCulture,
            $"<{Facility * 8 + SyslogSeverity(cefSeverity)}>1 {LedgerEntry.FormatTime(at)} {hostName} wardline - {msgId} [{StructuredDataId} {param}=\"{value}\"] {cef}");

    /// <summary>RFC 6587 octet counting: the message's length in bytes, a space, the message.</summary>
    public static byte[] Frame(string message)
    {
        var length = Utf8.GetByteCount(message);
        var prefix = length.ToString(CultureInfo.InvariantCulture) + " ";
        var frame = new byte[prefix.Length + length];
        Encoding.ASCII.GetBytes(prefix, frame);
        Utf8.GetBytes(message, frame.AsSpan(prefix.Length));
        return frame;
    }

    /// <summary>One jsonl line: the index and the canonical entry bytes, unchanged (they are compact JSON with no raw newline).</summary>
    public static byte[] JsonLine(long index, ReadOnlySpan<byte> canonical)
    {
        var head = Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture, $"{{\"idx\":{index},\"entry\":"));
        var line = new byte[head.Length + canonical.Length + 2];
        head.CopyTo(line, 0);
        canonical.CopyTo(line.AsSpan(head.Length));
        line[^2] = (byte)'}';
        line[^1] = (byte)'\n';
        return line;
    }

    /// <summary>The CEF event: fixed header, then the entry's fields as extensions in a fixed order, free text (msg) last.</summary>
    public static string Cef(long index, LedgerEntry e, int severity)
    {
        var sb = new StringBuilder(256);
        sb.Append("CEF:0|Wardline|Wardline|1.0|")
            .Append(EscapeHeader($"{e.Type}:{e.Event ?? "-"}")).Append('|')
            .Append(EscapeHeader(Name(e))).Append('|')
            .Append(severity.ToString(CultureInfo.InvariantCulture)).Append('|');
        var first = true;
        void Add(string key, string? value)
        {
            if (value is null) return;
            if (!first) sb.Append(' ');
            first = false;
            sb.Append(key).Append('=').Append(EscapeExtension(value));
        }
        // The account the entry is about is the destination user when someone else (an administrator, the operator) acted.
        var byOther = e.Actor is not null && e.User is not null && e.Actor != e.User;
        Add("rt", e.At.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture));
        Add("cat", e.Type);
        Add("act", e.Type == "access" ? e.Action : e.Event);
        Add("outcome", e.Permitted switch { true => "permitted", false => "denied", null => e.Outcome });
        Add("suser", byOther ? e.Actor : e.User ?? e.Actor);
        Add("duser", byOther ? e.User : null);
        Add("spriv", e.Roles is { Count: > 0 } roles ? string.Join(",", roles) : null);
        Add("src", e.Source is { } s && IPAddress.TryParse(s, out _) ? s : null);
        Labelled("cs1", "rule", e.Rule);
        Labelled("cs2", "purpose", e.Purpose);
        Labelled("cs3", "patient", e.Patient);
        Labelled("cs4", "resource", e.Resource);
        Labelled("cs5", "correlation", e.Correlation);
        Labelled("cs6", "client", e.Client);
        Labelled("cn1", "ledgerIndex", index.ToString(CultureInfo.InvariantCulture));
        Labelled("cn2", "status", e.Status?.ToString(CultureInfo.InvariantCulture));
        Add("fileHash", e.Sha256);
        Add("msg", e.Reason ?? e.Detail);
        return sb.ToString();

        void Labelled(string key, string label, string? value)
        {
            if (value is null) return;
            Add(key + "Label", label);
            Add(key, value);
        }
    }

    /// <summary>The event's name: what a SIEM analyst reads first.</summary>
    private static string Name(LedgerEntry e) => e.Type switch
    {
        "access" => string.Join(' ', new[] { e.Action, e.Event, e.Permitted switch { true => "permitted", false => "denied", null => null } }.OfType<string>()),
        "write" => $"{e.Event} {LedgerRow.SplitResource(e.Resource).Type}".Trim(),
        _ => string.Join(' ', new[] { e.Event, e.Outcome }.OfType<string>()),
    };

    /// <summary>
    /// CEF severity 0-10: routine entries 3; a failed or refused sign-in, MFA or token 6; a denied access 7;
    /// anything under or about break-glass, and a lockout, 8.
    /// </summary>
    public static int Severity(LedgerEntry e) => e.Type switch
    {
        "access" when e.Purpose == "ETREAT" => 8,
        "access" when e.Permitted == false => 7,
        "security" => e.Event switch
        {
            "BreakGlassDeclared" or "BreakGlassReviewed" or "Lockout" => 8,
            "SignInFailed" or "MfaFailed" or "TokenRejected" or "PolicyRejected" => 6,
            "NotificationFailed" or "MfaReset" or "AccountDisabled" => 5,
            _ => 3,
        },
        "write" when e.Event == "delete" => 4,
        "system" when e.Outcome is "failed" or "failure" => 6,
        _ => 3,
    };

    /// <summary>CEF's bands to syslog's severities: low (0-3) informational, medium (4-6) notice, high (7-8) warning, very high (9-10) critical.</summary>
    public static int SyslogSeverity(int cefSeverity) => cefSeverity switch
    {
        <= 3 => 6,
        <= 6 => 5,
        <= 8 => 4,
        _ => 2,
    };

    /// <summary>CEF header fields: backslash and pipe are escaped with a backslash; a header cannot hold a line break, so one becomes a space.</summary>
    public static string EscapeHeader(string value)
    {
        var sb = new StringBuilder(value.Length + 8);
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\': sb.Append(@"\\"); break;
                case '|': sb.Append(@"\|"); break;
                case '\r' or '\n': sb.Append(' '); break;
                default: sb.Append(c); break;
            }
        }
        return sb.ToString();
    }

    /// <summary>CEF extension values: backslash and '=' are escaped with a backslash, CR and LF become \r and \n; a pipe needs no escape.</summary>
    public static string EscapeExtension(string value)
    {
        var sb = new StringBuilder(value.Length + 8);
        foreach (var c in value)
        {
            switch (c)
            {
                case '\\': sb.Append(@"\\"); break;
                case '=': sb.Append(@"\="); break;
                case '\r': sb.Append(@"\r"); break;
                case '\n': sb.Append(@"\n"); break;
                default: sb.Append(c); break;
            }
        }
        return sb.ToString();
    }

    /// <summary>An RFC 5424 HOSTNAME: printable US-ASCII without spaces, at most 255 characters; "-" (the nil value) when nothing is left.</summary>
    public static string HostName(string? name)
    {
        var kept = new string((name ?? "").Where(c => c is > ' ' and <= '~').Take(255).ToArray());
        return kept.Length == 0 ? "-" : kept;
    }
}
