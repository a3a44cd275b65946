using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Wardline.Server.Hosting;
using Wardline.Server.Tests.EndToEnd;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.Modules.BackupService;

/// <summary>
/// Continuous backups to a target that stops answering (Azure Blob Storage on a closed port): every run fails and
/// leaves no manifest, status turns "failing", and the ledger records the failure streak once, not once a cycle.
/// </summary>
public sealed partial class UnreachableTargetTests : IAsyncLifetime
{
    private TestStore _store = null!;

    public async Task InitializeAsync() => _store = await TestStore.CreateAsync(StoreKind.Sqlite);

    public async Task DisposeAsync() => await _store.DisposeAsync();

    [Fact]
    public async Task Backups_to_an_unreachable_target_fail_every_cycle_status_turns_failing_and_the_ledger_records_the_streak_once()
    {
        // A good backup first, to a folder: the store has a last good backup when its target goes away.
        var good = _store.SharedOptions();
        good.Backup.Target = "file://" + Path.Combine(_store.Folder, "target");
        good.Backup.IntervalSeconds = 0;
        await using (var server = await TestServer.StartAsync(good))
        {
            using var admin = await ClientAsync(server, "backup.admin", "administrator");
            await server.Client.CreateAsync("Patient", FhirTest.Patient("Unreachable"));
            Assert.Equal(HttpStatusCode.OK, (await admin.PostAsync(new Uri(server.BaseUri, "/backup/run"), null)).StatusCode);
        }
        ReleasePools();

        var options = _store.SharedOptions();
        options.Backup.Target = "azure://devstoreaccount1/backups";
        options.Backup.Store.AzureConnectionString = ClosedAzurite();
        options.Backup.Store.MaxRetries = 1;
        options.Backup.Store.RetryBaseDelay = TimeSpan.FromMilliseconds(100);
        options.Backup.Store.NetworkTimeout = TimeSpan.FromSeconds(5);
        options.Backup.IntervalSeconds = 1;
        options.Backup.DrillIntervalHours = 0;
        await using (var server = await TestServer.StartAsync(options))
        {
            using var admin = await ClientAsync(server, "backup.admin", "administrator");
            var clock = Stopwatch.StartNew();
            while (await FailedRunsAsync() < 4 && clock.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(250);
            Assert.True(await FailedRunsAsync() >= 4, $"{await FailedRunsAsync()} failed runs after {clock.Elapsed}");

            var status = await GetJsonAsync(admin, new Uri(server.BaseUri, "/backup/status"));
            Assert.Equal("failing", (string?)status["health"]);
            Assert.Equal("failed", (string?)status["lastAttempt"]!["status"]);
            Assert.StartsWith("file://", (string?)status["lastGood"]!["target"], StringComparison.Ordinal);
            Assert.DoesNotContain("AccountKey", status.ToJsonString(), StringComparison.Ordinal);

            var onDemand = await admin.PostAsync(new Uri(server.BaseUri, "/backup/run"), null);
            var problem = await onDemand.Content.ReadAsStringAsync();
            Assert.Equal(HttpStatusCode.BadGateway, onDemand.StatusCode);
            Assert.Contains("did not answer", problem, StringComparison.Ordinal);
            Assert.DoesNotContain(AccountKey(ClosedAzurite()), problem, StringComparison.Ordinal);
        }

        var o = _store.SharedOptions();
        Assert.Equal(0, await CountAsync(o, "SELECT COUNT(*) FROM backup_runs WHERE target LIKE 'azure:%' AND (status <> 'failed' OR manifest IS NOT NULL)"));
        Assert.Equal(0, await CountAsync(o, "SELECT COUNT(*) FROM backup_runs WHERE target LIKE 'azure:%' AND error IS NULL"));
        // One entry for the scheduled streak, however many cycles it lasted; the operator's own attempt is recorded as well.
        Assert.Equal(1, await CountAsync(o, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'backup-failed' AND actor = 'schedule'"));
        Assert.Equal(1, await CountAsync(o, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'backup-failed' AND actor = 'api:backup.admin'"));
        Assert.Equal(0, await CountAsync(o, "SELECT COUNT(*) FROM ledger_entries WHERE detail LIKE @k", ("@k", "%" + AccountKey(ClosedAzurite())[..12] + "%")));
        var verify = await VerifyAsync(o);
        Assert.True(verify.ExitCode == 0, verify.Output);
    }

    [Fact]
    public async Task Backups_resume_when_the_target_answers_again_and_the_ledger_records_the_failure_and_the_recovery_once_each()
    {
        var port = FreePort.Next();
        var options = _store.SharedOptions();
        options.Backup.Target = "azure://devstoreaccount1/wl-" + Guid.NewGuid().ToString("N")[..12];
        options.Backup.Store.AzureConnectionString = BlobEndpoint().Replace(Azurite(), $"BlobEndpoint=http://127.0.0.1:{port}/");
        options.Backup.Store.MaxRetries = 1;
        options.Backup.Store.RetryBaseDelay = TimeSpan.FromMilliseconds(100);
        options.Backup.Store.NetworkTimeout = TimeSpan.FromSeconds(5);
        options.Backup.IntervalSeconds = 1;
        options.Backup.DrillIntervalHours = 0;
        await using var server = await TestServer.StartAsync(options);
        using var admin = await ClientAsync(server, "backup.admin", "administrator");
        var clock = Stopwatch.StartNew();
        while (await FailedRunsAsync() < 3 && clock.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(250);
        Assert.True(await FailedRunsAsync() >= 3, $"{await FailedRunsAsync()} failed runs after {clock.Elapsed}");
        var down = await GetJsonAsync(admin, new Uri(server.BaseUri, "/backup/status"));
        Assert.Equal("failing", (string?)down["health"]);
        Assert.Null(down["lastGood"]);

        // The network comes back: the target's port now leads to Azurite.
        await using (var forwarder = TcpForwarder.Start(port, AzuritePort()))
        {
            clock.Restart();
            while (await CompletedRunsAsync() == 0 && clock.Elapsed < TimeSpan.FromSeconds(60)) await Task.Delay(250);
            Assert.True(await CompletedRunsAsync() > 0, $"no backup completed {clock.Elapsed} after the target came back");
            var up = await GetJsonAsync(admin, new Uri(server.BaseUri, "/backup/status"));
            Assert.Equal("ok", (string?)up["health"]);
            Assert.Equal(options.Backup.Target, (string?)up["lastGood"]!["target"]);
        }

        var o = _store.SharedOptions();
        Assert.Equal(1, await CountAsync(o, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'backup-failed'"));
        Assert.Equal(1, await CountAsync(o, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'backup-recovered'"));
    }

    private Task<long> CompletedRunsAsync() =>
        CountAsync(_store.SharedOptions(), "SELECT COUNT(*) FROM backup_runs WHERE target LIKE 'azure:%' AND status = 'completed' AND manifest IS NOT NULL");

    private Task<long> FailedRunsAsync() =>
        CountAsync(_store.SharedOptions(), "SELECT COUNT(*) FROM backup_runs WHERE target LIKE 'azure:%' AND status = 'failed' AND trigger_by = 'schedule'");

    private static string Azurite() => Environment.GetEnvironmentVariable("WARDLINE_TEST_AZURITE")
        ?? throw new InvalidOperationException("WARDLINE_TEST_AZURITE is not set: run the tests with scripts/services.sh sourced, which starts Azurite.");

    private static int AzuritePort() => int.Parse(BlobPort().Match(Azurite()).Groups[1].Value, CultureInfo.InvariantCulture);

    /// <summary>Azurite's connection string with its blob endpoint moved to a port nothing listens on.</summary>
    private static string ClosedAzurite() => BlobEndpoint().Replace(Azurite(), $"BlobEndpoint=http://127.0.0.1:{ClosedPort}/");

    private static readonly int ClosedPort = FreePort.Next();

    private static string AccountKey(string connectionString) => AccountKeyValue().Match(connectionString).Groups[1].Value;

    [GeneratedRegex(@"BlobEndpoint=http://127\.0\.0\.1:\d+/")]
    private static partial Regex BlobEndpoint();

    [GeneratedRegex("AccountKey=([^;]+)")]
    private static partial Regex AccountKeyValue();

    [GeneratedRegex(@"BlobEndpoint=http://127\.0\.0\.1:(\d+)/")]
    private static partial Regex BlobPort();

    /// <summary>A loopback port that forwards every connection to another port: the way back to a target that was cut off.</summary>
    private sealed class TcpForwarder : IAsyncDisposable
    {
        private readonly TcpListener _listener;
        private readonly int _to;
        private readonly CancellationTokenSource _stop = new();
        private readonly Task _loop;

        private TcpForwarder(int port, int to)
        {
            _listener = new TcpListener(IPAddress.Loopback, port);
            _listener.Start();
            _to = to;
            _loop = AcceptAsync();
        }

        public static TcpForwarder Start(int port, int to) => new(port, to);

        private async Task AcceptAsync()
        {
            var pipes = new List<Task>();
            try
            {
                while (true) pipes.Add(PipeAsync(await _listener.AcceptTcpClientAsync(_stop.Token)));
            }
            catch (OperationCanceledException)
            {
            }
            await Task.WhenAll(pipes);
        }

        private async Task PipeAsync(TcpClient client)
        {
            using var _ = client;
            using var upstream = new TcpClient();
            try
            {
                await upstream.ConnectAsync(IPAddress.Loopback, _to, _stop.Token);
                var a = client.GetStream();
                var b = upstream.GetStream();
                await Task.WhenAny(a.CopyToAsync(b, _stop.Token), b.CopyToAsync(a, _stop.Token));
            }
            catch (Exception ex) when (ex is IOException or SocketException or OperationCanceledException)
            {
                // A connection cut when the forwarder stops, or by either end.
            }
        }

        public async ValueTask DisposeAsync()
        {
            await _stop.CancelAsync();
            _listener.Stop();
            await _loop;
            _stop.Dispose();
        }
    }
}
