using System.Net.Http.Headers;
using System.Text;
using System.Text.Json;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.DependencyInjection;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;

namespace Wardline.Server.Tests.Infrastructure;

/// <summary>A real Wardline server on a loopback port, with a signed-in HTTP client.</summary>
public sealed class TestServer : IAsyncDisposable
{
    private TestServer(WebApplication app, Uri baseUri, HttpClient client, string token)
    {
        App = app;
        BaseUri = baseUri;
        Client = client;
        Token = token;
    }

    public WebApplication App { get; }

    /// <summary>The FHIR base, e.g. http://127.0.0.1:41234/fhir/.</summary>
    public Uri BaseUri { get; }

    /// <summary>A client that sends a valid bearer token.</summary>
    public HttpClient Client { get; }

    public string Token { get; }

    public T Service<T>() where T : notnull => App.Services.GetRequiredService<T>();

    /// <summary>The policy of tests that exercise the record store rather than access control: its "tester" role may do everything.</summary>
    public static string AllAccessPolicy => Path.Combine(AppContext.BaseDirectory, "TestData", "policies", "all-access.yaml");

    /// <summary>
    /// Starts a server. Unless <paramref name="options"/> names a policy, it runs under <see cref="AllAccessPolicy"/>
    /// and <paramref name="user"/> holds its "tester" role; the client's token counts as an MFA sign-in.
    /// </summary>
    public static async Task<TestServer> StartAsync(WardlineOptions options, string user = "tester")
    {
        options.Urls.Clear();
        options.Urls.Add("http://127.0.0.1:0");
        var allAccess = options.Access.PolicyPath is null;
        // Suites fire bursts far above a person's pace; the rate-limit tests set their own limits. The anonymous limit too:
        // every page a console test opens before signing in (the sign-in and enrolment pages, their styles and scripts)
        // comes from 127.0.0.1, and a faster run of the shared console server met its 429 (stop 19's own test run).
        if (options.Access.RateLimits.UserPerMinute == new RateLimitOptions().UserPerMinute) options.Access.RateLimits.UserPerMinute = 0;
        if (options.Access.RateLimits.AnonymousPerMinute == new RateLimitOptions().AnonymousPerMinute) options.Access.RateLimits.AnonymousPerMinute = 0;
        if (options.Access.RateLimits.TokenPerMinute == new RateLimitOptions().TokenPerMinute) options.Access.RateLimits.TokenPerMinute = 0;
        if (allAccess) options.Access.PolicyPath = AllAccessPolicy;
        var app = WardlineHost.Build(options);
        await app.StartAsync();
        var address = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
        var tokens = app.Services.GetRequiredService<AccessTokens>();
        if (allAccess)
        {
            await app.Services.GetRequiredService<AccountService>().CreateAsync(
                Account.New(user, user) with { Roles = ["tester"] }, null, "test", CancellationToken.None);
        }
        await tokens.AddUserAsync(user, user, CancellationToken.None);
        var token = await tokens.IssueAsync(user, TimeSpan.FromHours(2), CancellationToken.None) ?? throw new InvalidOperationException("no token");
        var baseUri = new Uri(address.TrimEnd('/') + "/fhir/");
        var client = new HttpClient { BaseAddress = baseUri, Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return new TestServer(app, baseUri, client, token);
    }

    public HttpClient AnonymousClient() => new() { BaseAddress = BaseUri, Timeout = TimeSpan.FromSeconds(60) };

    public async ValueTask DisposeAsync()
    {
        Client.Dispose();
        await App.StopAsync();
        await App.DisposeAsync();
    }
}

/// <summary>Small helpers for FHIR JSON over HTTP.</summary>
public static class FhirTest
{
    public const string JsonType = "application/fhir+json";

    public static StringContent Json(string json) => new(json, Encoding.UTF8, JsonType);

    public static StringContent Json(JsonNode node) => Json(node.ToJsonString());

    public static async Task<JsonObject> ReadJsonAsync(this HttpResponseMessage response)
    {
        var text = await response.Content.ReadAsStringAsync();
        return JsonNode.Parse(text)?.AsObject() ?? throw new InvalidOperationException("empty body");
    }

    public static Task<HttpResponseMessage> PostJsonAsync(this HttpClient client, string url, string json) => client.PostAsync(url, Json(json));

    public static Task<HttpResponseMessage> PutJsonAsync(this HttpClient client, string url, string json) => client.PutAsync(url, Json(json));

    /// <summary>The diagnostics of an OperationOutcome body, joined.</summary>
    public static async Task<string> DiagnosticsAsync(this HttpResponseMessage response)
    {
        var body = await response.ReadJsonAsync();
        Assert.Equal("OperationOutcome", (string?)body["resourceType"]);
        return string.Join(" | ", body["issue"]!.AsArray().Select(i => (string?)i!["diagnostics"] ?? ""));
    }

    public static IEnumerable<JsonObject> Entries(this JsonObject bundle) =>
        bundle["entry"]?.AsArray().Select(e => e!.AsObject()) ?? [];

    public static IEnumerable<JsonObject> Resources(this JsonObject bundle, string? mode = "match") =>
        bundle.Entries().Where(e => mode is null || (string?)e["search"]?["mode"] == mode).Select(e => e["resource"]!.AsObject());

    public static string Patient(string family, string given = "Alex", string? id = null, string birthDate = "1980-04-02", string gender = "female") =>
        JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["resourceType"] = "Patient",
            ["id"] = id,
            ["identifier"] = new[] { new { system = "https://hospital.example/mrn", value = "MRN-" + family } },
            ["name"] = new[] { new { family, given = new[] { given } } },
            ["gender"] = gender,
            ["birthDate"] = birthDate,
        }.Where(kv => kv.Value is not null).ToDictionary());

    public static string Condition(string patientId, string code = "22298006", string display = "Myocardial infarction", string onset = "2024-03-05", string? id = null) =>
        JsonSerializer.Serialize(new Dictionary<string, object?>
        {
            ["resourceType"] = "Condition",
            ["id"] = id,
            ["subject"] = new { reference = "Patient/" + patientId },
            ["code"] = new { coding = new[] { new { system = "http://snomed.info/sct", code, display } }, text = display },
            ["category"] = new[] { new { coding = new[] { new { system = "http://terminology.hl7.org/CodeSystem/condition-category", code = "encounter-diagnosis" } } } },
            ["clinicalStatus"] = new { coding = new[] { new { system = "http://terminology.hl7.org/CodeSystem/condition-clinical", code = "active" } } },
            ["onsetDateTime"] = onset,
        }.Where(kv => kv.Value is not null).ToDictionary());

    public static string Observation(string patientId, string code = "8867-4", decimal value = 72, string date = "2024-05-01T10:00:00Z", string status = "final") =>
        JsonSerializer.Serialize(new
        {
            resourceType = "Observation",
            status,
            code = new { coding = new[] { new { system = "http://loinc.org", code } } },
            subject = new { reference = "Patient/" + patientId },
            effectiveDateTime = date,
            valueQuantity = new { value, unit = "/min", system = "http://unitsofmeasure.org", code = "/min" },
        });

    public static async Task<string> CreateAsync(this HttpClient client, string type, string json)
    {
        var r = await client.PostJsonAsync(type, json);
        if ((int)r.StatusCode != 201) throw new InvalidOperationException($"create {type} answered {(int)r.StatusCode}: {await r.Content.ReadAsStringAsync()}");
        return (string)(await r.ReadJsonAsync())["id"]!;
    }
}

/// <summary>Accounts for tests that run under the built-in hospital policy rather than the all-access test policy.</summary>
public static class TestAccounts
{
    /// <summary>A tier 1 physician (the designated senior clinician): may read and write every clinical record without sensitivity labels.</summary>
    public static async Task SeniorClinicianAsync(IServiceProvider services, string name)
    {
        var result = await services.GetRequiredService<Wardline.Server.Modules.Access.Identity.AccountService>().CreateAsync(
            Wardline.Server.Modules.Access.Identity.Account.New(name, name) with { Roles = ["physician"], Tier = 1 }, null, "test", CancellationToken.None);
        if (result is not Wardline.Server.Modules.Access.Identity.AccountResult.Done) throw new InvalidOperationException($"account {name}: {result}");
    }
}
