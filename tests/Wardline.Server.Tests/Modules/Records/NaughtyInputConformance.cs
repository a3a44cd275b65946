using System.Collections.Concurrent;
using System.Net;
using System.Text.Json;
using System.Text.Json.Nodes;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Records;

/// <summary>
/// SQL injection strings (SecLists) and the Big List of Naughty Strings, sent everywhere a client
/// can put a string: every search parameter of Patient and Observation, result parameters, the
/// id in the URL, and a created resource's name and identifier. The server never answers 5xx,
/// never falls over, and stores valid strings exactly. Run against both storage engines.
/// </summary>
public abstract class NaughtyInputConformance(ServerFixture fixture)
{
    private const int Concurrency = 8;

    private static readonly Lazy<IReadOnlyList<string>> Naughty = new(LoadStrings);

    private static readonly string[] ResultParameters = ["_sort", "_include", "_revinclude", "_count", "_offset", "_summary", "_total", "_format"];

    protected HttpClient Client => fixture.Client;

    private static IReadOnlyList<string> LoadStrings()
    {
        var dir = Path.Combine(AppContext.BaseDirectory, "TestData", "fuzz");
        var blns = JsonSerializer.Deserialize<string[]>(File.ReadAllText(Path.Combine(dir, "blns.json")))!;
        Assert.Equal(485, blns.Length);
        return File.ReadAllLines(Path.Combine(dir, "quick-SQLi.txt"))
            .Concat(File.ReadAllLines(Path.Combine(dir, "SQLi-Polyglots.txt")))
            .Concat(blns)
            .Distinct(StringComparer.Ordinal)
            .ToList();
    }

    /// <summary>
    /// A FHIR string matches [ \r\n\t\S]+, an XML Schema pattern in which \S is every character
    /// but those four: any non-empty string is valid (control characters are only a SHOULD NOT).
    /// </summary>
    private static bool IsValidFhirString(string s) => s.Length > 0;

    private static string Show(string s) => JsonSerializer.Serialize(s.Length > 60 ? s[..60] + "…" : s);

    /// <summary>Runs <paramref name="probe"/> over the items, a few at a time; returns every failure it reported.</summary>
    private static async Task<List<string>> ProbeAllAsync<T>(IEnumerable<T> items, Func<T, Task<string?>> probe)
    {
        var failures = new ConcurrentBag<string>();
        await Parallel.ForEachAsync(items, new ParallelOptions { MaxDegreeOfParallelism = Concurrency }, async (item, _) =>
        {
            try
            {
                if (await probe(item) is { } failure) failures.Add(failure);
            }
            catch (HttpRequestException e)
            {
                failures.Add($"{item}: the request failed ({e.Message})");
            }
        });
        return [.. failures];
    }

    private static void AssertNoFailures(List<string> failures, int probes)
    {
        Assert.True(failures.Count == 0, $"{failures.Count} of {probes} probes failed:\n" + string.Join("\n", failures.Order(StringComparer.Ordinal).Take(40)));
    }

    /// <summary>Checks an answer is 200 with a Bundle or one of <paramref name="refusals"/> with an OperationOutcome; returns what is wrong, or null.</summary>
    private static async Task<string?> CheckAsync(string what, HttpResponseMessage response, params int[] refusals)
    {
        var status = (int)response.StatusCode;
        var text = await response.Content.ReadAsStringAsync();
        var expected = status == 200 ? "Bundle" : refusals.Contains(status) ? "OperationOutcome" : null;
        if (expected is null) return $"{what}: status {status}: {text[..Math.Min(200, text.Length)]}";
        if (response.Content.Headers.ContentType?.MediaType != "application/fhir+json") return $"{what}: status {status} without FHIR JSON";
        try
        {
            var type = (string?)JsonNode.Parse(text)?["resourceType"];
            return type == expected || (status == 200 && type is "Bundle" or "Patient" or "Observation") ? null : $"{what}: status {status} with a {type}";
        }
        catch (JsonException)
        {
            return $"{what}: status {status} with a body that is not JSON";
        }
    }

    private async Task<List<(string Name, string Type)>> SearchParametersAsync(string resourceType)
    {
        var cs = await (await Client.GetAsync("metadata")).ReadJsonAsync();
        var resource = cs["rest"]![0]!["resource"]!.AsArray().Single(r => (string?)r!["type"] == resourceType)!;
        return resource["searchParam"]!.AsArray().Select(p => ((string)p!["name"]!, (string)p["type"]!)).ToList();
    }

    [Theory]
    [InlineData("Patient")]
    [InlineData("Observation")]
    public async Task Naughty_strings_in_every_search_parameter_never_fail_the_server(string type)
    {
        var parameters = await SearchParametersAsync(type);
        Assert.Contains(parameters, p => p.Name == "_id");
        var names = parameters.Select(p => p.Name)
            .Concat(parameters.Where(p => p.Type == "string").Select(p => p.Name + ":exact"))
            .Concat(parameters.Where(p => p.Type == "token").Select(p => p.Name + ":not"))
            .Concat(parameters.Where(p => p.Type == "reference").Select(p => p.Name + ":Patient"))
            .Concat(ResultParameters)
            .ToList();
        var before = await fixture.Server.StoredRowsAsync();

        var probes = names.SelectMany(name => Naughty.Value.Select(value => (name, value))).ToList();
        var failures = await ProbeAllAsync(probes, async p =>
        {
            var url = $"{type}?{Uri.EscapeDataString(p.name)}={Uri.EscapeDataString(p.value)}";
            return await CheckAsync($"{p.name}={Show(p.value)}", await Client.GetAsync(url), 400);
        });
        // The string as the parameter's name: an unknown parameter, named back without harm.
        failures.AddRange(await ProbeAllAsync(Naughty.Value, async s =>
            await CheckAsync($"name {Show(s)}", await Client.GetAsync($"{type}?{Uri.EscapeDataString(s)}=1"), 400)));

        AssertNoFailures(failures, probes.Count + Naughty.Value.Count);
        Assert.Equal(before, await fixture.Server.StoredRowsAsync());
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync($"{type}?_count=1")).StatusCode);
    }

    [Fact]
    public async Task Naughty_strings_as_the_id_in_the_URL_never_fail_the_server()
    {
        var before = await fixture.Server.StoredRowsAsync();
        var failures = await ProbeAllAsync(Naughty.Value, async s =>
        {
            var id = Uri.EscapeDataString(s);
            // Dot segments and the empty string reach other routes once the URL is normalised.
            var anyRoute = s is "" or "." or ".." || s.StartsWith('_');
            var valid = Wardline.Server.Modules.Records.Search.FhirIds.IsValid(s) && !anyRoute;
            var notFound = valid ? new[] { 404 } : anyRoute ? [400, 404, 405] : [400];
            foreach (var (method, url) in new[] { ("GET", $"Patient/{id}"), ("GET", $"Patient/{id}/_history"), ("GET", $"Patient/{id}/_history/1"), ("DELETE", $"Observation/{id}") })
            {
                var response = await Client.SendAsync(new HttpRequestMessage(new HttpMethod(method), url));
                if (await CheckAsync($"{method} {url}", response, notFound) is { } failure) return failure;
            }
            return null;
        });

        AssertNoFailures(failures, Naughty.Value.Count);
        Assert.Equal(before, await fixture.Server.StoredRowsAsync());
    }

    [Fact]
    public async Task Naughty_strings_in_a_name_and_identifier_are_stored_and_read_back_exactly()
    {
        const string system = "https://fuzz.example/id";
        var run = Guid.NewGuid().ToString("N")[..8];
        var created = new ConcurrentBag<string>();
        var failures = await ProbeAllAsync(Naughty.Value.Select((s, i) => (s, i)), async p =>
        {
            var body = new JsonObject
            {
                ["resourceType"] = "Patient",
                ["identifier"] = new JsonArray(new JsonObject { ["system"] = system, ["value"] = p.s }),
                ["name"] = new JsonArray(new JsonObject { ["family"] = p.s, ["given"] = new JsonArray(p.s, $"fuzz{run}n{p.i}") }),
            };
            var response = await Client.PostAsync("Patient", FhirTest.Json(body.ToJsonString()));
            if (!IsValidFhirString(p.s))
            {
                return await CheckAsync($"create with invalid {Show(p.s)}", response, 400) ?? (response.StatusCode == HttpStatusCode.BadRequest ? null : $"create with invalid {Show(p.s)}: {(int)response.StatusCode}");
            }
            if (response.StatusCode != HttpStatusCode.Created) return $"create {Show(p.s)}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}";
            var id = (string)(await response.ReadJsonAsync())["id"]!;
            created.Add(id);

            var read = await (await Client.GetAsync($"Patient/{id}")).ReadJsonAsync();
            if ((string?)read["name"]![0]!["family"] != p.s || (string?)read["name"]![0]!["given"]![0] != p.s || (string?)read["identifier"]![0]!["value"] != p.s)
                return $"read back {Show(p.s)}: got {read["name"]!.ToJsonString()} {read["identifier"]!.ToJsonString()}";

            // And it is found again by its exact identifier (search values escape \ , and $).
            var token = p.s.Replace("\\", "\\\\", StringComparison.Ordinal).Replace(",", "\\,", StringComparison.Ordinal).Replace("$", "\\$", StringComparison.Ordinal);
            var search = await Client.GetAsync($"Patient?identifier={Uri.EscapeDataString(system + "|" + token)}&_count=1000");
            if (search.StatusCode != HttpStatusCode.OK) return $"search identifier {Show(p.s)}: {(int)search.StatusCode} {await search.Content.ReadAsStringAsync()}";
            var found = (await search.ReadJsonAsync()).Resources().Any(r => (string?)r["id"] == id);
            return found ? null : $"search identifier {Show(p.s)}: not found";
        });

        AssertNoFailures(failures, Naughty.Value.Count);
        Assert.True(created.Count > Naughty.Value.Count / 2, $"only {created.Count} of {Naughty.Value.Count} strings were stored");
        var all = await (await Client.GetAsync($"Patient?given=fuzz{run}n&_summary=count")).ReadJsonAsync();
        Assert.Equal(created.Count, (int)all["total"]!);
    }
}

public sealed class NaughtyInputOnSqlite(SqliteServerFixture fixture) : NaughtyInputConformance(fixture), IClassFixture<SqliteServerFixture>;

public sealed class NaughtyInputOnPostgres(PostgresServerFixture fixture) : NaughtyInputConformance(fixture), IClassFixture<PostgresServerFixture>;
