using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using MailKit.Net.Smtp;
using Microsoft.Extensions.Hosting;
using Microsoft.Extensions.Logging;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Ledger.Export;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Monitoring.Notifications;

/// <summary>The notification settings and where the console link of a notification points.</summary>
internal sealed record NotifySettings(MonitoringOptions Monitoring, string LinkBase)
{
    public MonitoringNotifyOptions Notify => Monitoring.Notify;

    public string Link(long alertId) => string.Create(CultureInfo.InvariantCulture, $"{LinkBase}/console/alerts/{alertId}");

    /// <summary>Where each alert goes: one e-mail to all addresses, one POST per webhook, one syslog message.</summary>
    public IReadOnlyList<(string Channel, string Target)> Targets(bool mailConfigured)
    {
        var targets = new List<(string, string)>();
        if (Notify.Emails.Count > 0 && mailConfigured) targets.Add((Channels.Email, string.Join(",", Notify.Emails)));
        foreach (var w in Notify.Webhooks) targets.Add((Channels.Webhook, w));
        if (Notify.Syslog is { } s) targets.Add((Channels.Syslog, s));
        return targets;
    }
}

/// <summary>A delivery the receiving end refused (an HTTP status that is not 2xx, a SIEM that hung up); the message is the short reason.</summary>
internal sealed class NotificationRefusedException(string message) : Exception(message);

/// <summary>
/// Announces new alerts. Every second: queues a notification per channel target for each alert past the cursor (the
/// outbox fill), then sends what is due, oldest first. A failed attempt is kept with its error and tried again after a
/// back-off (<see cref="MonitoringNotifyOptions.RetrySeconds"/> doubling to an hour); after
/// <see cref="MonitoringNotifyOptions.MaxAttempts"/> it is marked failed and recorded in the ledger (NotificationFailed),
/// and waits for someone to retry it from the console or the API. With several servers on one PostgreSQL, one at a
/// time runs a round (a session advisory lock), so an alert is announced once.
/// </summary>
internal sealed class AlertNotifier(NotifySettings settings, NotificationOutbox outbox, MailSender mail, LedgerRecorder recorder, SqlDialect dialect,
    TimeProvider time, ILogger<AlertNotifier> logger) : BackgroundService
{
    internal static readonly TimeSpan Round = TimeSpan.FromSeconds(1);
    private static readonly TimeSpan LastRetry = TimeSpan.FromHours(1);
    private static readonly TimeSpan WebhookTimeout = TimeSpan.FromSeconds(10);
    private static readonly TimeSpan SyslogTimeout = TimeSpan.FromSeconds(10);

    private readonly string _host = SiemFormat.HostName(Dns.GetHostName());

    // No redirects: a 3xx is not a delivery, and a signed alert must not follow a redirect to another host.
    private readonly HttpClient _http = new(new SocketsHttpHandler { AllowAutoRedirect = false, PooledConnectionLifetime = TimeSpan.FromMinutes(5) }) { Timeout = Timeout.InfiniteTimeSpan };

    protected override async Task ExecuteAsync(CancellationToken stoppingToken)
    {
        if (!settings.Monitoring.Enabled) return;
        await Task.Yield();
        var min = AlertMessages.ParseSeverity(settings.Notify.MinSeverity);
        var targets = settings.Targets(mail.Configured);
        while (!stoppingToken.IsCancellationRequested)
        {
            try
            {
                await using var leader = await LeaderLock.TryTakeAsync(dialect, "wardline.monitor-notify", stoppingToken);
                if (leader is not null)
                {
                    var queued = await outbox.FillAsync(targets, min, stoppingToken) + await outbox.FillRisesAsync(targets, min, stoppingToken);
                    if (queued > 0) NotifyLog.Queued(logger, queued);
                    await DeliverDueAsync(stoppingToken);
                }
            }
            catch (OperationCanceledException) when (stoppingToken.IsCancellationRequested)
            {
                return;
            }
            catch (Exception ex)
            {
                // The database may be away for a while; the outbox is where it was, and the next round goes on from it.
                NotifyLog.RoundFailed(logger, ex.GetType().Name, ex.Message);
            }
            try
            {
                await Task.Delay(Round, time, stoppingToken);
            }
            catch (OperationCanceledException)
            {
                return;
            }
        }
    }

    /// <summary>Sends what is due: each channel target in turn, the targets side by side; a target that fails is left for its next round.</summary>
    internal async Task DeliverDueAsync(CancellationToken ct)
    {
        var due = await outbox.DueAsync(200, ct);
        if (due.Count == 0) return;
        await Task.WhenAll(due.GroupBy(n => (n.Channel, n.Target)).Select(async group =>
        {
            foreach (var n in group)
            {
                if (!await DeliverAsync(n, ct)) break;
            }
        }));
    }

    private async Task<bool> DeliverAsync(DueNotification n, CancellationToken ct)
    {
        try
        {
            var alert = await outbox.AlertAsync(n.AlertId, ct) ?? throw new NotificationRefusedException("the alert no longer exists");
            await SendAsync(n, alert, ct);
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (Exception ex)
        {
            var attempts = n.Attempts + 1;
            var failed = attempts >= settings.Notify.MaxAttempts;
            var error = Describe(ex);
            if (failed)
            {
                // Recorded before the row says failed: whoever sees a failed notification finds its ledger entry.
                NotifyLog.GaveUp(logger, n.Id, n.AlertId, n.Channel, attempts, error);
                await recorder.RecordAsync(new SecurityEvent(time.GetUtcNow(), SecurityEventKind.NotificationFailed, null, "server", "failed",
                    string.Create(CultureInfo.InvariantCulture, $"alert {n.AlertId} {n.Channel} after {attempts} attempts"), null, null), CancellationToken.None);
            }
            else
            {
                NotifyLog.AttemptFailed(logger, n.Id, n.AlertId, n.Channel, attempts, error);
            }
            await outbox.AttemptFailedAsync(n, error, Backoff(attempts), failed, ct);
            return false;
        }
        await outbox.SentAsync(n, ct);
        NotifyLog.Sent(logger, n.Id, n.AlertId, n.Channel);
        return true;
    }

    /// <summary>The wait after <paramref name="attempts"/> failed attempts: the first retry delay, doubled per further failure, at most an hour.</summary>
    internal TimeSpan Backoff(int attempts)
    {
        var seconds = settings.Notify.RetrySeconds * Math.Pow(2, Math.Min(attempts - 1, 30));
        return seconds >= LastRetry.TotalSeconds ? LastRetry : TimeSpan.FromSeconds(seconds);
    }

    private Task SendAsync(DueNotification n, NotifiedAlert alert, CancellationToken ct) => n.Channel switch
    {
        Channels.Email => EmailAsync(n.Target, alert, ct),
        Channels.Webhook => WebhookAsync(n.Target, alert, ct),
        Channels.Syslog => SyslogAsync(n.Target, alert, ct),
        _ => throw new NotificationRefusedException($"unknown channel {n.Channel}"),
    };

    private async Task EmailAsync(string target, NotifiedAlert alert, CancellationToken ct)
    {
        // Unconfigured SMTP would make SendAsync a silent no-op, and the notification would count as delivered.
        if (!mail.Configured) throw new NotificationRefusedException("no SMTP server is configured (Wardline:Access:Notify:SmtpHost)");
        await mail.SendAsync(target.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries),
            AlertMessages.Subject(alert), AlertMessages.EmailBody(alert, settings.Link(alert.Id)), ct);
    }

    private async Task WebhookAsync(string url, NotifiedAlert alert, CancellationToken ct)
    {
        var secret = settings.Notify.WebhookSecret ?? throw new NotificationRefusedException("no webhook secret is configured");
        var body = AlertMessages.WebhookBody(alert, settings.Link(alert.Id));
        var timestamp = time.GetUtcNow().ToUnixTimeSeconds();
        using var request = new HttpRequestMessage(HttpMethod.Post, url) { Content = new ByteArrayContent(body) };
        request.Content.Headers.ContentType = new MediaTypeHeaderValue("application/json");
        request.Headers.Add("X-Wardline-Timestamp", timestamp.ToString(CultureInfo.InvariantCulture));
        request.Headers.Add("X-Wardline-Signature", AlertMessages.Signature(secret, timestamp, body));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(WebhookTimeout);
        using var response = await _http.SendAsync(request, HttpCompletionOption.ResponseHeadersRead, timeout.Token);
        if (!response.IsSuccessStatusCode)
            throw new NotificationRefusedException(string.Create(CultureInfo.InvariantCulture, $"HTTP {(int)response.StatusCode}"));
    }

    private async Task SyslogAsync(string address, NotifiedAlert alert, CancellationToken ct)
    {
        if (!LedgerExportOptions.TryParseAddress(address, out var host, out var port)) throw new NotificationRefusedException("the syslog address is not host:port");
        var frame = SiemFormat.Frame(AlertMessages.Syslog(alert, _host, settings.Link(alert.Id)));
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(SyslogTimeout);
        await using var sink = await TcpExportSink.ConnectAsync(host, port, settings.Notify.SyslogTransport == "tls" ? SiemTls.ClientOptions(settings.Notify.SyslogTls, host) : null, timeout.Token);
        await sink.WriteAsync(frame, timeout.Token);
        await sink.FlushAsync(timeout.Token);
        // As for the ledger export: bytes flushed to a SIEM that hangs up at once may never have been read.
        await Task.Delay(sink.Settle, time, timeout.Token);
        if (!sink.IsOpen()) throw new NotificationRefusedException("the SIEM closed the connection");
    }

    /// <summary>The exception's type and a short reason, never a message body or a server's reply text.</summary>
    internal static string Describe(Exception ex)
    {
        var reason = ex switch
        {
            NotificationRefusedException r => r.Message,
            SocketException s => s.SocketErrorCode.ToString(),
            HttpRequestException { InnerException: SocketException s } => s.SocketErrorCode.ToString(),
            HttpRequestException h => h.HttpRequestError.ToString(),
            SmtpCommandException c => string.Create(CultureInfo.InvariantCulture, $"{c.ErrorCode} (SMTP {(int)c.StatusCode})"),
            SmtpProtocolException => "protocol error",
            OperationCanceledException => "timed out",
            MailKit.Security.SslHandshakeException or System.Security.Authentication.AuthenticationException => "TLS handshake failed",
            IOException => "connection lost",
            _ => "unexpected error",
        };
        return ex.GetType().Name + ": " + reason;
    }

    public override void Dispose()
    {
        _http.Dispose();
        base.Dispose();
    }
}
