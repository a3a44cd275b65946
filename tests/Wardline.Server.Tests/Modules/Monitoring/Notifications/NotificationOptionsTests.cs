using Microsoft.Extensions.Options;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Monitoring.Notifications;

namespace Wardline.Server.Tests.Modules.Monitoring.Notifications;

/// <summary>Notification settings that cannot work stop the server at start, naming the setting.</summary>
public sealed class NotificationOptionsTests : IDisposable
{
    private readonly string _dir = Directory.CreateTempSubdirectory("wl-notify-options-").FullName;

    public void Dispose() => Directory.Delete(_dir, recursive: true);

    public static TheoryData<string, string> BadSettings => new()
    {
        { "webhook-without-secret", "Wardline:Monitoring:Notify:WebhookSecret is required" },
        { "webhook-short-secret", "Wardline:Monitoring:Notify:WebhookSecret must be at least 16" },
        { "webhook-plain-http-elsewhere", "Wardline:Monitoring:Notify:Webhooks: 'http://10.1.2.3/hook' must be an https URL" },
        { "webhook-not-a-url", "Wardline:Monitoring:Notify:Webhooks: 'siem/hook' must be an https URL" },
        { "webhook-with-credentials", "Wardline:Monitoring:Notify:Webhooks: the URL for siem.hospital.example carries a user name or password" },
        { "syslog-without-port", "Wardline:Monitoring:Notify:Syslog: 'siem.hospital.example' must be host:port" },
        { "syslog-bad-port", "Wardline:Monitoring:Notify:Syslog: '10.0.0.9:70000' must be host:port" },
        { "syslog-udp", "Wardline:Monitoring:Notify:SyslogTransport must be 'tcp' or 'tls', not 'udp'" },
        { "syslog-tls-settings-on-tcp", "Wardline:Monitoring:Notify:SyslogTls settings apply to SyslogTransport 'tls' only" },
        { "syslog-tls-missing-ca", "Wardline:Monitoring:Notify:SyslogTls:CaFile /no/such/ca.pem: the file does not exist" },
        { "email-without-smtp", "Wardline:Monitoring:Notify:Emails needs an SMTP server" },
        { "email-not-an-address", "Wardline:Monitoring:Notify:Emails: 'privacy officer' is not an e-mail address" },
        { "severity", "Wardline:Monitoring:Notify:MinSeverity must be" },
        { "retry", "Wardline:Monitoring:Notify:RetrySeconds must be" },
    };

    [Theory]
    [MemberData(nameof(BadSettings))]
    public void A_bad_notification_setting_is_refused_at_start_with_the_setting_named(string setting, string expected)
    {
        var options = new WardlineOptions { DataDirectory = Path.Combine(_dir, setting) };
        var n = options.Monitoring.Notify;
        switch (setting)
        {
            case "webhook-without-secret": n.Webhooks.Add("https://siem.hospital.example/hook"); break;
            case "webhook-short-secret": n.Webhooks.Add("https://siem.hospital.example/hook"); n.WebhookSecret = "short"; break;
            case "webhook-plain-http-elsewhere": n.Webhooks.Add("http://10.1.2.3/hook"); n.WebhookSecret = "a-secret-long-enough-to-sign"; break;
            case "webhook-not-a-url": n.Webhooks.Add("siem/hook"); n.WebhookSecret = "a-secret-long-enough-to-sign"; break;
            case "webhook-with-credentials": n.Webhooks.Add("http://hooks:s3cret-pass@siem.hospital.example/hook"); n.WebhookSecret = "a-secret-long-enough-to-sign"; break;
            case "syslog-without-port": n.Syslog = "siem.hospital.example"; break;
            case "syslog-bad-port": n.Syslog = "10.0.0.9:70000"; break;
            case "syslog-udp": n.Syslog = "10.0.0.9:514"; n.SyslogTransport = "udp"; break;
            case "syslog-tls-settings-on-tcp": n.Syslog = "10.0.0.9:6514"; n.SyslogTls.CaFile = "/etc/wardline/ca.pem"; break;
            case "syslog-tls-missing-ca": n.Syslog = "10.0.0.9:6514"; n.SyslogTransport = "tls"; n.SyslogTls.CaFile = "/no/such/ca.pem"; break;
            case "email-without-smtp": n.Emails.Add("privacy@hospital.example"); break;
            case "email-not-an-address": n.Emails.Add("privacy officer"); break;
            case "severity": n.MinSeverity = "urgent"; break;
            case "retry": n.RetrySeconds = 0; break;
        }

        var ex = Assert.Throws<OptionsValidationException>(() => WardlineHost.Build(options, configure: b => b.Services.AddMonitoringNotifications(options)));

        Assert.Contains(ex.Failures, f => f.Contains(expected, StringComparison.Ordinal));
        Assert.DoesNotContain("s3cret-pass", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Plain_http_webhooks_to_loopback_and_a_named_syslog_host_are_accepted()
    {
        var n = new Wardline.Server.Modules.Monitoring.MonitoringNotifyOptions { WebhookSecret = "a-secret-long-enough-to-sign", Syslog = "siem.hospital.example:6514" };
        n.Webhooks.Add("http://127.0.0.1:9000/hook");
        n.Webhooks.Add("https://siem.hospital.example/hook");

        Assert.Empty(n.Validate());
    }
}
