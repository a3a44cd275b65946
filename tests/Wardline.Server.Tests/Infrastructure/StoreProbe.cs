using System.Net;
using System.Text.Json.Nodes;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Tests.Infrastructure;

/// <summary>Looks at what a server has stored, to prove that a refused request wrote nothing.</summary>
public static class StoreProbe
{
    // Every write adds a version row; the search index tables change only in the same transaction.
    private static readonly string[] RecordTables = ["resource_versions", "resources", "data_keys"];

    /// <summary>The number of rows in the tables that hold records (the access log is not counted: refusals are audited).</summary>
    public static async Task<long> StoredRowsAsync(this TestServer server)
    {
        var store = server.Service<RecordStore>();
        long rows = 0;
        foreach (var table in RecordTables)
        {
            rows += await store.CountAsync($"SELECT COUNT(*) FROM {table}", CancellationToken.None);
        }
        return rows;
    }

    /// <summary>
    /// Sends a request that must be refused with <paramref name="status"/> and an OperationOutcome,
    /// and checks that the store holds exactly the rows it held before. Returns the outcome.
    /// </summary>
    public static async Task<JsonObject> RefusedAsync(this TestServer server, HttpStatusCode status, HttpRequestMessage request, HttpClient? client = null)
    {
        var before = await server.StoredRowsAsync();
        var response = await (client ?? server.Client).SendAsync(request);
        var text = await response.Content.ReadAsStringAsync();

        Assert.True(status == response.StatusCode, $"{request.Method} {request.RequestUri}: expected {(int)status}, got {(int)response.StatusCode}: {text}");
        Assert.StartsWith("application/fhir+json", response.Content.Headers.ContentType?.ToString());
        var outcome = JsonNode.Parse(text)!.AsObject();
        Assert.Equal("OperationOutcome", (string?)outcome["resourceType"]);
        Assert.NotEmpty(outcome["issue"]!.AsArray());
        Assert.Equal(before, await server.StoredRowsAsync());
        return outcome;
    }

    /// <summary>The diagnostics of every issue of an OperationOutcome.</summary>
    public static List<string> Diagnostics(this JsonObject outcome) =>
        outcome["issue"]!.AsArray().Select(i => (string?)i!["diagnostics"] ?? "").ToList();
}
