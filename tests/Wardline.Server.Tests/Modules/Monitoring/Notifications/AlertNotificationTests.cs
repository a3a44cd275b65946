using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Extensions.DependencyInjection;
using Wardline.Monitoring;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Monitoring;
using Wardline.Server.Modules.Monitoring.Notifications;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Monitoring.Notifications.NotifyTestKit;

namespace Wardline.Server.Tests.Modules.Monitoring.Notifications;

/// <summary>
/// New alerts are announced by e-mail (a real SMTP server, aiosmtpd), a signed webhook (a real HTTP listener that checks
/// the signature) and syslog (a real TCP listener reading octet-counted frames), once each; a channel that is down keeps
/// its notifications and delivers them when it returns; one that stays down ends in "failed", in the ledger, and in the
/// API's list until an officer retries it. The outbox runs the same on SQLite and PostgreSQL.
/// </summary>
public abstract class AlertNotificationConformance(StoreKind kind) : IAsyncLifetime
{
    private const string Secret = "webhook-secret-for-tests-0123456789";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private TestStore _store = null!;

    public async Task InitializeAsync() => _store = await TestStore.CreateAsync(kind);

    public async Task DisposeAsync() => await _store.DisposeAsync();

    private WardlineOptions Options(Action<WardlineOptions> configure)
    {
        var o = _store.SharedOptions();
        o.Monitoring.Notify.RetrySeconds = 0.2;
        configure(o);
        return o;
    }

    [Fact]
    public async Task Each_channel_announces_a_new_alert_exactly_once()
    {
        using var smtp = await SmtpSink.StartAsync();
        using var hook = WebhookReceiver.Start(Secret);
        using var siem = SyslogReceiver.Start();
        await using var server = await StartAsync(Options(o =>
        {
            o.Access.Notify.SmtpHost = "127.0.0.1";
            o.Access.Notify.SmtpPort = smtp.Port;
            o.Access.Notify.PrivacyOfficers.Add("privacy@hospital.example");
            o.Monitoring.Notify.Emails.Add("privacy@hospital.example");
            o.Monitoring.Notify.Emails.Add("soc@hospital.example");
            hook.Subscribe(o);
            o.Monitoring.Notify.Syslog = siem.Address;
            o.Monitoring.Notify.ConsoleUrl = "https://wardline.hospital.example";
        }));
        await WaitForCursorAsync(server.App.Services);

        var id = await InsertAlertAsync(server.App.Services, severity: 3, user: "nurse.a", patient: "pat-7001");

        var rows = await WaitForAsync(server.App.Services, id, r => r.Count == 3 && r.All(n => n.Status == "sent"), Wait);
        Assert.Equal(new[] { "email", "syslog", "webhook" }, rows.Select(n => n.Channel).Order());
        Assert.Equal("privacy@hospital.example,soc@hospital.example", rows.Single(n => n.Channel == "email").Target);
        await smtp.WaitForAsync($"[Wardline] High alert {id}: ", Wait);
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal(1, Count(smtp.Output, $"High alert {id}:"));
        Assert.Contains("soc@hospital.example", smtp.Output, StringComparison.Ordinal);
        Assert.Contains($"https://wardline.hospital.example/console/alerts/{id}", smtp.Output, StringComparison.Ordinal);
        Assert.Contains("Patient/pat-7001", smtp.Output, StringComparison.Ordinal);

        var request = Assert.Single(hook.For(id));
        Assert.True(request.SignatureValid, "the webhook's signature did not verify");
        Assert.Equal("POST", request.Method);
        Assert.StartsWith("application/json", request.ContentType, StringComparison.Ordinal);
        var body = JsonNode.Parse(request.Body)!.AsObject();
        Assert.Equal(new[] { "id", "detection", "title", "severity", "user", "patient", "firstAt", "lastAt", "status", "patients", "entries", "url" }, body.Select(p => p.Key));
        Assert.Equal(id, (long)body["id"]!);
        Assert.Equal("high", (string?)body["severity"]);
        Assert.Equal("nurse.a", (string?)body["user"]);
        Assert.Equal("pat-7001", (string?)body["patient"]);
        Assert.Equal("new", (string?)body["status"]);
        Assert.Equal($"https://wardline.hospital.example/console/alerts/{id}", (string?)body["url"]);

        var message = Assert.Single(siem.For(id));
        Assert.StartsWith("<108>1 ", message, StringComparison.Ordinal); // log audit (13), warning (CEF 8)
        Assert.Contains($" wardline - alert [wardline@32473 alert=\"{id}\"] CEF:0|Wardline|Wardline|1.0|alert:self-access|", message, StringComparison.Ordinal);
        Assert.Contains("|8|", message, StringComparison.Ordinal);
        Assert.Contains("suser=nurse.a", message, StringComparison.Ordinal);
        Assert.Contains("cs3Label=patient cs3=pat-7001", message, StringComparison.Ordinal);
        Assert.Contains("cs1Label=detection cs1=self-access", message, StringComparison.Ordinal);
        Assert.Contains($"cn1Label=alertId cn1={id}", message, StringComparison.Ordinal);
        Assert.EndsWith($"request=https://wardline.hospital.example/console/alerts/{id}", message, StringComparison.Ordinal);
        // The evidence in words stays in the console (another detection's names a record's sensitive category).
        Assert.DoesNotContain("opened the record", smtp.Output + Encoding.UTF8.GetString(request.Body) + message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task The_webhook_signature_verifies_and_a_tampered_body_does_not()
    {
        using var hook = WebhookReceiver.Start(Secret);
        await using var server = await StartAsync(Options(hook.Subscribe));
        await WaitForCursorAsync(server.App.Services);

        var id = await InsertAlertAsync(server.App.Services, severity: 4);
        await WaitForAsync(server.App.Services, id, r => r.Count == 1 && r[0].Status == "sent", Wait);

        var received = Assert.Single(hook.For(id));
        Assert.True(SignatureHolds(Secret, received.Timestamp, received.Body, received.Signature));
        var tampered = Encoding.UTF8.GetBytes(Encoding.UTF8.GetString(received.Body).Replace("\"critical\"", "\"low\"", StringComparison.Ordinal));
        Assert.NotEqual(received.Body, tampered);
        Assert.False(SignatureHolds(Secret, received.Timestamp, tampered, received.Signature));
        Assert.False(SignatureHolds("another-secret-of-some-length", received.Timestamp, received.Body, received.Signature));
        // The receiver itself turns the tampered body away.
        using var http = new HttpClient();
        using var replay = new HttpRequestMessage(HttpMethod.Post, hook.Url) { Content = new ByteArrayContent(tampered) };
        replay.Headers.Add("X-Wardline-Timestamp", received.Timestamp);
        replay.Headers.Add("X-Wardline-Signature", received.Signature);
        Assert.Equal(HttpStatusCode.Unauthorized, (await http.SendAsync(replay)).StatusCode);
    }

    [Fact]
    public async Task When_the_mail_server_is_down_the_notification_waits_with_its_error_and_is_mailed_when_it_returns()
    {
        var port = FreePort();
        await using var server = await StartAsync(Options(o =>
        {
            o.Access.Notify.SmtpHost = "127.0.0.1";
            o.Access.Notify.SmtpPort = port;
            o.Access.Notify.PrivacyOfficers.Add("privacy@hospital.example");
            o.Monitoring.Notify.Emails.Add("privacy@hospital.example");
        }));
        await WaitForCursorAsync(server.App.Services);
        var id = await InsertAlertAsync(server.App.Services, severity: 2);

        var waiting = await WaitForAsync(server.App.Services, id, r => r.Count == 1 && r[0].Attempts >= 2, Wait);
        Assert.Equal("pending", waiting[0].Status);
        Assert.StartsWith("SocketException: ConnectionRefused", waiting[0].LastError, StringComparison.Ordinal);
        var undelivered = await server.Service<NotificationOutbox>().UndeliveredAsync(CancellationToken.None);
        Assert.Contains(undelivered, n => n.AlertId == id && n.Status == "pending");

        using var smtp = await SmtpSink.StartAsync(port);

        await smtp.WaitForAsync($"[Wardline] Medium alert {id}: ", Wait);
        var sent = await WaitForAsync(server.App.Services, id, r => r[0].Status == "sent", Wait);
        Assert.Null(sent[0].LastError);
        Assert.DoesNotContain(await server.Service<NotificationOutbox>().UndeliveredAsync(CancellationToken.None), n => n.AlertId == id);
    }

    [Fact]
    public async Task After_the_last_attempt_the_notification_fails_is_ledgered_and_a_retry_by_hand_delivers_it()
    {
        using var hook = WebhookReceiver.Start(Secret);
        hook.Status = 503;
        await using var server = await StartAsync(Options(o =>
        {
            hook.Subscribe(o);
            o.Monitoring.Notify.MaxAttempts = 3;
        }));
        using var officer = await ClientAsync(server, "privacy.officer", "privacy_officer");
        await WaitForCursorAsync(server.App.Services);
        var id = await InsertAlertAsync(server.App.Services, severity: 3);

        var failed = await WaitForAsync(server.App.Services, id, r => r.Count == 1 && r[0].Status == "failed", Wait);
        Assert.Equal(3, failed[0].Attempts);
        Assert.Equal("NotificationRefusedException: HTTP 503", failed[0].LastError);
        Assert.Equal(3, hook.For(id).Count);
        var ledger = await server.Service<Wardline.Server.Modules.Records.Storage.RecordStore>().CountAsync(
            $"SELECT COUNT(*) FROM ledger_entries WHERE type = 'security' AND event = 'NotificationFailed' AND detail = 'alert {id} webhook after 3 attempts'", CancellationToken.None);
        Assert.Equal(1, ledger);
        await Task.Delay(TimeSpan.FromSeconds(1.5));
        Assert.Equal(3, hook.For(id).Count); // failed: no more attempts by itself

        var list = JsonNode.Parse(await officer.GetStringAsync("monitor/notifications?status=failed"))!.AsArray();
        var listed = Assert.Single(list, n => (long)n!["alertId"]! == id)!;
        Assert.Equal("NotificationRefusedException: HTTP 503", (string?)listed["lastError"]);
        Assert.Contains(await server.Service<NotificationOutbox>().UndeliveredAsync(CancellationToken.None), n => n.AlertId == id && n.Status == "failed");
        var undelivered = JsonNode.Parse(await officer.GetStringAsync("monitor/notifications?status=undelivered"))!.AsArray();
        Assert.Contains(undelivered, n => (long)n!["alertId"]! == id && (string?)n["status"] == "failed");

        hook.Status = null;
        var retry = await officer.PostAsync($"monitor/notifications/{failed[0].Id}/retry", null);
        var retryText = await retry.Content.ReadAsStringAsync();
        Assert.True(retry.StatusCode == HttpStatusCode.OK, retryText);
        var reset = JsonNode.Parse(retryText)!.AsObject();
        Assert.Equal(0, (int)reset["attempts"]!);
        Assert.Equal("pending", (string?)reset["status"]);

        var sent = await WaitForAsync(server.App.Services, id, r => r[0].Status == "sent", Wait);
        Assert.Equal(1, sent[0].Attempts);
        Assert.True(hook.For(id)[^1].SignatureValid);
        var again = await officer.PostAsync($"monitor/notifications/{failed[0].Id}/retry", null);
        Assert.Equal(HttpStatusCode.Conflict, again.StatusCode);
        Assert.Equal("application/problem+json", again.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task A_notification_still_waiting_when_the_server_stops_is_delivered_after_the_restart()
    {
        using var hook = WebhookReceiver.Start(Secret);
        hook.Status = 502;
        long id;
        var options = Options(hook.Subscribe);
        await using (var first = await StartAsync(options))
        {
            await WaitForCursorAsync(first.App.Services);
            id = await InsertAlertAsync(first.App.Services, severity: 3);
            await WaitForAsync(first.App.Services, id, r => r.Count == 1 && r[0].Attempts >= 1, Wait);
        }
        hook.Status = null;

        await using var second = await StartAsync(Options(hook.Subscribe));

        var sent = await WaitForAsync(second.App.Services, id, r => r.Count == 1 && r[0].Status == "sent", Wait);
        Assert.True(sent[0].Attempts >= 2);
        Assert.True(hook.For(id)[^1].SignatureValid);
        Assert.Single(hook.For(id), r => r.Answered == 200);
    }

    [Fact]
    public async Task An_alert_below_the_minimum_severity_is_not_queued()
    {
        using var hook = WebhookReceiver.Start(Secret);
        await using var server = await StartAsync(Options(o =>
        {
            hook.Subscribe(o);
            o.Monitoring.Notify.MinSeverity = "high";
        }));
        await WaitForCursorAsync(server.App.Services);

        var medium = await InsertAlertAsync(server.App.Services, severity: 2);
        var high = await InsertAlertAsync(server.App.Services, severity: 3);

        await AnnouncedAloneAsync(server, hook, high, medium);
    }

    [Fact]
    public async Task A_case_raised_to_the_minimum_severity_by_a_later_finding_is_announced_once()
    {
        using var hook = WebhookReceiver.Start(Secret);
        await using var server = await StartAsync(Options(o =>
        {
            hook.Subscribe(o);
            o.Monitoring.Notify.MinSeverity = "high";
        }));
        var services = server.App.Services;
        await WaitForStateAsync(services, "notify");
        await WaitForStateAsync(services, "notify-severity");
        var alerts = services.GetRequiredService<AlertStore>();
        var at = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        Finding Finding(Severity severity, long idx) => new("self-access", severity, "nurse.rise", "pat-7", at + idx, [idx], "finding " + idx, "pat-7");

        await alerts.RecordFindingsAsync([Finding(Severity.Medium, 1)], MonitorConfig.Default, "stream", null, CancellationToken.None);
        var id = (await alerts.QueryAsync(new AlertQuery(User: "nurse.rise"), CancellationToken.None)).Alerts.Single().Id;
        await WaitForStateAsync(services, "notify", id);
        var whileMedium = await NotificationsAsync(services, id);
        await alerts.RecordFindingsAsync([Finding(Severity.High, 2)], MonitorConfig.Default, "stream", null, CancellationToken.None);
        var sent = await WaitForAsync(services, id, r => r.Count == 1 && r[0].Status == "sent", Wait);
        await alerts.RecordFindingsAsync([Finding(Severity.Critical, 3)], MonitorConfig.Default, "stream", null, CancellationToken.None);
        var seq = await ScalarAsync(services, "SELECT MAX(seq) FROM monitor_alert_events") ?? 0;
        await WaitForStateAsync(services, "notify-severity", seq);

        Assert.Empty(whileMedium);
        Assert.Single(hook.For(id));
        Assert.Single(await NotificationsAsync(services, id));
        Assert.Equal(Severity.Critical, (await alerts.GetAsync(id, CancellationToken.None))!.Alert.Severity);
        Assert.Equal(2, (await alerts.GetAsync(id, CancellationToken.None))!.Events.Count(e => e.Kind == AlertStore.SeverityRaised));
    }

    /// <summary>Waits until the notifier's cursor <paramref name="name"/> exists (and has reached <paramref name="atLeast"/>).</summary>
    private static async Task WaitForStateAsync(IServiceProvider services, string name, long atLeast = long.MinValue)
    {
        var deadline = DateTime.UtcNow + Wait;
        while (await ScalarAsync(services, $"SELECT cursor FROM monitor_state WHERE name = '{name}'") is not { } cursor || cursor < atLeast)
        {
            if (DateTime.UtcNow > deadline) throw new TimeoutException($"the notifier's cursor {name} never reached {atLeast}");
            await Task.Delay(100);
        }
    }

    private static async Task<long?> ScalarAsync(IServiceProvider services, string sql)
    {
        await using var c = await services.GetRequiredService<SqlDialect>().OpenAsync(CancellationToken.None);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return await cmd.ExecuteScalarAsync() is { } v and not DBNull ? Convert.ToInt64(v, System.Globalization.CultureInfo.InvariantCulture) : null;
    }

    [Fact]
    public async Task Alerts_raised_before_notifications_were_turned_on_are_not_sent()
    {
        long old;
        var quiet = _store.SharedOptions();
        quiet.Monitoring.Enabled = false;
        await using (var first = await StartAsync(quiet))
        {
            old = await InsertAlertAsync(first.App.Services, severity: 4);
        }
        using var hook = WebhookReceiver.Start(Secret);
        await using var server = await StartAsync(Options(hook.Subscribe));
        await WaitForCursorAsync(server.App.Services);

        var fresh = await InsertAlertAsync(server.App.Services, severity: 4);

        await AnnouncedAloneAsync(server, hook, fresh, old);
    }

    [Fact]
    public async Task The_notification_api_answers_officers_only_and_refuses_bad_requests_with_problem_details()
    {
        await using var server = await StartAsync(Options(_ => { }));
        using var security = await ClientAsync(server, "security.officer", "security_officer");
        using var clinician = await ClientAsync(server, "dr.house", "physician");
        using var anonymous = new HttpClient { BaseAddress = server.BaseUri };

        Assert.Equal(HttpStatusCode.OK, (await security.GetAsync("monitor/notifications")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await security.GetAsync("monitor/notifications?status=pending&limit=5")).StatusCode);
        foreach (var (client, expected) in new[] { (clinician, HttpStatusCode.Forbidden), (anonymous, HttpStatusCode.Unauthorized) })
        {
            Assert.Equal(expected, (await client.GetAsync("monitor/notifications")).StatusCode);
            Assert.Equal(expected, (await client.PostAsync("monitor/notifications/1/retry", null)).StatusCode);
        }
        foreach (var bad in new[] { "monitor/notifications?status=lost", "monitor/notifications?limit=0", "monitor/notifications?limit=x" })
        {
            var r = await security.GetAsync(bad);
            Assert.Equal(HttpStatusCode.BadRequest, r.StatusCode);
            Assert.Equal("application/problem+json", r.Content.Headers.ContentType?.MediaType);
        }
        Assert.Equal(HttpStatusCode.BadRequest, (await security.PostAsync("monitor/notifications/abc/retry", null)).StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, (await security.PostAsync("monitor/notifications/987654/retry", null)).StatusCode);
    }

    /// <summary>The webhook announced <paramref name="announced"/> once, and <paramref name="silent"/> was never queued.</summary>
    private static async Task AnnouncedAloneAsync(TestServerLite server, WebhookReceiver hook, long announced, long silent)
    {
        await WaitForAsync(server.App.Services, announced, r => r.Count == 1 && r[0].Status == "sent", Wait);
        Assert.Empty(await NotificationsAsync(server.App.Services, silent));
        Assert.Single(hook.For(announced));
        Assert.Empty(hook.For(silent));
    }

    private static int Count(string text, string what)
    {
        var n = 0;
        for (var i = text.IndexOf(what, StringComparison.Ordinal); i >= 0; i = text.IndexOf(what, i + what.Length, StringComparison.Ordinal)) n++;
        return n;
    }
}

public sealed class AlertNotificationsOnSqlite() : AlertNotificationConformance(StoreKind.Sqlite);

public sealed class AlertNotificationsOnPostgres() : AlertNotificationConformance(StoreKind.Postgres);
