using System.Net;
using System.Text.Json.Nodes;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Records;

/// <summary>The FHIR record store's behaviour, run against both storage engines.</summary>
public abstract class RecordStoreConformance(ServerFixture fixture)
{
    protected HttpClient Client => fixture.Client;

    protected static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..10];

    [Fact]
    public async Task Created_patient_can_be_read_back_with_version_and_etag()
    {
        var family = Unique("Okafor");
        var created = await Client.PostJsonAsync("Patient", FhirTest.Patient(family));

        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        Assert.Equal("W/\"1\"", created.Headers.ETag?.ToString());
        var id = (string)(await created.ReadJsonAsync())["id"]!;
        Assert.EndsWith($"/fhir/Patient/{id}/_history/1", created.Headers.Location!.ToString());

        var read = await Client.GetAsync($"Patient/{id}");
        Assert.Equal(HttpStatusCode.OK, read.StatusCode);
        Assert.StartsWith("application/fhir+json", read.Content.Headers.ContentType!.ToString());
        var body = await read.ReadJsonAsync();
        Assert.Equal(family, (string?)body["name"]![0]!["family"]);
        Assert.Equal("1", (string?)body["meta"]!["versionId"]);
        Assert.NotNull(body["meta"]!["lastUpdated"]);
    }

    [Fact]
    public async Task Update_creates_a_new_version_and_vread_returns_each_version()
    {
        var id = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("Nilsen")));
        var updated = await Client.PutJsonAsync($"Patient/{id}", FhirTest.Patient("Changed", id: id));
        Assert.Equal(HttpStatusCode.OK, updated.StatusCode);
        Assert.Equal("W/\"2\"", updated.Headers.ETag?.ToString());

        var v1 = await (await Client.GetAsync($"Patient/{id}/_history/1")).ReadJsonAsync();
        var v2 = await (await Client.GetAsync($"Patient/{id}/_history/2")).ReadJsonAsync();
        Assert.NotEqual("Changed", (string?)v1["name"]![0]!["family"]);
        Assert.Equal("Changed", (string?)v2["name"]![0]!["family"]);
        Assert.Equal(HttpStatusCode.NotFound, (await Client.GetAsync($"Patient/{id}/_history/3")).StatusCode);
    }

    [Fact]
    public async Task Update_with_a_stale_If_Match_is_refused_with_412_and_writes_nothing()
    {
        var id = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("Ito")));
        await Client.PutJsonAsync($"Patient/{id}", FhirTest.Patient("Second", id: id));

        var request = new HttpRequestMessage(HttpMethod.Put, $"Patient/{id}") { Content = FhirTest.Json(FhirTest.Patient("Stale", id: id)) };
        request.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");
        var response = await Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.PreconditionFailed, response.StatusCode);
        var current = await (await Client.GetAsync($"Patient/{id}")).ReadJsonAsync();
        Assert.Equal("2", (string?)current["meta"]!["versionId"]);
        Assert.Equal("Second", (string?)current["name"]![0]!["family"]);
    }

    [Fact]
    public async Task Concurrent_updates_with_the_same_If_Match_exactly_one_wins()
    {
        var id = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("Race")));
        var attempts = Enumerable.Range(0, 8).Select(async i =>
        {
            var request = new HttpRequestMessage(HttpMethod.Put, $"Patient/{id}") { Content = FhirTest.Json(FhirTest.Patient("Writer" + i, id: id)) };
            request.Headers.TryAddWithoutValidation("If-Match", "W/\"1\"");
            return (await Client.SendAsync(request)).StatusCode;
        }).ToList();
        var statuses = await Task.WhenAll(attempts);

        Assert.Equal(1, statuses.Count(s => s == HttpStatusCode.OK));
        Assert.Equal(7, statuses.Count(s => s == HttpStatusCode.PreconditionFailed));
        var history = await (await Client.GetAsync($"Patient/{id}/_history")).ReadJsonAsync();
        Assert.Equal(2, (int)history["total"]!);
    }

    [Fact]
    public async Task Deleted_resource_answers_410_and_its_history_keeps_every_version()
    {
        var id = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("Gone")));
        var deleted = await Client.DeleteAsync($"Patient/{id}");
        Assert.Equal(HttpStatusCode.NoContent, deleted.StatusCode);

        Assert.Equal(HttpStatusCode.Gone, (await Client.GetAsync($"Patient/{id}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync($"Patient/{id}/_history/1")).StatusCode);
        var history = await (await Client.GetAsync($"Patient/{id}/_history")).ReadJsonAsync();
        Assert.Equal(2, (int)history["total"]!);
        var entries = history.Entries().ToList();
        Assert.Equal("DELETE", (string?)entries[0]["request"]!["method"]);
        Assert.Null(entries[0]["resource"]);
    }

    [Fact]
    public async Task Deleted_resources_are_not_found_by_search()
    {
        var family = Unique("Hidden");
        var id = await Client.CreateAsync("Patient", FhirTest.Patient(family));
        await Client.DeleteAsync($"Patient/{id}");
        var bundle = await (await Client.GetAsync($"Patient?family={family}")).ReadJsonAsync();
        Assert.Equal(0, (int)bundle["total"]!);
    }

    [Fact]
    public async Task Reading_an_unknown_id_answers_404_with_an_OperationOutcome()
    {
        var response = await Client.GetAsync("Patient/does-not-exist");
        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Contains("not known", await response.DiagnosticsAsync());
    }

    [Fact]
    public async Task Conditional_create_returns_the_existing_resource_instead_of_a_duplicate()
    {
        var family = Unique("Cond");
        var first = await Client.CreateAsync("Patient", FhirTest.Patient(family));
        var request = new HttpRequestMessage(HttpMethod.Post, "Patient") { Content = FhirTest.Json(FhirTest.Patient(family)) };
        request.Headers.TryAddWithoutValidation("If-None-Exist", $"identifier=https://hospital.example/mrn|MRN-{family}");
        var response = await Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        Assert.Equal(first, (string?)(await response.ReadJsonAsync())["id"]);
        var bundle = await (await Client.GetAsync($"Patient?family={family}")).ReadJsonAsync();
        Assert.Equal(1, (int)bundle["total"]!);
    }

    [Fact]
    public async Task Update_of_an_unknown_id_creates_it_with_the_client_id()
    {
        var id = Unique("client-");
        var response = await Client.PutJsonAsync($"Patient/{id}", FhirTest.Patient(Unique("Put"), id: id));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync($"Patient/{id}")).StatusCode);
    }

    [Fact]
    public async Task Name_search_matches_prefixes_ignoring_case_and_accents()
    {
        var suffix = Guid.NewGuid().ToString("N")[..8];
        var id = await Client.CreateAsync("Patient", FhirTest.Patient("Müller" + suffix, given: "José"));

        foreach (var q in new[] { $"name=muller{suffix}", $"name=MÜLLER{suffix[..3]}", "name=jos", $"family=Mull", $"given=JOSE&family=muller{suffix}" })
        {
            var bundle = await (await Client.GetAsync("Patient?" + q + "&_count=1000")).ReadJsonAsync();
            Assert.Contains(bundle.Resources(), r => (string?)r["id"] == id);
        }
        var exact = await (await Client.GetAsync($"Patient?family:exact=muller{suffix}")).ReadJsonAsync();
        Assert.Equal(0, (int)exact["total"]!);
    }

    [Fact]
    public async Task Search_by_identifier_gender_and_birthdate()
    {
        var family = Unique("Ident");
        var id = await Client.CreateAsync("Patient", FhirTest.Patient(family, birthDate: "1971-06-15", gender: "male"));

        async Task<int> Count(string q) => (int)(await (await Client.GetAsync("Patient?" + q)).ReadJsonAsync())["total"]!;

        Assert.Equal(1, await Count($"identifier=https://hospital.example/mrn|MRN-{family}"));
        Assert.Equal(1, await Count($"identifier=MRN-{family}"));
        Assert.Equal(0, await Count($"identifier=https://other.example|MRN-{family}"));
        Assert.Equal(1, await Count($"family={family}&gender=male&birthdate=1971-06-15"));
        Assert.Equal(1, await Count($"family={family}&birthdate=1971"));
        Assert.Equal(0, await Count($"family={family}&gender=female"));
        Assert.Equal(1, await Count($"_id={id}"));
    }

    [Fact]
    public async Task Search_by_patient_code_and_date_range_with_sort_and_paging()
    {
        var pid = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("Obs")));
        foreach (var day in new[] { "2024-01-10", "2024-02-10", "2024-03-10", "2024-04-10", "2024-05-10" })
        {
            await Client.CreateAsync("Observation", FhirTest.Observation(pid, date: day + "T08:00:00Z"));
        }
        await Client.CreateAsync("Observation", FhirTest.Observation(pid, code: "8480-6", date: "2024-03-10T08:00:00Z"));

        var all = await (await Client.GetAsync($"Observation?patient={pid}&code=http://loinc.org|8867-4")).ReadJsonAsync();
        Assert.Equal(5, (int)all["total"]!);

        var range = await (await Client.GetAsync($"Observation?subject=Patient/{pid}&code=8867-4&date=ge2024-02-01&date=lt2024-04-01")).ReadJsonAsync();
        Assert.Equal(2, (int)range["total"]!);

        var page1 = await (await Client.GetAsync($"Observation?patient={pid}&code=8867-4&_sort=-date&_count=2")).ReadJsonAsync();
        var dates = page1.Resources().Select(r => (string?)r["effectiveDateTime"]).ToList();
        Assert.Equal(["2024-05-10T08:00:00Z", "2024-04-10T08:00:00Z"], dates);
        var next = page1["link"]!.AsArray().Single(l => (string?)l!["relation"] == "next")!["url"]!.ToString();
        var page2 = await (await Client.GetAsync(next)).ReadJsonAsync();
        Assert.Equal("2024-03-10T08:00:00Z", (string?)page2.Resources().First()["effectiveDateTime"]);
    }

    [Fact]
    public async Task Include_and_revinclude_bring_the_patient_and_its_observations()
    {
        var pid = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("Inc")));
        var oid = await Client.CreateAsync("Observation", FhirTest.Observation(pid));

        var inc = await (await Client.GetAsync($"Observation?_id={oid}&_include=Observation:patient")).ReadJsonAsync();
        Assert.Equal(1, (int)inc["total"]!);
        Assert.Contains(inc.Resources("include"), r => (string?)r["id"] == pid);

        var rev = await (await Client.GetAsync($"Patient?_id={pid}&_revinclude=Observation:subject")).ReadJsonAsync();
        Assert.Equal(1, (int)rev["total"]!);
        Assert.Contains(rev.Resources("include"), r => (string?)r["id"] == oid);
    }

    [Fact]
    public async Task Transaction_resolves_urn_references_and_stores_everything()
    {
        var family = Unique("Tx");
        var bundle = new JsonObject
        {
            ["resourceType"] = "Bundle",
            ["type"] = "transaction",
            ["entry"] = new JsonArray(
                new JsonObject
                {
                    ["fullUrl"] = "urn:uuid:11111111-1111-4111-8111-111111111111",
                    ["resource"] = JsonNode.Parse(FhirTest.Patient(family)),
                    ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "Patient" },
                },
                new JsonObject
                {
                    ["resource"] = JsonNode.Parse(FhirTest.Condition("X").Replace("Patient/X", "urn:uuid:11111111-1111-4111-8111-111111111111")),
                    ["request"] = new JsonObject { ["method"] = "POST", ["url"] = "Condition" },
                }),
        };
        var response = await Client.PostAsync("", FhirTest.Json(bundle));
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var result = await response.ReadJsonAsync();
        Assert.Equal("transaction-response", (string?)result["type"]);
        var patientLocation = (string)result.Entries().First()["response"]!["location"]!;
        var pid = patientLocation.Split('/')[1];

        var conditions = await (await Client.GetAsync($"Condition?patient={pid}")).ReadJsonAsync();
        Assert.Equal(1, (int)conditions["total"]!);
        Assert.Equal($"Patient/{pid}", (string?)conditions.Resources().Single()["subject"]!["reference"]);
    }

    [Fact]
    public async Task Metadata_lists_the_supported_types_and_search_parameters()
    {
        var cs = await (await fixture.Server.AnonymousClient().GetAsync("metadata")).ReadJsonAsync();
        Assert.Equal("CapabilityStatement", (string?)cs["resourceType"]);
        var resources = cs["rest"]![0]!["resource"]!.AsArray();
        var patient = resources.Single(r => (string?)r!["type"] == "Patient")!;
        var names = patient["searchParam"]!.AsArray().Select(p => (string?)p!["name"]).ToList();
        Assert.Contains("name", names);
        Assert.Contains("birthdate", names);
        Assert.DoesNotContain("address-city", names);
        foreach (var view in new[] { "AuditEvent", "Provenance" })
        {
            // The audit ledger's views: read and search only.
            var described = resources.Single(r => (string?)r!["type"] == view)!;
            Assert.Equal("read search-type", string.Join(" ", described["interaction"]!.AsArray().Select(i => (string?)i!["code"])));
        }
    }

    [Fact]
    public async Task Requests_without_a_token_are_refused_with_401()
    {
        using var anonymous = fixture.Server.AnonymousClient();
        var pid = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("Anon")));

        foreach (var url in new[] { $"Patient/{pid}", "Patient", $"Patient/{pid}/_history", "Patient/_history" })
        {
            var response = await anonymous.GetAsync(url);
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.DoesNotContain(pid, await response.Content.ReadAsStringAsync());
        }
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.PostJsonAsync("Patient", FhirTest.Patient("X"))).StatusCode);
        anonymous.DefaultRequestHeaders.Authorization = new("Bearer", "wl_forged-token-value");
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync($"Patient/{pid}")).StatusCode);
    }
}

public sealed class RecordStoreOnSqlite(SqliteServerFixture fixture) : RecordStoreConformance(fixture), IClassFixture<SqliteServerFixture>;

public sealed class RecordStoreOnPostgres(PostgresServerFixture fixture) : RecordStoreConformance(fixture), IClassFixture<PostgresServerFixture>;
