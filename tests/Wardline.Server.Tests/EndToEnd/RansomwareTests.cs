using System.Collections.Concurrent;
using System.Diagnostics;
using System.Globalization;
using System.Net;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Npgsql;
using Wardline.Server.Tests.Infrastructure;
using Xunit.Abstractions;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.EndToEnd;

/// <summary>
/// Issue 5, item 6: a server backs up continuously under a write load, ransomware destroys its database (on SQLite the
/// database, WAL and shared-memory files are overwritten in place; on PostgreSQL the database is dropped and an empty one
/// takes its name), and `wardline restore` brings the store back into the same place. Every write acknowledged before the
/// recovery point comes back with identical content, the restored server takes writes, and the restored ledger verifies.
/// </summary>
public abstract class RansomwareConformance(StoreKind kind, ITestOutputHelper output, bool toAzurite = false) : IAsyncLifetime
{
    private const int IntervalSeconds = 1;
    private static readonly TimeSpan LoadDuration = TimeSpan.FromSeconds(8);

    // A backup run needs time of its own after its tick (reading what is new, sealing, uploading): the recovery
    // point is the interval plus one run, and a loaded two-core machine stretches the run.
    private static readonly TimeSpan Margin = TimeSpan.FromSeconds(2);

    private TestStore _store = null!;
    private string _target = null!;

    /// <summary>One write the server acknowledged: what it answered, and when the answer arrived.</summary>
    private sealed record Acknowledged(string Type, string Id, string Version, string Body, string Sha256, DateTimeOffset At);

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(kind);
        _target = Path.Combine(_store.Folder, "target");
    }

    public async Task DisposeAsync() => await _store.DisposeAsync();

    [Fact]
    public Task Writes_acknowledged_before_the_recovery_point_survive_ransomware_on_the_database_files() => AttackAsync(duringLoad: false);

    /// <summary>The attack lands while clients are still writing: what is lost is what the last backup had not shipped yet.</summary>
    [Fact]
    public Task Ransomware_striking_during_the_write_load_loses_only_writes_within_the_recovery_point() => AttackAsync(duringLoad: true);

    private async Task AttackAsync(bool duringLoad)
    {
        var options = _store.SharedOptions();
        options.Backup.Target = "file://" + _target;
        string[] config = [];
        if (toAzurite)
        {
            // Azure Blob Storage (Azurite) for the backups and for the ledger's witness, each its own container; the restore,
            // on another machine, is given the connection strings and the witness in its config file.
            options.Backup.Target = "azure://devstoreaccount1/wl-" + Guid.NewGuid().ToString("N")[..12];
            options.Backup.Store.AzureConnectionString = Environment.GetEnvironmentVariable("WARDLINE_TEST_AZURITE")
                ?? throw new InvalidOperationException("WARDLINE_TEST_AZURITE is not set: run the tests with scripts/services.sh sourced, which starts Azurite.");
            UseBlobWitness(options, "azure://devstoreaccount1/wlw-" + Guid.NewGuid().ToString("N")[..12]);
            var file = Path.Combine(_store.Folder, "restore.json");
            await File.WriteAllTextAsync(file, JsonSerializer.Serialize(new
            {
                Wardline = new
                {
                    Backup = new { Store = new { options.Backup.Store.AzureConnectionString } },
                    Ledger = new { options.Ledger.WitnessTarget, WitnessStore = new { options.Backup.Store.AzureConnectionString } },
                },
            }));
            config = ["--config", file];
        }
        options.Backup.IntervalSeconds = IntervalSeconds;
        options.Backup.DrillIntervalHours = 0;
        var acknowledged = new ConcurrentBag<Acknowledged>();
        DateTimeOffset destroyedAt;
        await using (var server = await TestServer.StartAsync(options))
        {
            var until = Stopwatch.StartNew();
            using var attacked = new CancellationTokenSource();
            var load = Task.WhenAll(Enumerable.Range(0, 4).Select(worker => WriteLoadAsync(server, worker, until, acknowledged, attacked.Token)));
            if (duringLoad) await Task.Delay(LoadDuration - TimeSpan.FromSeconds(2));
            else
            {
                await load;
                await Task.Delay(TimeSpan.FromSeconds(IntervalSeconds));
            }

            destroyedAt = DateTimeOffset.UtcNow;
            await attacked.CancelAsync();
            if (kind == StoreKind.Sqlite) Encrypt(options.DataDirectory!);
            else await WipeDatabaseAsync(options.PostgresConnectionString!);
            await load;
            await DisposeCrashingAsync(server);
        }
        ReleasePools();
        // Whatever the dying server wrote back is encrypted too, as ransomware would.
        if (kind == StoreKind.Sqlite) Encrypt(options.DataDirectory!);
        Assert.True(acknowledged.Count > 100, $"only {acknowledged.Count} writes were acknowledged");
        // A write answered while the files were being overwritten was acknowledged after the attack began: not counted.
        var late = acknowledged.Count(a => a.At >= destroyedAt);
        var before = acknowledged.Where(a => a.At < destroyedAt).ToList();

        // The blob witness is not the --to folder's own: the restore is told it is this store's, so it sets aside the heads beyond the backup.
        string[] into = kind == StoreKind.Sqlite
            ? ["--to", options.DataDirectory!, .. toAzurite ? ["--adopt-witness"] : Array.Empty<string>()]
            : ["--to-db", options.PostgresConnectionString!, "--keyring", options.KeyringPath!, "--witness", WitnessFolder(options), "--adopt-witness"];
        var restore = await WardlineCli.RunAsync(["restore", "--from", options.Backup.Target, .. into, .. config], timeout: TimeSpan.FromMinutes(5));
        output.WriteLine(restore.Output);
        Assert.True(restore.ExitCode == 0, restore.Output);
        Assert.Contains("proven", restore.Output, StringComparison.Ordinal);
        if (kind == StoreKind.Sqlite) Assert.NotEmpty(Directory.GetFiles(options.DataDirectory!, "wardline.db.damaged-*"));

        var cutoff = destroyedAt - TimeSpan.FromSeconds(IntervalSeconds) - Margin;
        var lost = new List<Acknowledged>();
        var restoredOptions = _store.SharedOptions();
        if (toAzurite) UseBlobWitness(restoredOptions, options.Ledger.WitnessTarget!);
        await using (var restored = await TestServer.StartAsync(restoredOptions))
        {
            foreach (var batch in before.OrderBy(a => a.At).Chunk(16))
            {
                var found = await Task.WhenAll(batch.Select(a => ReadBackAsync(restored, a)));
                foreach (var (write, body) in batch.Zip(found))
                {
                    if (body is null)
                    {
                        lost.Add(write);
                        continue;
                    }
                    Assert.True(JsonNode.DeepEquals(JsonNode.Parse(write.Body), JsonNode.Parse(body)),
                        $"{write.Type}/{write.Id} version {write.Version} came back with other content (acknowledged SHA-256 {write.Sha256})");
                }
            }
            var written = await restored.Client.PostJsonAsync("Patient", FhirTest.Patient("AfterRestore"));
            Assert.True(written.StatusCode == HttpStatusCode.Created, $"the restored server refused a write: {(int)written.StatusCode} {await written.Content.ReadAsStringAsync()}");
        }

        var window = lost.Count == 0 ? TimeSpan.Zero : destroyedAt - lost.Min(l => l.At);
        var newestKept = before.Except(lost).Max(a => a.At);
        output.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"{(duringLoad ? "attack during the load" : "attack one interval after the load")}: {before.Count} writes acknowledged before the attack ({late} more while it struck); " +
            $"{before.Count - lost.Count} restored with identical content, {lost.Count} lost; " +
            $"loss window {window.TotalSeconds:0.00} s (the oldest lost write was acknowledged that long before the files were destroyed; allowed {IntervalSeconds + Margin.TotalSeconds:0.0} s); " +
            $"newest restored write acknowledged {(destroyedAt - newestKept).TotalSeconds:0.00} s before the destruction"));
        var tooOld = lost.Where(l => l.At < cutoff).ToList();
        Assert.True(tooOld.Count == 0,
            $"{tooOld.Count} writes acknowledged more than {IntervalSeconds} s + {Margin.TotalSeconds} s before the destruction are missing, the oldest {(destroyedAt - tooOld.FirstOrDefault()?.At)?.TotalSeconds:0.00} s before");

        var verify = await WardlineCli.RunAsync(["ledger", "verify", .. StoreArgs(restoredOptions), .. config]);
        Assert.True(verify.ExitCode == 0, verify.Output);
    }

    private static void UseBlobWitness(Wardline.Server.Hosting.WardlineOptions options, string uri)
    {
        options.Ledger.WitnessPath = null;
        options.Ledger.WitnessTarget = uri;
        options.Ledger.WitnessStore.AzureConnectionString = Environment.GetEnvironmentVariable("WARDLINE_TEST_AZURITE");
    }

    /// <summary>A client's loop: a patient and an observation created, then each updated, until the load's time is up.</summary>
    private static async Task WriteLoadAsync(TestServer server, int worker, Stopwatch clock, ConcurrentBag<Acknowledged> acknowledged, CancellationToken attacked)
    {
        using var client = new HttpClient { BaseAddress = server.BaseUri, Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = server.Client.DefaultRequestHeaders.Authorization;
        for (var round = 0; clock.Elapsed < LoadDuration && !attacked.IsCancellationRequested; round++)
        {
            try
            {
                await RoundAsync(client, worker, round, acknowledged);
            }
            catch (Exception ex) when (attacked.IsCancellationRequested && ex is InvalidOperationException or HttpRequestException or TaskCanceledException)
            {
                // Once the database is destroyed, writes fail: the clients stop.
                return;
            }
        }
    }

    private static async Task RoundAsync(HttpClient client, int worker, int round, ConcurrentBag<Acknowledged> acknowledged)
    {
        var family = $"Ransom{worker}x{round}";
        var patient = await WriteAsync(client, HttpMethod.Post, "Patient", FhirTest.Patient(family), acknowledged);
        var observation = JsonNode.Parse(FhirTest.Observation(patient, value: 60 + round % 40))!.AsObject();
        var observationId = await WriteAsync(client, HttpMethod.Post, "Observation", observation.ToJsonString(), acknowledged);
        await WriteAsync(client, HttpMethod.Put, $"Patient/{patient}", FhirTest.Patient(family, given: "Updated", id: patient), acknowledged);
        observation["id"] = observationId;
        observation["status"] = "amended";
        await WriteAsync(client, HttpMethod.Put, $"Observation/{observationId}", observation.ToJsonString(), acknowledged);
    }

    private static async Task<string> WriteAsync(HttpClient client, HttpMethod method, string url, string json, ConcurrentBag<Acknowledged> acknowledged)
    {
        using var request = new HttpRequestMessage(method, url) { Content = FhirTest.Json(json) };
        using var response = await client.SendAsync(request);
        var body = await response.Content.ReadAsStringAsync();
        var at = DateTimeOffset.UtcNow;
        if (!response.IsSuccessStatusCode) throw new InvalidOperationException($"{method} {url} answered {(int)response.StatusCode}: {body}");
        var resource = JsonNode.Parse(body)!.AsObject();
        var id = (string)resource["id"]!;
        acknowledged.Add(new Acknowledged((string)resource["resourceType"]!, id, (string)resource["meta"]!["versionId"]!, body,
            Convert.ToHexStringLower(SHA256.HashData(Encoding.UTF8.GetBytes(body))), at));
        return id;
    }

    /// <summary>The version as the restored server reads it back, or null when it is not there.</summary>
    private static async Task<string?> ReadBackAsync(TestServer server, Acknowledged write)
    {
        using var response = await server.Client.GetAsync($"{write.Type}/{write.Id}/_history/{write.Version}");
        if (response.StatusCode == HttpStatusCode.NotFound) return null;
        var body = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{write.Type}/{write.Id}/_history/{write.Version}: {(int)response.StatusCode} {body}");
        return body;
    }

    /// <summary>Overwrites the database and its WAL and shared-memory files in place with random bytes, as ransomware encrypting them would.</summary>
    private static void Encrypt(string folder)
    {
        foreach (var suffix in new[] { "", "-wal", "-shm" })
        {
            var file = Path.Combine(folder, "wardline.db" + suffix);
            if (!File.Exists(file)) continue;
            var length = Math.Max(4096, new FileInfo(file).Length);
            using var stream = new FileStream(file, FileMode.Open, FileAccess.Write, FileShare.ReadWrite | FileShare.Delete);
            stream.Write(RandomNumberGenerator.GetBytes((int)length));
            stream.Flush(flushToDisk: true);
        }
    }

    /// <summary>Drops the database under the running server and creates an empty one of the same name: every table and row is gone.</summary>
    private static async Task WipeDatabaseAsync(string connectionString)
    {
        var name = new NpgsqlConnectionStringBuilder(connectionString).Database!;
        await using var c = new NpgsqlConnection(TestStore.AdminConnectionString());
        await c.OpenAsync();
        await using (var drop = c.CreateCommand())
        {
            drop.CommandText = $"DROP DATABASE {name} WITH (FORCE)";
            await drop.ExecuteNonQueryAsync();
        }
        await using var create = c.CreateCommand();
        create.CommandText = $"CREATE DATABASE {name}";
        await create.ExecuteNonQueryAsync();
    }

    /// <summary>Stops a server whose database was destroyed under it: what it fails at on the way down is expected.</summary>
    private async Task DisposeCrashingAsync(TestServer server)
    {
        try
        {
            await server.DisposeAsync();
        }
        catch (Exception ex) when (ex is System.Data.Common.DbException or InvalidOperationException or IOException or AggregateException)
        {
            output.WriteLine($"the server stopped with {ex.GetType().Name}: {ex.Message}");
        }
    }
}

public sealed class RansomwareOnSqlite(ITestOutputHelper output) : RansomwareConformance(StoreKind.Sqlite, output);

public sealed class RansomwareOnPostgres(ITestOutputHelper output) : RansomwareConformance(StoreKind.Postgres, output);

/// <summary>Backups and the ledger's witness both in Azure Blob Storage (Azurite).</summary>
public sealed class RansomwareOnSqliteWithAzureBackups(ITestOutputHelper output) : RansomwareConformance(StoreKind.Sqlite, output, toAzurite: true);
