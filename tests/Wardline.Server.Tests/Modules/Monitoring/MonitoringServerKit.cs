using System.Diagnostics;
using System.Net.Http.Json;
using System.Net;
using System.Text.Json.Nodes;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Ledger.Infrastructure;

namespace Wardline.Server.Tests.Modules.Monitoring;

/// <summary>What the monitoring server tests share: staff patients, the /monitor API, polling with a deadline.</summary>
internal static class MonitoringServerKit
{
    public const string StaffSystem = "https://wardline.example/staff";

    /// <summary>A patient record that is the employee <paramref name="user"/>'s own (the staff identifier names the account).</summary>
    public static string StaffPatient(string user, string family = "Okafor") => $$"""
        {"resourceType":"Patient","identifier":[{"system":"{{StaffSystem}}","value":"{{user}}"}],"name":[{"family":"{{family}}","given":["Sam"]}],"gender":"male","birthDate":"1979-03-04"}
        """;

    public static Uri Monitor(TestServer server, string pathAndQuery) => new(server.BaseUri, "/monitor/" + pathAndQuery);

    /// <summary>The server's own client (the tester) creates a patient record that is its own and opens it: a self-access. Returns the patient id.</summary>
    public static async Task<string> ReadOwnRecordAsync(TestServer server)
    {
        var own = await server.Client.CreateAsync("Patient", StaffPatient("tester"));
        Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync("Patient/" + own)).StatusCode);
        return own;
    }

    /// <summary>An officer replays the last hour (to a minute ahead, so what was just written is in it); returns the answer.</summary>
    public static async Task<JsonNode> ReplayLastHourAsync(HttpClient officer, TestServer server) => await JsonAsync(await PostJsonAsync(officer, Monitor(server, "replay"),
        new { from = DateTimeOffset.UtcNow.AddHours(-1).ToString("O"), to = DateTimeOffset.UtcNow.AddMinutes(1).ToString("O") }));

    public static Task<HttpResponseMessage> PostJsonAsync(HttpClient client, Uri uri, object body) => client.PostAsJsonAsync(uri, body);

    public static async Task<JsonNode> JsonAsync(HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.IsSuccessStatusCode, $"{(int)response.StatusCode}: {text}");
        return JsonNode.Parse(text)!;
    }

    /// <summary>Polls until <paramref name="probe"/> gives a value, up to <paramref name="seconds"/>: a deadline, not a timed assertion.</summary>
    public static async Task<T> EventuallyAsync<T>(Func<Task<T?>> probe, string what, int seconds = 30) where T : class
    {
        var clock = Stopwatch.StartNew();
        while (clock.Elapsed < TimeSpan.FromSeconds(seconds))
        {
            if (await probe() is { } value) return value;
            await Task.Delay(200);
        }
        throw new TimeoutException($"{what}: nothing after {seconds} s");
    }

    /// <summary>Makes <paramref name="name"/> a member of staff with a practitioner record and a department.</summary>
    internal static async Task StaffAsync(TestServer server, string name, string display, string? practitioner = null, params string[] departments)
    {
        var result = await server.Service<AccountService>().CreateAsync(
            Account.New(name, display) with { Roles = ["tester"], PractitionerId = practitioner, Departments = departments }, null, "test", CancellationToken.None);
        Assert.IsType<AccountResult.Done>(result);
    }
}

/// <summary>
/// A test class over a real server on a fresh store of either engine, started before each test and stopped after it.
/// Streaming monitoring is off (alerts come from replays) unless <see cref="Configure"/> is overridden; with
/// <paramref name="officer"/>, <see cref="Officer"/> is a signed-in privacy officer (privacy.olu).
/// </summary>
public abstract class MonitoringServerTest(StoreKind kind, bool officer = false) : IAsyncLifetime
{
    private HttpClient? _officer;

    protected TestStore Store { get; private set; } = null!;

    protected TestServer Server { get; private set; } = null!;

    protected HttpClient Officer => _officer ?? throw new InvalidOperationException("this test class was made without an officer");

    public async Task InitializeAsync()
    {
        Store = await TestStore.CreateAsync(kind);
        var options = Store.SharedOptions();
        Configure(options);
        Server = await TestServer.StartAsync(options);
        if (officer) _officer = await LedgerTestKit.ClientAsync(Server, "privacy.olu", "privacy_officer");
    }

    /// <summary>Sets the server's options before it starts (<see cref="Store"/> is there already); by default, streaming monitoring off.</summary>
    protected virtual void Configure(WardlineOptions options) => options.Monitoring.Enabled = false;

    public async Task DisposeAsync()
    {
        _officer?.Dispose();
        await Server.DisposeAsync();
        await Store.DisposeAsync();
    }
}
