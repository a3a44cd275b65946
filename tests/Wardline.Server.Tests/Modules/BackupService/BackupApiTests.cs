using System.Diagnostics;
using System.Net;
using System.Text.Json.Nodes;
using Wardline.Server.Hosting;
using Wardline.Server.Tests.EndToEnd;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.Modules.BackupService;

/// <summary>
/// Continuous backups and the /backup API on a server with a folder target shipping every second: a signed manifest
/// appears within seconds, status shows it to administrators and officers only, and backups and drills run on demand.
/// </summary>
public abstract class BackupApiConformance(StoreKind kind) : IAsyncLifetime
{
    private TestStore _store = null!;
    private TestServer _server = null!;
    private HttpClient _admin = null!;
    private string _target = null!;

    private WardlineOptions Options => _store.SharedOptions();

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(kind);
        _target = Path.Combine(_store.Folder, "target");
        var options = _store.SharedOptions();
        options.Backup.Target = "file://" + _target;
        options.Backup.IntervalSeconds = 1;
        options.Backup.DrillIntervalHours = 0;
        options.Backup.DrillFolder = Path.Combine(_store.Folder, "drills");
        _server = await TestServer.StartAsync(options);
        _admin = await ClientAsync(_server, "backup.admin", "administrator");
        await _server.Client.CreateAsync("Patient", FhirTest.Patient("Backed" + Guid.NewGuid().ToString("N")[..6]));
    }

    public async Task DisposeAsync()
    {
        _admin.Dispose();
        await _server.DisposeAsync();
        await _store.DisposeAsync();
    }

    [Fact]
    public async Task A_server_with_a_folder_target_ships_a_signed_manifest_within_a_few_seconds()
    {
        var clock = Stopwatch.StartNew();

        var manifest = await WaitForManifestAsync(_target, TimeSpan.FromSeconds(20));

        Assert.True(clock.Elapsed < TimeSpan.FromSeconds(20), $"no manifest after {clock.Elapsed}");
        Assert.NotNull(manifest);
        Assert.NotEmpty(Directory.GetFiles(Path.Combine(_target, "segments"), "*.seg", SearchOption.AllDirectories));
        var verify = await WardlineCli.RunAsync(["backup", "verify", .. StoreArgs(Options), "--target", "file://" + _target]);
        Assert.True(verify.ExitCode == 0, verify.Output);
        Assert.Contains("every manifest is signed by this keyring", verify.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Backup_status_shows_an_administrator_health_ok_and_the_last_good_backup()
    {
        await WaitForManifestAsync(_target, TimeSpan.FromSeconds(20));

        var status = await GetJsonAsync(_admin, BackupUri("status"));

        Assert.Equal("ok", (string?)status["health"]);
        Assert.Equal("file://" + _target, (string?)status["target"]);
        Assert.Equal(1, (int)status["intervalSeconds"]!);
        var lastGood = status["lastGood"]!.AsObject();
        Assert.Equal("completed", (string?)lastGood["status"]);
        Assert.NotNull((string?)lastGood["manifest"]);
        Assert.True((double)status["lastGoodAgeSeconds"]! < 30, $"the last good backup is {status["lastGoodAgeSeconds"]} s old");
        Assert.Contains("not supported", (string?)status["immutability"] ?? "", StringComparison.Ordinal);
        Assert.NotEmpty(status["history"]!.AsArray());
        using var officer = await ClientAsync(_server, "backup.officer", "security_officer");
        Assert.Equal(HttpStatusCode.OK, (await officer.GetAsync(BackupUri("status"))).StatusCode);
    }

    [Fact]
    public async Task Backup_status_and_runs_are_refused_to_a_clinician_with_403_and_to_anonymous_callers_with_401()
    {
        using var clinician = await ClientAsync(_server, "backup.physician", "physician");
        using var anonymous = _server.AnonymousClient();
        var onDemandBefore = await CountAsync(Options, "SELECT COUNT(*) FROM backup_runs WHERE trigger_by LIKE 'api:%'");

        foreach (var (client, expected) in new[] { (clinician, HttpStatusCode.Forbidden), (anonymous, HttpStatusCode.Unauthorized) })
        {
            Assert.Equal(expected, (await client.GetAsync(BackupUri("status"))).StatusCode);
            Assert.Equal(expected, (await client.GetAsync(BackupUri("drills"))).StatusCode);
            Assert.Equal(expected, (await client.PostAsync(BackupUri("run"), null)).StatusCode);
            Assert.Equal(expected, (await client.PostAsync(BackupUri("drill"), null)).StatusCode);
        }

        Assert.Equal(onDemandBefore, await CountAsync(Options, "SELECT COUNT(*) FROM backup_runs WHERE trigger_by LIKE 'api:%'"));
        Assert.Equal(0, await CountAsync(Options, "SELECT COUNT(*) FROM backup_drills"));
    }

    [Fact]
    public async Task A_backup_and_a_drill_on_demand_complete_and_the_drill_is_recorded_in_the_ledger()
    {
        var run = await _admin.PostAsync(BackupUri("run?full=true"), null);
        var runText = await run.Content.ReadAsStringAsync();
        Assert.True(run.StatusCode == HttpStatusCode.OK, runText);
        var result = JsonNode.Parse(runText)!.AsObject();
        Assert.Equal("completed", (string?)result["status"]);
        Assert.Equal("full", (string?)result["kind"]);
        Assert.Equal("a full backup was asked for", (string?)result["fullBecause"]);
        Assert.True((long)result["ledgerSize"]! > 0);
        Assert.Equal(1, await CountAsync(Options, "SELECT COUNT(*) FROM backup_runs WHERE trigger_by = 'api:backup.admin' AND status = 'completed'"));
        Assert.True(await CountAsync(Options, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'backup-completed' AND actor = 'api:backup.admin'") == 1);

        var drill = await _admin.PostAsync(BackupUri("drill"), null);
        var drillText = await drill.Content.ReadAsStringAsync();
        Assert.True(drill.StatusCode == HttpStatusCode.OK, drillText);
        var outcome = JsonNode.Parse(drillText)!.AsObject();

        Assert.Equal("passed", (string?)outcome["status"]);
        Assert.True((long)outcome["versions"]! >= 1);
        Assert.True((long)outcome["rtoMs"]! > 0);
        Assert.Empty(outcome["problems"]!.AsArray());
        Assert.Equal(1, await CountAsync(Options, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'restore-drill' AND outcome = 'succeeded'"));
        Assert.Equal(1, await CountAsync(Options, "SELECT COUNT(*) FROM backup_drills WHERE status = 'passed'"));
        var drills = await _admin.GetAsync(BackupUri("drills"));
        Assert.Equal(HttpStatusCode.OK, drills.StatusCode);
        Assert.Contains((string)outcome["id"]!, await drills.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.False(Directory.Exists(Path.Combine(_store.Folder, "drills")) && Directory.EnumerateFileSystemEntries(Path.Combine(_store.Folder, "drills")).Any(),
            "the drill left its scratch store behind");
    }

    private Uri BackupUri(string path) => new(_server.BaseUri, "/backup/" + path);

    internal static async Task<string> WaitForManifestAsync(string target, TimeSpan timeout)
    {
        var clock = Stopwatch.StartNew();
        var folder = Path.Combine(target, "manifests");
        while (clock.Elapsed < timeout)
        {
            if (Directory.Exists(folder) && Directory.GetFiles(folder, "*.json").FirstOrDefault() is { } manifest) return manifest;
            await Task.Delay(200);
        }
        throw new TimeoutException($"no manifest in {folder} after {timeout.TotalSeconds} s");
    }
}

public sealed class BackupApiOnSqlite() : BackupApiConformance(StoreKind.Sqlite);

public sealed class BackupApiOnPostgres() : BackupApiConformance(StoreKind.Postgres);
