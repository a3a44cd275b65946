using System.Net;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.EndToEnd;

/// <summary>`wardline demo` as a user runs it: a process that builds a demo store, serves it, and reuses it next time.</summary>
public sealed partial class DemoTests
{
    [Fact]
    public async Task Demo_serves_a_synthetic_hospital_and_a_second_run_reuses_the_store()
    {
        var folder = Directory.CreateTempSubdirectory("wardline-demo-").FullName;
        try
        {
            var data = Path.Combine(folder, "demo");

            var (first, firstPatients) = await RunDemoAsync(data);
            var (second, secondPatients) = await RunDemoAsync(data);

            Assert.Contains("stored", first, StringComparison.Ordinal);
            Assert.DoesNotContain("reusing", first, StringComparison.Ordinal);
            Assert.Equal(60, firstPatients);
            Assert.Contains("reusing the demo store", second, StringComparison.Ordinal);
            Assert.DoesNotContain("generating", second, StringComparison.Ordinal);
            Assert.Equal(firstPatients, secondPatients);
        }
        finally
        {
            Directory.Delete(folder, recursive: true);
        }
    }

    /// <summary>Runs the demo until it serves, uses it over HTTP with a token from its output, kills it; returns its output and the patient total.</summary>
    private static async Task<(string Output, int Patients)> RunDemoAsync(string data)
    {
        var port = FreePort.Next();
        using var demo = RunningProcess.Wardline(["demo", "--data", data, "--patients", "60", "--port", port.ToString()]);
        await demo.WaitForOutputAsync("Wardline demo is serving", TimeSpan.FromMinutes(2));
        var token = Token().Match(demo.Output);
        Assert.True(token.Success, "the demo prints bearer tokens");

        using var client = new HttpClient { BaseAddress = new Uri($"http://127.0.0.1:{port}/fhir/") };
        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync("Patient?_count=5")).StatusCode);
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token.Value);
        var patients = await client.GetAsync("Patient?_count=5");
        Assert.Equal(HttpStatusCode.OK, patients.StatusCode);
        var bundle = await patients.ReadJsonAsync();
        Assert.Equal("searchset", (string?)bundle["type"]);
        Assert.Equal(5, bundle.Resources().Count());
        var metadata = await client.GetAsync("metadata");
        Assert.Equal(HttpStatusCode.OK, metadata.StatusCode);
        Assert.Equal("CapabilityStatement", (string?)(await metadata.ReadJsonAsync())["resourceType"]);
        Assert.Contains($"http://127.0.0.1:{port}/fhir", demo.Output, StringComparison.Ordinal);
        return (demo.Output, (int)bundle["total"]!);
    }

    [GeneratedRegex(@"eyJ[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+\.[A-Za-z0-9_\-]+")]
    private static partial Regex Token();
}
