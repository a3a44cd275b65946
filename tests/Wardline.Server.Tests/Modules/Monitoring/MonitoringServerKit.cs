using System.Diagnostics;
using System.Net.Http.Json;
using System.Text.Json.Nodes;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Tests.Infrastructure;

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
