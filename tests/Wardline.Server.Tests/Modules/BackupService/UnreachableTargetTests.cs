using System.Diagnostics;
using System.Net;
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

    private Task<long> FailedRunsAsync() =>
        CountAsync(_store.SharedOptions(), "SELECT COUNT(*) FROM backup_runs WHERE target LIKE 'azure:%' AND status = 'failed' AND trigger_by = 'schedule'");

    /// <summary>Azurite's connection string with its blob endpoint moved to a port nothing listens on.</summary>
    private static string ClosedAzurite()
    {
        var azurite = Environment.GetEnvironmentVariable("WARDLINE_TEST_AZURITE")
            ?? throw new InvalidOperationException("WARDLINE_TEST_AZURITE is not set: run the tests with scripts/services.sh sourced, which starts Azurite.");
        return BlobEndpoint().Replace(azurite, $"BlobEndpoint=http://127.0.0.1:{ClosedPort}/");
    }

    private static readonly int ClosedPort = FreePort.Next();

    private static string AccountKey(string connectionString) => AccountKeyValue().Match(connectionString).Groups[1].Value;

    [GeneratedRegex(@"BlobEndpoint=http://127\.0\.0\.1:\d+/")]
    private static partial Regex BlobEndpoint();

    [GeneratedRegex("AccountKey=([^;]+)")]
    private static partial Regex AccountKeyValue();
}
