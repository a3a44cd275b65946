using MimeKit;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Ledger.Export;

namespace Wardline.Server.Modules.Monitoring;

/// <summary>
/// Where new alerts are announced, bound from <c>Wardline:Monitoring:Notify</c>. E-mail goes through the
/// SMTP server of <c>Wardline:Access:Notify</c>; webhooks are signed with HMAC-SHA256; syslog goes to a SIEM.
/// Each channel takes alerts of <see cref="MinSeverity"/> and above. A notification that cannot be delivered
/// is kept and retried (back-off from <see cref="RetrySeconds"/> doubling to an hour) until it is delivered or
/// <see cref="MaxAttempts"/> is reached (docs: Modules/Monitoring/Notifications/README.md).
/// </summary>
public sealed class MonitoringNotifyOptions
{
    public IList<string> Emails { get; } = [];

    /// <summary>HTTPS (or, for tests and local relays, http://127.0.0.1) URLs that receive a signed JSON POST per alert.</summary>
    public IList<string> Webhooks { get; } = [];

    /// <summary>The shared secret webhooks are signed with (HMAC-SHA256 over the timestamp and body); required with webhooks.</summary>
    public string? WebhookSecret { get; set; }

    /// <summary>host:port of a SIEM's syslog receiver (RFC 5424 over TCP with octet counting; over TLS, RFC 5425, with <see cref="SyslogTransport"/> tls).</summary>
    public string? Syslog { get; set; }

    /// <summary>"tcp" or "tls" (the SIEM's certificate validated as <see cref="SyslogTls"/> says).</summary>
    public string SyslogTransport { get; set; } = "tcp";

    /// <summary>With <see cref="SyslogTransport"/> tls: whom the SIEM's certificate must chain to and name, and the certificate Wardline presents.</summary>
    public SiemTlsOptions SyslogTls { get; set; } = new();

    /// <summary>low, medium, high or critical.</summary>
    public string MinSeverity { get; set; } = "medium";

    /// <summary>
    /// Delivery attempts before a notification is marked failed (the console shows it; it can be retried by hand). The default,
    /// 200, is about eight days: seven attempts in the first hour and a half, then one an hour, so a mail server that is down
    /// over a long weekend loses nothing and needs no one to act.
    /// </summary>
    public int MaxAttempts { get; set; } = 200;

    /// <summary>The wait after a first failed attempt (s); it doubles with each further failure, up to an hour.</summary>
    public double RetrySeconds { get; set; } = 30;

    /// <summary>The console's address as reviewers reach it (https://wardline.hospital.example), for the link in each notification. Unset: the issuer, else the first server URL.</summary>
    public string? ConsoleUrl { get; set; }

    public IEnumerable<string> Validate()
    {
        if (MinSeverity is not ("low" or "medium" or "high" or "critical")) yield return "Wardline:Monitoring:Notify:MinSeverity must be low, medium, high or critical.";
        foreach (var e in Emails)
        {
            if (!MailboxAddress.TryParse(e, out _)) yield return $"Wardline:Monitoring:Notify:Emails: '{e}' is not an e-mail address.";
        }
        if (Webhooks.Count > 0 && string.IsNullOrEmpty(WebhookSecret)) yield return "Wardline:Monitoring:Notify:WebhookSecret is required when webhooks are set.";
        else if (Webhooks.Count > 0 && WebhookSecret!.Length < 16) yield return "Wardline:Monitoring:Notify:WebhookSecret must be at least 16 characters.";
        foreach (var w in Webhooks)
        {
            if (Uri.TryCreate(w, UriKind.Absolute, out var withUser) && withUser.UserInfo.Length > 0)
                // Shown in the console and the CLI once accepted, and echoed here: credentials never belong in it.
                yield return $"Wardline:Monitoring:Notify:Webhooks: the URL for {withUser.Host} carries a user name or password; the webhook is authenticated by WebhookSecret's signature.";
            else if (!Uri.TryCreate(w, UriKind.Absolute, out var u) || (u.Scheme != "https" && !(u.Scheme == "http" && u.IsLoopback)))
                yield return $"Wardline:Monitoring:Notify:Webhooks: '{w}' must be an https URL (http only to a loopback address).";
        }
        if (Syslog is not null && !LedgerExportOptions.TryParseAddress(Syslog, out _, out _))
            yield return $"Wardline:Monitoring:Notify:Syslog: '{Syslog}' must be host:port (port 1-65535).";
        if (SyslogTransport is not ("tcp" or "tls")) yield return $"Wardline:Monitoring:Notify:SyslogTransport must be 'tcp' or 'tls', not '{SyslogTransport}'.";
        if (SyslogTransport == "tls")
        {
            foreach (var problem in SiemTls.Validate(SyslogTls, "Wardline:Monitoring:Notify:SyslogTls")) yield return problem;
        }
        else if (!SyslogTls.IsEmpty)
        {
            yield return "Wardline:Monitoring:Notify:SyslogTls settings apply to SyslogTransport 'tls' only: set it, or remove them.";
        }
        if (MaxAttempts is < 1 or > 1000) yield return "Wardline:Monitoring:Notify:MaxAttempts must be 1-1000.";
        if (double.IsNaN(RetrySeconds) || RetrySeconds is < 0.1 or > 3600) yield return "Wardline:Monitoring:Notify:RetrySeconds must be 0.1-3600.";
        if (ConsoleUrl is not null && !(Uri.TryCreate(ConsoleUrl, UriKind.Absolute, out var c) && c.Scheme is "http" or "https" && c.Query.Length == 0))
            yield return "Wardline:Monitoring:Notify:ConsoleUrl must be an absolute http(s) URL without a query.";
    }

    /// <summary>What these settings need of the SMTP settings they send e-mail through.</summary>
    public IEnumerable<string> Validate(Access.NotifyOptions smtp)
    {
        if (Emails.Count > 0 && smtp.SmtpHost is null)
            yield return "Wardline:Monitoring:Notify:Emails needs an SMTP server: set Wardline:Access:Notify:SmtpHost.";
    }
}
