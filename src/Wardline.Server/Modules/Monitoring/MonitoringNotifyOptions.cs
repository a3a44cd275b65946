namespace Wardline.Server.Modules.Monitoring;

/// <summary>
/// Where new alerts are announced, bound from <c>Wardline:Monitoring:Notify</c>. E-mail goes through the
/// SMTP server of <c>Wardline:Access:Notify</c>; webhooks are signed with HMAC-SHA256; syslog goes to a SIEM.
/// Each channel takes alerts of <see cref="MinSeverity"/> and above.
/// </summary>
public sealed class MonitoringNotifyOptions
{
    public IList<string> Emails { get; } = [];

    /// <summary>HTTPS (or, for tests and local relays, http://127.0.0.1) URLs that receive a signed JSON POST per alert.</summary>
    public IList<string> Webhooks { get; } = [];

    /// <summary>The shared secret webhooks are signed with (HMAC-SHA256 over the timestamp and body); required with webhooks.</summary>
    public string? WebhookSecret { get; set; }

    /// <summary>host:port of a SIEM's syslog receiver (RFC 5424 over TCP with octet counting).</summary>
    public string? Syslog { get; set; }

    /// <summary>low, medium, high or critical.</summary>
    public string MinSeverity { get; set; } = "medium";

    /// <summary>Delivery attempts before a notification is marked failed (the console shows it; it can be retried by hand).</summary>
    public int MaxAttempts { get; set; } = 20;

    public IEnumerable<string> Validate()
    {
        if (MinSeverity is not ("low" or "medium" or "high" or "critical")) yield return "Wardline:Monitoring:Notify:MinSeverity must be low, medium, high or critical.";
        if (Webhooks.Count > 0 && string.IsNullOrEmpty(WebhookSecret)) yield return "Wardline:Monitoring:Notify:WebhookSecret is required when webhooks are set.";
        foreach (var w in Webhooks)
        {
            if (!Uri.TryCreate(w, UriKind.Absolute, out var u) || (u.Scheme != "https" && !(u.Scheme == "http" && u.IsLoopback)))
                yield return $"Wardline:Monitoring:Notify:Webhooks: '{w}' must be an https URL (http only to a loopback address).";
        }
        if (Syslog is not null && !System.Net.IPEndPoint.TryParse(Syslog, out _) && !Syslog.Contains(':', StringComparison.Ordinal))
            yield return "Wardline:Monitoring:Notify:Syslog must be host:port.";
        if (MaxAttempts is < 1 or > 1000) yield return "Wardline:Monitoring:Notify:MaxAttempts must be 1-1000.";
    }
}
