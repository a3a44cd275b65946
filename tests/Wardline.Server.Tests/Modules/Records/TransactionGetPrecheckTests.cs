using System.Net;
using System.Text.Json.Nodes;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Search;
using Wardline.Server.Tests.Infrastructure;
using CapabilityStatement = Hl7.Fhir.Model.CapabilityStatement;
using SearchParamType = Hl7.Fhir.Model.SearchParamType;

namespace Wardline.Server.Tests.Modules.Records;

/// <summary>
/// A transaction's GET entries run after its writes commit, so one its execution would refuse (400) must refuse the
/// transaction before anything is written: the url is parsed once, and checked with the checks the execution makes, with
/// the same messages as the HTTP endpoint. A batch answers such an entry on its own. Also: /metadata states the search limits.
/// Run against both storage engines.
/// </summary>
public abstract class TransactionGetPrecheckTests(ServerFixture fixture)
{
    private HttpClient Client => fixture.Client;

    private TestServer Server => fixture.Server;

    private static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..10];

    private static JsonObject Entry(string method, string url, string? resource = null)
    {
        var e = new JsonObject();
        if (resource is not null) e["resource"] = JsonNode.Parse(resource);
        e["request"] = new JsonObject { ["method"] = method, ["url"] = url };
        return e;
    }

    private static HttpRequestMessage PostBundle(string type, params JsonObject[] entries) =>
        new(HttpMethod.Post, "") { Content = FhirTest.Json(new JsonObject { ["resourceType"] = "Bundle", ["type"] = type, ["entry"] = new JsonArray(entries) }) };

    private async Task<int> CountAsync(string query) => (int)(await (await Client.GetAsync(query)).ReadJsonAsync())["total"]!;

    /// <summary>GET urls a transaction must refuse; {id} is an existing Patient. The last value: whether the HTTP endpoint refuses the same url with 400 (and so the same messages).</summary>
    public static TheoryData<string, bool> BadGets => new()
    {
        { "Patient/{id}/_history?_since=notadate", true },
        { "Patient/{id}/_history?_since=2024-13-45", true },
        { "Patient/{id}/_history?_count=-1", true },
        { "Patient/{id}/_history?_count=abc", true },
        { "Patient/{id}/_history?_offset=-1", true },
        { "Patient/{id}/_history?_at=bad", true },
        { "Patient/{id}/_history?_count=5&_since=2020&nonsense=1", true },
        { "Patient/_history?_since=notadate", true },
        { "Patient/_history?_count=-1", true },
        { "Patient/{id}/_history/abc", true },
        { "Patient/{id}/_history/0", true },
        { "Patient/{id}/_history/-1", true },
        { "Patient/{id}/_history/1.5", true },
        { "Patient?_count=-1", true },
        { "Patient?nonsense=1", true },
        { "Nonsense/1", false },
        { "Nonsense?name=x", false },
        { "Patient/{id}/_history/1/extra", false },
        { "Patient/{id}/everything", false },
        { "Patient?family=Smith#section", false },
        { "Patient/{id}#section", false },
        { "http://other.example/fhir/Patient/{id}", false },
        { "https://other.example/fhir/Patient?family=Smith", false },
        { "urn:uuid:0f4e1c47-9f7b-4c1b-a1d6-1b7a3e0a2c11", false },
    };

    [Theory]
    [MemberData(nameof(BadGets))]
    public async Task A_transaction_whose_GET_entry_would_be_refused_is_refused_whole_and_writes_nothing(string get, bool sameAsHttp)
    {
        var family = Unique("TxGetPre");
        var existing = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("TxGetPreExisting")));
        var url = get.Replace("{id}", existing, StringComparison.Ordinal);

        var outcome = await Server.RefusedAsync(HttpStatusCode.BadRequest, PostBundle("transaction", Entry("POST", "Patient", FhirTest.Patient(family)), Entry("GET", url)));

        var diagnostics = outcome.Diagnostics();
        Assert.NotEmpty(diagnostics);
        Assert.All(diagnostics, d => Assert.StartsWith("entry[1]: ", d, StringComparison.Ordinal));
        Assert.DoesNotContain(diagnostics, d => d.Contains(family, StringComparison.Ordinal));
        Assert.Equal(0, await CountAsync($"Patient?family={family}"));
        if (sameAsHttp)
        {
            // The same checks as the HTTP endpoint, so the same messages.
            var direct = await Server.RefusedAsync(HttpStatusCode.BadRequest, new HttpRequestMessage(HttpMethod.Get, url));
            Assert.Equal(direct.Diagnostics().Select(d => "entry[1]: " + d), diagnostics);
        }
    }

    [Theory]
    [MemberData(nameof(BadGets))]
    public async Task A_batch_answers_such_a_GET_entry_400_on_its_own_and_the_other_entries_stand(string get, bool sameAsHttp)
    {
        var family = Unique("BatchGetPre");
        var existing = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("BatchGetPreExisting")));
        var url = get.Replace("{id}", existing, StringComparison.Ordinal);

        var response = await Client.SendAsync(PostBundle("batch", Entry("POST", "Patient", FhirTest.Patient(family)), Entry("GET", url)));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var entries = (await response.ReadJsonAsync()).Entries().ToList();
        Assert.Equal(["201", "400"], entries.Select(e => ((string)e["response"]!["status"]!).Split(' ')[0]));
        var outcome = entries[1]["response"]!["outcome"]!.AsObject();
        Assert.Equal("OperationOutcome", (string?)outcome["resourceType"]);
        if (sameAsHttp)
        {
            var direct = await Server.RefusedAsync(HttpStatusCode.BadRequest, new HttpRequestMessage(HttpMethod.Get, url));
            Assert.Equal(direct.Diagnostics(), outcome.Diagnostics());
        }
        Assert.Equal(1, await CountAsync($"Patient?family={family}"));
    }

    [Fact]
    public async Task A_transaction_with_valid_GET_entries_of_every_shape_writes_and_answers_each()
    {
        var family = Unique("TxGetOk");
        var existing = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("TxGetOkExisting")));

        var response = await Client.SendAsync(PostBundle("transaction",
            Entry("POST", "Patient", FhirTest.Patient(family)),
            Entry("GET", $"Patient/{existing}"),
            Entry("GET", $"/Patient/{existing}/_history/1"),
            Entry("GET", $"Patient/{existing}/_history?_since=2020-01-01&_count=5"),
            Entry("GET", "Patient/_history?_count=1&_offset=0"),
            Entry("GET", $"Patient?_id={existing}&_count=1")));

        var text = await response.Content.ReadAsStringAsync();
        Assert.True(response.StatusCode == HttpStatusCode.OK, text);
        var entries = JsonNode.Parse(text)!.AsObject().Entries().ToList();
        Assert.Equal(["201", "200", "200", "200", "200", "200"], entries.Select(e => ((string)e["response"]!["status"]!).Split(' ')[0]));
        Assert.Equal("Patient", (string?)entries[1]["resource"]!["resourceType"]);
        Assert.Equal("1", (string?)entries[2]["resource"]!["meta"]!["versionId"]);
        Assert.Equal("history", (string?)entries[3]["resource"]!["type"]);
        Assert.Equal("history", (string?)entries[4]["resource"]!["type"]);
        Assert.Equal("searchset", (string?)entries[5]["resource"]!["type"]);
        Assert.Equal(1, await CountAsync($"Patient?family={family}"));
    }

    [Fact]
    public async Task A_vread_of_a_malformed_version_is_refused_with_400_alike_for_a_known_and_an_unknown_resource()
    {
        var existing = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("VersionShape")));

        var known = await Server.RefusedAsync(HttpStatusCode.BadRequest, new HttpRequestMessage(HttpMethod.Get, $"Patient/{existing}/_history/abc"));
        var unknown = await Server.RefusedAsync(HttpStatusCode.BadRequest, new HttpRequestMessage(HttpMethod.Get, $"Patient/{Unique("none")}/_history/abc"));

        Assert.Equal(known.Diagnostics(), unknown.Diagnostics());
        Assert.Equal(HttpStatusCode.NotFound, (await Client.GetAsync($"Patient/{existing}/_history/2")).StatusCode);
    }

    [Fact]
    public async Task The_CapabilityStatement_states_the_search_limits_and_stays_valid_FHIR()
    {
        using var anonymous = Server.AnonymousClient();
        var response = await anonymous.GetAsync("metadata");
        var bytes = await response.Content.ReadAsByteArrayAsync();

        var parsed = FhirJson.Parse(bytes);
        Assert.True(parsed.Issues.Count == 0, string.Join("\n", parsed.Issues));
        var cs = Assert.IsType<CapabilityStatement>(parsed.Resource);
        var rest = Assert.Single(cs.Rest);
        var documentation = rest.Documentation ?? "";
        Assert.Contains($"at most {SearchPlan.MaxValuesPerParameter} values", documentation, StringComparison.Ordinal);
        Assert.Contains($"at most {SearchPlan.MaxValues} values over all its parameters", documentation, StringComparison.Ordinal);
        Assert.Contains($"at most {SearchPlan.MaxCount}", documentation, StringComparison.Ordinal);
        foreach (var resource in rest.Resource)
        {
            var count = Assert.Single(resource.SearchParam, p => p.Name == "_count");
            Assert.Equal(SearchParamType.Number, count.Type);
            var max = resource.Type is "AuditEvent" or "Provenance" ? AuditTrail.MaxCount : SearchPlan.MaxCount;
            Assert.Contains($"at most {max}", count.Documentation ?? "", StringComparison.Ordinal);
        }
    }
}

public sealed class TransactionGetPrecheckOnSqlite(SqliteServerFixture fixture) : TransactionGetPrecheckTests(fixture), IClassFixture<SqliteServerFixture>;

public sealed class TransactionGetPrecheckOnPostgres(PostgresServerFixture fixture) : TransactionGetPrecheckTests(fixture), IClassFixture<PostgresServerFixture>;
