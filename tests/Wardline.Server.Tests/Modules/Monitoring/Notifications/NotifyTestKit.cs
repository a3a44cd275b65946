using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Monitoring.Notifications;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Monitoring.Notifications;

/// <summary>Servers with the notifier, alerts put straight into monitor_alerts, and real receivers: a webhook listener and a syslog listener.</summary>
internal static class NotifyTestKit
{
    /// <summary>
    /// A real server with the notifications registered and mapped (unless the host already does it), under the all-access policy,
    /// with an administrator-free client: tests make their own officers with <see cref="Ledger.Infrastructure.LedgerTestKit.ClientAsync"/>.
    /// </summary>
    public static async Task<TestServerLite> StartAsync(WardlineOptions options)
    {
        options.Urls.Clear();
        options.Urls.Add("http://127.0.0.1:0");
        options.Access.RateLimits.UserPerMinute = 0;
        options.Access.PolicyPath ??= TestServer.AllAccessPolicy;
        var ours = false;
        var app = WardlineHost.Build(options, configure: b =>
        {
            if (b.Services.Any(d => d.ServiceType == typeof(AlertNotifier))) return;
            b.Services.AddMonitoringNotifications(options);
            ours = true;
        });
        if (ours) app.MapMonitoringNotifications();
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        return new TestServerLite(app, new Uri(address.TrimEnd('/') + "/"));
    }

    /// <summary>An alert as the alert store would write it, with one entry naming the patient; returns its id.</summary>
    public static async Task<long> InsertAlertAsync(IServiceProvider services, int severity, string user = "nurse.a", string patient = "pat-1001",
        string detection = "self-access", string evidence = "the user opened the record of the patient who is the user")
    {
        var dialect = services.GetRequiredService<SqlDialect>();
        var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
        await using var c = await dialect.OpenAsync(CancellationToken.None);
        await using var gate = await dialect.EnterWriteAsync(CancellationToken.None);
        await using var tx = await dialect.BeginWriteTransactionAsync(c, CancellationToken.None);
        long id;
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = """
                INSERT INTO monitor_alerts (detection, severity, user_name, group_key, status, assignee, first_at, last_at, patients, entries, evidence,
                    repeat_offender, config, source, created, updated, revision)
                VALUES (@d, @s, @u, NULL, 'new', NULL, @t, @t, 1, 1, @e, 0, 'built-in', 'stream', @t, @t, 1) RETURNING id
                """;
            Migrations.AddParam(cmd, "@d", detection);
            Migrations.AddParam(cmd, "@s", (short)severity);
            Migrations.AddParam(cmd, "@u", user);
            Migrations.AddParam(cmd, "@t", now);
            Migrations.AddParam(cmd, "@e", evidence);
            id = Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
        }
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "INSERT INTO monitor_alert_entries (alert_id, detection, idx, patient, at, evidence) VALUES (@a, @d, @i, @p, @t, @e)";
            Migrations.AddParam(cmd, "@a", id);
            Migrations.AddParam(cmd, "@d", detection);
            Migrations.AddParam(cmd, "@i", 1_000_000 + id);
            Migrations.AddParam(cmd, "@p", patient);
            Migrations.AddParam(cmd, "@t", now);
            Migrations.AddParam(cmd, "@e", evidence);
            await cmd.ExecuteNonQueryAsync();
        }
        await tx.CommitAsync();
        return id;
    }

    public static async Task<List<AlertNotificationRow>> NotificationsAsync(IServiceProvider services, long alertId) =>
        [.. (await services.GetRequiredService<NotificationOutbox>().OfAlertAsync(alertId, CancellationToken.None))
            .Select(n => new AlertNotificationRow(n.Id, n.Channel, n.Target, n.Status, n.Attempts, n.LastError))];

    /// <summary>Waits until the alert's notifications satisfy <paramref name="condition"/>; returns them.</summary>
    public static async Task<List<AlertNotificationRow>> WaitForAsync(IServiceProvider services, long alertId, Func<List<AlertNotificationRow>, bool> condition, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        while (true)
        {
            var rows = await NotificationsAsync(services, alertId);
            if (condition(rows)) return rows;
            if (clock.Elapsed > timeout)
                throw new TimeoutException($"alert {alertId}'s notifications did not come to the expected state in {timeout}: {string.Join("; ", rows)}");
            await Task.Delay(100);
        }
    }

    /// <summary>
    /// Waits until the notifier's first round has set its cursor at the newest alert (alerts inserted after it are new); on a
    /// shared database any server's services will do.
    /// </summary>
    public static async Task WaitForCursorAsync(IServiceProvider services)
    {
        var dialect = services.GetRequiredService<SqlDialect>();
        var deadline = DateTime.UtcNow + TimeSpan.FromSeconds(30);
        while (true)
        {
            await using var c = await dialect.OpenAsync(CancellationToken.None);
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT COUNT(*) FROM monitor_state WHERE name = 'notify'";
            if (Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture) == 1) return;
            if (DateTime.UtcNow > deadline) throw new TimeoutException("the notifier never started its cursor");
            await Task.Delay(100);
        }
    }

    /// <summary>A port nothing listens on.</summary>
    public static int FreePort() => SmtpSink.FreePort();

    /// <summary>The receiver's check, written from the documented contract (not from the server's code).</summary>
    public static bool SignatureHolds(string secret, string? timestamp, byte[] body, string? signature)
    {
        if (timestamp is null || signature is null) return false;
        var signed = Encoding.ASCII.GetBytes(timestamp + ".").Concat(body).ToArray();
        var expected = "sha256=" + Convert.ToHexString(HMACSHA256.HashData(Encoding.UTF8.GetBytes(secret), signed)).ToLowerInvariant();
        return CryptographicOperations.FixedTimeEquals(Encoding.ASCII.GetBytes(expected), Encoding.ASCII.GetBytes(signature));
    }

    public static HttpClient Client(TestServerLite server, string token)
    {
        var client = new HttpClient { BaseAddress = server.BaseUri, Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>A signed-in client of an account with <paramref name="roles"/>.</summary>
    public static async Task<HttpClient> ClientAsync(TestServerLite server, string name, params string[] roles)
    {
        var accounts = server.Service<AccountService>();
        var result = await accounts.CreateAsync(Account.New(name, name) with { Roles = roles }, null, "test", CancellationToken.None);
        if (result is not AccountResult.Done and not AccountResult.AlreadyExists) throw new InvalidOperationException($"account {name}: {result}");
        var tokens = server.Service<Wardline.Server.Modules.Access.AccessTokens>();
        await tokens.AddUserAsync(name, name, CancellationToken.None);
        var token = await tokens.IssueAsync(name, TimeSpan.FromHours(1), CancellationToken.None) ?? throw new InvalidOperationException("no token");
        return Client(server, token);
    }
}

internal sealed record AlertNotificationRow(long Id, string Channel, string Target, string Status, int Attempts, string? LastError);

/// <summary>A started server and its base address (http://127.0.0.1:port/).</summary>
internal sealed class TestServerLite(WebApplication app, Uri baseUri) : IAsyncDisposable
{
    public WebApplication App { get; } = app;

    public Uri BaseUri { get; } = baseUri;

    public T Service<T>() where T : notnull => App.Services.GetRequiredService<T>();

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>A webhook receiver on 127.0.0.1 (HttpListener) that checks each request's signature, answers 200 when it holds and 401 when not, or <see cref="Status"/> when set.</summary>
internal sealed class WebhookReceiver : IDisposable
{
    private readonly HttpListener _listener = new();
    private readonly string _secret;
    private readonly List<Received> _received = [];
    private readonly Lock _lock = new();

    private WebhookReceiver(string secret, int port)
    {
        _secret = secret;
        Url = $"http://127.0.0.1:{port}/hooks/wardline/";
        _listener.Prefixes.Add(Url);
        _listener.Start();
        _ = Task.Run(LoopAsync);
    }

    public string Url { get; }

    /// <summary>When set, every request is answered with this status whatever its signature.</summary>
    public int? Status { get; set; }

    public IReadOnlyList<Received> Requests
    {
        get
        {
            lock (_lock) return [.. _received];
        }
    }

    public static WebhookReceiver Start(string secret) => new(secret, NotifyTestKit.FreePort());

    /// <summary>Subscribes this receiver to the server's alerts: its URL among the webhooks, signed with its secret.</summary>
    public void Subscribe(WardlineOptions options)
    {
        options.Monitoring.Notify.Webhooks.Add(Url);
        options.Monitoring.Notify.WebhookSecret = _secret;
    }

    /// <summary>The requests about one alert (the server's own detections may raise others while a test runs).</summary>
    public IReadOnlyList<Received> For(long alertId) =>
        [.. Requests.Where(r => System.Text.Json.Nodes.JsonNode.Parse(r.Body)?["id"]?.GetValue<long>() == alertId)];

    private async Task LoopAsync()
    {
        while (_listener.IsListening)
        {
            HttpListenerContext context;
            try
            {
                context = await _listener.GetContextAsync();
            }
            catch (Exception ex) when (ex is HttpListenerException or ObjectDisposedException or InvalidOperationException)
            {
                return;
            }
            using var body = new MemoryStream();
            await context.Request.InputStream.CopyToAsync(body);
            var bytes = body.ToArray();
            var timestamp = context.Request.Headers["X-Wardline-Timestamp"];
            var signature = context.Request.Headers["X-Wardline-Signature"];
            var valid = NotifyTestKit.SignatureHolds(_secret, timestamp, bytes, signature)
                && long.TryParse(timestamp, CultureInfo.InvariantCulture, out var ts)
                && Math.Abs(DateTimeOffset.UtcNow.ToUnixTimeSeconds() - ts) <= 300;
            var status = Status ?? (valid ? 200 : 401);
            lock (_lock) _received.Add(new Received(context.Request.HttpMethod, context.Request.ContentType, timestamp, signature, bytes, valid, status));
            context.Response.StatusCode = status;
            context.Response.Close();
        }
    }

    public void Dispose()
    {
        _listener.Stop();
        _listener.Close();
    }

    public sealed record Received(string Method, string? ContentType, string? Timestamp, string? Signature, byte[] Body, bool SignatureValid, int Answered);
}

/// <summary>A SIEM's syslog listener on 127.0.0.1: reads RFC 6587 octet-counted frames from every connection.</summary>
internal sealed class SyslogReceiver : IDisposable
{
    private readonly TcpListener _listener = new(IPAddress.Loopback, 0);
    private readonly List<string> _messages = [];
    private readonly Lock _lock = new();
    private readonly CancellationTokenSource _stop = new();

    private SyslogReceiver()
    {
        _listener.Start();
        _ = Task.Run(AcceptAsync);
    }

    public string Address => $"127.0.0.1:{((IPEndPoint)_listener.LocalEndpoint).Port}";

    public IReadOnlyList<string> Messages
    {
        get
        {
            lock (_lock) return [.. _messages];
        }
    }

    public static SyslogReceiver Start() => new();

    /// <summary>The messages about one alert.</summary>
    public IReadOnlyList<string> For(long alertId) => [.. Messages.Where(m => m.Contains($"[wardline@32473 alert=\"{alertId}\"]", StringComparison.Ordinal))];

    private async Task AcceptAsync()
    {
        while (!_stop.IsCancellationRequested)
        {
            TcpClient client;
            try
            {
                client = await _listener.AcceptTcpClientAsync(_stop.Token);
            }
            catch (Exception ex) when (ex is OperationCanceledException or SocketException or ObjectDisposedException)
            {
                return;
            }
            _ = Task.Run(() => ReadAsync(client));
        }
    }

    private async Task ReadAsync(TcpClient client)
    {
        using (client)
        {
            var stream = client.GetStream();
            var buffer = new List<byte>();
            var chunk = new byte[4096];
            try
            {
                int n;
                while ((n = await stream.ReadAsync(chunk, _stop.Token)) > 0)
                {
                    buffer.AddRange(chunk.AsSpan(0, n));
                    while (TryFrame(buffer, out var message))
                    {
                        lock (_lock) _messages.Add(message);
                    }
                }
            }
            catch (Exception ex) when (ex is OperationCanceledException or IOException or ObjectDisposedException)
            {
            }
        }
    }

    /// <summary>"LEN SP MSG": takes one whole frame off the front of the buffer.</summary>
    private static bool TryFrame(List<byte> buffer, out string message)
    {
        message = "";
        var space = buffer.IndexOf((byte)' ');
        if (space <= 0) return false;
        var length = int.Parse(Encoding.ASCII.GetString(buffer.GetRange(0, space).ToArray()), CultureInfo.InvariantCulture);
        if (buffer.Count < space + 1 + length) return false;
        message = Encoding.UTF8.GetString(buffer.GetRange(space + 1, length).ToArray());
        buffer.RemoveRange(0, space + 1 + length);
        return true;
    }

    public void Dispose()
    {
        _stop.Cancel();
        _listener.Stop();
        _listener.Dispose();
        _stop.Dispose();
    }
}
