using System.Collections.Concurrent;
using System.Diagnostics;
using System.Net;
using System.Net.Http.Headers;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Tests.EndToEnd;
using Wardline.Server.Tests.Infrastructure;
using Xunit.Abstractions;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.Modules.Ledger;

/// <summary>The crash tests kill real server processes and keep the machine busy: they run alone.</summary>
[CollectionDefinition(Name, DisableParallelization = true)]
public sealed class CrashCollection
{
    public const string Name = "Ledger crashes";
}

/// <summary>
/// `wardline serve` as a separate process under concurrent writes and reads, killed (SIGKILL) at a random
/// moment, again and again: every response a client received has its ledger entry, the server restarts
/// writable each time (its start-up check passes), and the whole ledger verifies after every crash.
/// </summary>
[Trait("Category", "Crash")]
[Collection(CrashCollection.Name)]
public abstract class CrashConformance(StoreKind kind, ITestOutputHelper output) : IAsyncLifetime
{
    private const int Crashes = 10;
    private TestStore _store = null!;

    public async Task InitializeAsync() => _store = await TestStore.CreateAsync(kind);

    public async Task DisposeAsync()
    {
        ReleasePools();
        await _store.DisposeAsync();
    }

    [Fact]
    public async Task Every_received_response_survives_a_kill_9_and_the_ledger_verifies_after_each_crash()
    {
        await using (var setup = await StartAsync(_store))
        {
            // Creates the "tester" account of the all-access test policy.
        }
        // A token from the command line, as an operator would get one: the in-process server's names its own address as issuer.
        var issued = await WardlineCli.RunAsync(["token", .. StoreArgs(_store.Options), "--user", "tester"]);
        Assert.True(issued.ExitCode == 0, issued.Output);
        var token = issued.Output.Trim();
        var config = Path.Combine(_store.Folder, "crash.json");
        await File.WriteAllTextAsync(config, JsonSerializer.Serialize(new
        {
            Wardline = new
            {
                Access = new { PolicyPath = TestServer.AllAccessPolicy, RateLimits = new { UserPerMinute = 0 } },
                Ledger = new { HeadIntervalSeconds = 1 },
            },
        }));

        var seed = Environment.TickCount;
        var random = new Random(seed);
        var created = new ConcurrentBag<(string Id, long Index)>();
        var reads = new ConcurrentDictionary<string, int>();
        var clock = Stopwatch.StartNew();
        for (var crash = 0; crash < Crashes; crash++)
        {
            var port = FreePort.Next();
            var baseUri = new Uri($"http://127.0.0.1:{port}/fhir/");
            using var client = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(20) };
            client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
            RunningProcess? server = RunningProcess.Wardline(["serve", .. StoreArgs(_store.Options), "--urls", $"http://127.0.0.1:{port}", "--config", config]);
            try
            {
                await server.WaitForHttpAsync(new Uri(baseUri, "metadata"), TimeSpan.FromSeconds(60));
                var head = await GetJsonAsync(client, new Uri(baseUri, "/ledger/head"));
                Assert.True(head["readOnly"] is null, $"after crash {crash}: {head["readOnly"]}\n{server.Output}");

                using var stop = new CancellationTokenSource();
                var workers = Enumerable.Range(0, 6).Select(w => Task.Run(() => DriveAsync(client, $"C{crash}w{w}", created, reads, stop.Token))).ToList();
                await Task.Delay(random.Next(150, 1200));
                server.Dispose(); // Process.Kill(entireProcessTree: true): SIGKILL, mid-request.
                server = null;
                await stop.CancelAsync();
                await Task.WhenAll(workers);
            }
            finally
            {
                server?.Dispose();
            }
            ReleasePools();
            var report = await VerifyInProcessAsync();
            Assert.True(report.Problems.Count == 0, $"after crash {crash} (seed {seed}): {string.Join("; ", report.Problems)}");
            output.WriteLine($"crash {crash}: {report.Size} entries, {report.VersionsChecked} versions, {created.Count} creates and {reads.Values.Sum()} reads received so far, {clock.Elapsed.TotalSeconds:0.0} s");
        }

        Assert.True(created.Count > Crashes, $"only {created.Count} creates were answered");
        var o = _store.Options;
        var creates = (await QueryAsync(o, "SELECT idx, res_id FROM ledger_entries WHERE type = 'write' AND event = 'create' AND res_type = 'Patient'",
            r => (Index: r.GetInt64(0), Id: r.GetString(1)))).ToDictionary(e => e.Index, e => e.Id);
        foreach (var (id, index) in created)
        {
            Assert.True(creates.TryGetValue(index, out var recorded) && recorded == id, $"Patient/{id} was answered with receipt index {index}, which holds no write entry for it");
        }
        var recordedReads = (await QueryAsync(o, "SELECT res_id, COUNT(*) FROM access_log WHERE phase = 'outcome' AND action = 'Read' AND status = 200 GROUP BY res_id",
            r => (Id: r.GetString(0), Count: r.GetInt64(1)))).ToDictionary(e => e.Id, e => e.Count);
        foreach (var (id, count) in reads)
        {
            Assert.True(count <= recordedReads.GetValueOrDefault(id), $"Patient/{id}: {count} reads were answered but fewer are recorded");
        }
        var verify = await VerifyAsync(o);
        Assert.True(verify.ExitCode == 0, verify.Output);
        output.WriteLine($"{Crashes} crashes in {clock.Elapsed.TotalSeconds:0.0} s (seed {seed}); {created.Count} creates and {reads.Values.Sum()} reads checked");
    }

    /// <summary>Creates and reads patients until the server dies; records only what was answered.</summary>
    private static async Task DriveAsync(HttpClient client, string name, ConcurrentBag<(string, long)> created, ConcurrentDictionary<string, int> reads, CancellationToken stop)
    {
        try
        {
            for (var i = 0; !stop.IsCancellationRequested; i++)
            {
                using var response = await client.PostAsync("Patient", FhirTest.Json(FhirTest.Patient(name + "x" + i)), CancellationToken.None);
                if (response.StatusCode != HttpStatusCode.Created) return;
                var id = (string)(await response.ReadJsonAsync())["id"]!;
                created.Add((id, Receipt(response).Index));
                using var read = await client.GetAsync($"Patient/{id}", CancellationToken.None);
                if (read.StatusCode != HttpStatusCode.OK) return;
                await read.Content.ReadAsByteArrayAsync(CancellationToken.None);
                reads.AddOrUpdate(id, 1, (_, n) => n + 1);
            }
        }
        catch (Exception ex) when (ex is HttpRequestException or TaskCanceledException or IOException or JsonException or System.Net.Sockets.SocketException)
        {
            // The server was killed mid-request: that response was never received. (A connection the kill cuts while it is being
            // opened can surface as a bare SocketException: HttpClient reads the socket's remote end point unwrapped.)
        }
    }

    /// <summary>What `wardline ledger verify` runs, in this process, so each crash costs no second process start.</summary>
    private async Task<VerifyReport> VerifyInProcessAsync()
    {
        await using var sp = await Wardline.Cli.StoreArgs.OpenAsync(_store.SharedOptions(), CancellationToken.None);
        return await sp.GetRequiredService<LedgerVerifier>().VerifyAsync(LedgerVerifier.Depth.Full, CancellationToken.None);
    }
}

public sealed class CrashOnSqlite(ITestOutputHelper output) : CrashConformance(StoreKind.Sqlite, output);

public sealed class CrashOnPostgres(ITestOutputHelper output) : CrashConformance(StoreKind.Postgres, output);
