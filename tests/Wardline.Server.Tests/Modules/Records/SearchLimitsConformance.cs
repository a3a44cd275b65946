using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Wardline.Server.Modules.Records.Search;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Records;

/// <summary>
/// A search is bounded: at most <see cref="SearchPlan.MaxValuesPerParameter"/> values in one parameter and
/// <see cref="SearchPlan.MaxValues"/> over all of them, so that no search reaches the database's own limits
/// (SQLite: 32,766 bound variables, an expression 1,000 deep). Beyond, a 400 OperationOutcome that says the
/// limit; in a batch, that entry's answer. POST _search takes only a urlencoded form. Run against both storage engines.
/// </summary>
public abstract class SearchLimitsConformance(ServerFixture fixture)
{
    private HttpClient Client => fixture.Client;

    private TestServer Server => fixture.Server;

    private static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..10];

    private static string Many(string value, int count) => string.Join(",", Enumerable.Repeat(value, count));

    private static HttpRequestMessage Get(string url) => new(HttpMethod.Get, url);

    private static HttpRequestMessage PostForm(string url, string body, string? contentType = "application/x-www-form-urlencoded")
    {
        var content = new ByteArrayContent(Encoding.UTF8.GetBytes(body));
        if (contentType is not null) content.Headers.TryAddWithoutValidation("Content-Type", contentType);
        return new HttpRequestMessage(HttpMethod.Post, url) { Content = content };
    }

    [Theory]
    [InlineData("Patient?_id=", "a", 101, "_id")]
    [InlineData("Patient?_lastUpdated=", "2020", 101, "_lastUpdated")]
    [InlineData("Patient?family=", "x", 101, "family")]
    [InlineData("Patient?gender=", "male", 101, "gender")]
    [InlineData("Patient?birthdate=", "1970", 101, "birthdate")]
    [InlineData("Observation?subject=", "Patient/a", 101, "subject")]
    [InlineData("Observation?date=", "2020", 1000, "date")]
    [InlineData("Observation?date=", "ge2020", 1000, "date")]
    [InlineData("Patient?_id=", "1", 3000, "_id")]
    public async Task Too_many_values_in_one_parameter_are_refused_with_400_that_says_the_limit(string query, string value, int count, string name)
    {
        var outcome = await Server.RefusedAsync(HttpStatusCode.BadRequest, Get(query + Many(value, count)));

        Assert.Contains(outcome.Diagnostics(), d => d.StartsWith(name + ":", StringComparison.Ordinal)
            && d.Contains($"at most {SearchPlan.MaxValuesPerParameter} values", StringComparison.Ordinal));
    }

    [Fact]
    public async Task More_values_over_all_parameters_than_the_limit_are_refused_with_400_that_says_the_limit()
    {
        var spread = "Observation?" + string.Join("&", Enumerable.Repeat("date=" + Many("2020", 100), SearchPlan.MaxValues / 100 + 1));
        var single = "Patient?" + string.Join("&", Enumerable.Repeat("_id=a", SearchPlan.MaxValues + 1));

        foreach (var query in new[] { spread, single })
        {
            var outcome = await Server.RefusedAsync(HttpStatusCode.BadRequest, Get(query));
            Assert.Contains(outcome.Diagnostics(), d => d.Contains($"at most {SearchPlan.MaxValues} values", StringComparison.Ordinal));
        }
    }

    [Fact]
    public async Task A_search_at_the_limits_is_answered()
    {
        var pid = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("Limits")));
        var full = SearchPlan.MaxValues / 100;
        var queries = new[]
        {
            // One parameter with as many values as allowed.
            $"Patient?_id={pid}," + Many("a", SearchPlan.MaxValuesPerParameter - 1),
            // As many values as allowed, each its own parameter (the deepest chain of ANDs).
            "Patient?" + string.Join("&", Enumerable.Repeat($"_id={pid}", SearchPlan.MaxValues)),
            // Full OR chains of dates, and a full one followed by single values.
            "Observation?" + string.Join("&", Enumerable.Repeat("date=" + Many("2020", 100), full)),
            "Observation?date=" + Many("ne2020", 100) + string.Concat(Enumerable.Repeat("&_id=x", SearchPlan.MaxValues - 100)),
        };

        var totals = new List<int>();
        foreach (var query in queries)
        {
            // As a POST _search form: some of these are longer than a request line may be.
            var q = query.IndexOf('?', StringComparison.Ordinal);
            var response = await Client.SendAsync(PostForm(query[..q] + "/_search", query[(q + 1)..]));
            Assert.True(response.StatusCode == HttpStatusCode.OK, $"{query[..40]}…: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
            totals.Add((int)(await response.ReadJsonAsync())["total"]!);
        }
        Assert.Equal(1, totals[0]);
        Assert.Equal(1, totals[1]);
    }

    [Fact]
    public async Task A_POST_search_with_forty_thousand_values_is_refused_with_400()
    {
        var outcome = await Server.RefusedAsync(HttpStatusCode.BadRequest, PostForm("Patient/_search", "_id=" + Uri.EscapeDataString(Many("1", 40_000))));

        Assert.Contains(outcome.Diagnostics(), d => d.Contains($"at most {SearchPlan.MaxValuesPerParameter} values", StringComparison.Ordinal));
    }

    [Theory]
    [InlineData("multipart/form-data")]
    [InlineData("multipart/form-data; boundary=x")]
    [InlineData("text/plain")]
    [InlineData("application/fhir+json")]
    [InlineData(null)]
    public async Task A_POST_search_that_is_not_a_urlencoded_form_is_refused_with_415(string? contentType)
    {
        await Server.RefusedAsync(HttpStatusCode.UnsupportedMediaType, PostForm("Patient/_search", "_id=a", contentType));
    }

    [Fact]
    public async Task A_POST_search_form_over_the_form_limits_is_refused_with_400()
    {
        var pairs = string.Join("&", Enumerable.Repeat("_count=1", 1025));

        await Server.RefusedAsync(HttpStatusCode.BadRequest, PostForm("Patient/_search", pairs));
    }

    [Fact]
    public async Task A_POST_search_with_a_urlencoded_form_is_answered()
    {
        var pid = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("Form")));

        foreach (var type in new[] { "application/x-www-form-urlencoded", "application/x-www-form-urlencoded; charset=utf-8" })
        {
            var response = await Client.SendAsync(PostForm("Patient/_search", $"_id={pid}", type));
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            Assert.Equal(1, (int)(await response.ReadJsonAsync())["total"]!);
        }
    }

    [Fact]
    public async Task A_batch_entry_searching_too_many_values_is_answered_400_and_the_other_entries_stand()
    {
        var family = Unique("ManyValues");
        JsonObject Entry(string method, string url, string? resource = null)
        {
            var e = new JsonObject();
            if (resource is not null) e["resource"] = JsonNode.Parse(resource);
            e["request"] = new JsonObject { ["method"] = method, ["url"] = url };
            return e;
        }
        var bundle = new JsonObject
        {
            ["resourceType"] = "Bundle",
            ["type"] = "batch",
            ["entry"] = new JsonArray(
                Entry("POST", "Patient", FhirTest.Patient(family, given: "First")),
                Entry("GET", "Patient?_id=" + Many("1", 40_000)),
                Entry("GET", "Observation?date=" + Many("2020", 1000)),
                Entry("GET", "Patient?" + string.Join("&", Enumerable.Repeat("_id=a", SearchPlan.MaxValues + 1))),
                Entry("POST", "Patient", FhirTest.Patient(family, given: "Last"))),
        }.ToJsonString();

        var response = await Client.PostAsync("", FhirTest.Json(bundle));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var entries = (await response.ReadJsonAsync()).Entries().ToList();
        Assert.Equal(["201", "400", "400", "400", "201"], entries.Select(e => ((string)e["response"]!["status"]!).Split(' ')[0]));
        foreach (var failed in entries.Skip(1).Take(3))
        {
            var outcome = failed["response"]!["outcome"]!.AsObject();
            Assert.Equal("OperationOutcome", (string?)outcome["resourceType"]);
            Assert.Contains(outcome.Diagnostics(), d => d.Contains("at most", StringComparison.Ordinal));
        }
        var found = await (await Client.GetAsync($"Patient?family={family}")).ReadJsonAsync();
        Assert.Equal(2, (int)found["total"]!);
    }

    [Theory]
    [InlineData("Patient?_id=MANY")]
    [InlineData("Patient?nonsense=1")]
    [InlineData("Patient/a/b/c/d/e")]
    public async Task A_transaction_whose_get_entry_could_not_run_is_refused_whole_and_writes_nothing(string url)
    {
        var family = Unique("TxGet");
        var bundle = new JsonObject
        {
            ["resourceType"] = "Bundle",
            ["type"] = "transaction",
            ["entry"] = new JsonArray(
                new JsonObject { ["resource"] = JsonNode.Parse(FhirTest.Patient(family)), ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "Patient" } },
                new JsonObject { ["request"] = new JsonObject { ["method"] = "GET", ["url"] = url.Replace("MANY", Many("1", SearchPlan.MaxValuesPerParameter + 1), StringComparison.Ordinal) } }),
        }.ToJsonString();

        var response = await Client.PostAsync("", FhirTest.Json(bundle));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains((await response.ReadJsonAsync()).Diagnostics(), d => d.StartsWith("entry[1]: ", StringComparison.Ordinal));
        var found = await (await Client.GetAsync($"Patient?family={family}")).ReadJsonAsync();
        Assert.Equal(0, (int)found["total"]!);
    }
}

public sealed class SearchLimitsOnSqlite(SqliteServerFixture fixture) : SearchLimitsConformance(fixture), IClassFixture<SqliteServerFixture>;

public sealed class SearchLimitsOnPostgres(PostgresServerFixture fixture) : SearchLimitsConformance(fixture), IClassFixture<PostgresServerFixture>;
