using System.Net;
using System.Net.Http.Headers;
using System.Text;
using System.Text.Json.Nodes;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Records;

/// <summary>
/// Bad requests of every kind answer the exact 4xx status with an OperationOutcome, never a 5xx,
/// and write nothing. Run against both storage engines.
/// </summary>
public abstract class BadInputConformance(ServerFixture fixture)
{
    protected HttpClient Client => fixture.Client;

    protected TestServer Server => fixture.Server;

    protected static string Unique(string prefix) => prefix + Guid.NewGuid().ToString("N")[..10];

    private static HttpRequestMessage Post(string url, string body, string contentType = FhirTest.JsonType) =>
        new(HttpMethod.Post, url) { Content = new StringContent(body, Encoding.UTF8, contentType) };

    private static HttpRequestMessage Put(string url, string body) =>
        new(HttpMethod.Put, url) { Content = FhirTest.Json(body) };

    private Task<JsonObject> Refused(HttpStatusCode status, HttpRequestMessage request) => Server.RefusedAsync(status, request);

    [Theory]
    [InlineData("truncated", """{"resourceType":"Patient","name":[{"family":"Trunc""")]
    [InlineData("trailing garbage", """{"resourceType":"Patient","gender":"male"} {"resourceType":"Patient"}""")]
    [InlineData("trailing text", """{"resourceType":"Patient","gender":"male"}xyz""")]
    [InlineData("an array", """[{"resourceType":"Patient"}]""")]
    [InlineData("a string", "\"Patient\"")]
    [InlineData("a number", "42")]
    [InlineData("null", "null")]
    [InlineData("an empty object", "{}")]
    [InlineData("empty", "")]
    [InlineData("whitespace", "  \n ")]
    [InlineData("a comment", """{/* hello */"resourceType":"Patient"}""")]
    [InlineData("single quotes", "{'resourceType':'Patient'}")]
    [InlineData("a missing comma", """{"resourceType":"Patient" "gender":"male"}""")]
    [InlineData("no resourceType", """{"gender":"male"}""")]
    [InlineData("an unknown resourceType", """{"resourceType":"Nonsense"}""")]
    [InlineData("a duplicate property", """{"resourceType":"Patient","gender":"male","gender":"female"}""")]
    public async Task Malformed_JSON_is_refused_with_400_and_writes_nothing(string shape, string body)
    {
        _ = shape;
        await Refused(HttpStatusCode.BadRequest, Post("Patient", body));
        await Refused(HttpStatusCode.BadRequest, Put("Patient/malformed-1", body));
        await Refused(HttpStatusCode.BadRequest, Post("", body));
    }

    [Fact]
    public async Task A_body_that_is_not_valid_UTF8_is_refused_with_400()
    {
        var bytes = Encoding.UTF8.GetBytes("""{"resourceType":"Patient","name":[{"family":"XX"}]}""");
        bytes[Array.IndexOf(bytes, (byte)'X')] = 0xFF;
        var content = new ByteArrayContent(bytes);
        content.Headers.ContentType = new MediaTypeHeaderValue(FhirTest.JsonType);
        await Refused(HttpStatusCode.BadRequest, new HttpRequestMessage(HttpMethod.Post, "Patient") { Content = content });
    }

    [Theory]
    [InlineData("an unknown element", """{"resourceType":"Patient","favouriteColour":"blue"}""")]
    [InlineData("a wrong primitive type", """{"resourceType":"Patient","active":"yes"}""")]
    [InlineData("a number for a string", """{"resourceType":"Patient","name":[{"family":42}]}""")]
    [InlineData("an invalid date", """{"resourceType":"Patient","birthDate":"2024-13-45"}""")]
    [InlineData("an invalid code", """{"resourceType":"Patient","gender":"sometimes"}""")]
    [InlineData("an object for an array", """{"resourceType":"Patient","name":{"family":"Solo"}}""")]
    [InlineData("an empty string", """{"resourceType":"Patient","name":[{"family":""}]}""")]
    [InlineData("a missing required element", """{"resourceType":"Observation","code":{"text":"pulse"}}""")]
    public async Task A_resource_that_FHIR_rejects_is_refused_with_400(string problem, string body)
    {
        _ = problem;
        var type = body.Contains("Observation", StringComparison.Ordinal) ? "Observation" : "Patient";
        await Refused(HttpStatusCode.BadRequest, Post(type, body));
    }

    [Fact]
    public async Task Every_validation_issue_of_a_resource_is_listed()
    {
        var body = """
            {"resourceType":"Patient","favouriteColour":"blue","active":"yes","birthDate":"2024-13-45","gender":"sometimes"}
            """;
        var outcome = await Refused(HttpStatusCode.BadRequest, Post("Patient", body));
        var issues = outcome.Diagnostics();

        Assert.True(issues.Count >= 4, "expected an issue for each of the 4 problems, got: " + string.Join(" | ", issues));
        Assert.Contains(issues, i => i.Contains("favouriteColour", StringComparison.Ordinal) || i.Contains("unknown", StringComparison.OrdinalIgnoreCase));
        Assert.Contains(issues, i => i.Contains("active", StringComparison.Ordinal));
        Assert.Contains(issues, i => i.Contains("birthDate", StringComparison.Ordinal));
        Assert.Contains(issues, i => i.Contains("gender", StringComparison.Ordinal));
    }

    [Fact]
    public async Task A_missing_required_element_is_named_in_the_outcome()
    {
        var outcome = await Refused(HttpStatusCode.BadRequest, Post("Observation", """{"resourceType":"Observation","code":{"text":"pulse"}}"""));
        Assert.Contains(outcome.Diagnostics(), i => i.Contains("status", StringComparison.Ordinal));
    }

    [Fact]
    public async Task Errors_do_not_echo_patient_data_from_the_body()
    {
        var bodies = new[]
        {
            """{"resourceType":"Patient","birthDate":"Johanna Smithers"}""",
            """{"resourceType":"Patient","gender":"Johanna Smithers"}""",
            """{"resourceType":"Patient","active":"Johanna Smithers"}""",
            """{"resourceType":"Patient","JohannaSmithers":true}""",
            """{"resourceType":"Patient","JohannaSmithers":tru}""",
            """{"resourceType":"Patient","name":[{"JohannaSmithers":{"x":1}}]}""",
            """{"resourceType":"Patient","contact":[{"name":{"family":"Smithers","Johanna":"x"}}]}""",
            """{"resourceType":"Patient","name":[{"family":"Smithers" "Johanna"}]}""",
            """{"resourceType":"Patient","name":[{"family":"Smithers","given":"Johanna"}]}""",
            """{"resourceType":"Observation","subject":{"reference":"Patient/Johanna Smithers"},"status":"final","code":{"text":"x"}}""",
            // Quotes inside the value or the name: Firely quotes them in its message, so the quotes no longer pair up.
            """{"resourceType":"Patient","birthDate":"O'Brien, Johanna Smithers"}""",
            """{"resourceType":"Patient","birthDate":"it's 'Johanna' Smithers'"}""",
            """{"resourceType":"Patient","Jo's Johanna Smithers":true}""",
            """{"resourceType":"Patient","gender":"\"Johanna\" Smithers"}""",
        };
        foreach (var body in bodies)
        {
            var type = body.Contains("Observation", StringComparison.Ordinal) ? "Observation" : "Patient";
            var outcome = await Refused(HttpStatusCode.BadRequest, Post(type, body));
            var text = outcome.ToJsonString();
            Assert.Contains(outcome.Diagnostics(), d => d.Length > 0);
            Assert.DoesNotContain("Johanna", text, StringComparison.OrdinalIgnoreCase);
            Assert.DoesNotContain("Smithers", text, StringComparison.OrdinalIgnoreCase);
        }
    }

    [Fact]
    public async Task A_body_of_another_resource_type_than_the_URL_is_refused_with_400()
    {
        var outcome = await Refused(HttpStatusCode.BadRequest, Post("Observation", FhirTest.Patient(Unique("Wrong"))));
        Assert.Contains(outcome.Diagnostics(), d => d.Contains("Patient", StringComparison.Ordinal) && d.Contains("Observation", StringComparison.Ordinal));

        var id = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("Right")));
        await Refused(HttpStatusCode.BadRequest, Put($"Observation/{id}", FhirTest.Patient("Wrong", id: id)));
        await Refused(HttpStatusCode.BadRequest, Post("Patient", """{"resourceType":"Bundle","type":"transaction"}"""));
    }

    [Theory]
    [InlineData("GET", "Nonsense")]
    [InlineData("GET", "Nonsense/1")]
    [InlineData("GET", "Nonsense/1/_history")]
    [InlineData("GET", "Nonsense/1/_history/1")]
    [InlineData("GET", "Nonsense/_history")]
    [InlineData("GET", "patient/1")]
    [InlineData("POST", "Nonsense")]
    [InlineData("PUT", "Nonsense/1")]
    [InlineData("DELETE", "Nonsense/1")]
    [InlineData("GET", "Questionnaire")]
    public async Task An_unknown_resource_type_in_the_URL_answers_404(string method, string url)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), url);
        if (method is "POST" or "PUT")
        {
            request.Content = FhirTest.Json("""{"resourceType":"Patient","id":"1"}""");
        }
        await Refused(HttpStatusCode.NotFound, request);
    }

    [Theory]
    [InlineData("a%24b")]
    [InlineData("a%20b")]
    [InlineData("a_b")]
    [InlineData("%C3%A9t%C3%A9")]
    [InlineData("x%27%3B%20DROP%20TABLE%20resources%3B--")]
    [InlineData("0123456789012345678901234567890123456789012345678901234567890123x")]
    public async Task An_id_with_illegal_characters_or_over_64_characters_is_refused_with_400(string id)
    {
        await Refused(HttpStatusCode.BadRequest, new HttpRequestMessage(HttpMethod.Get, $"Patient/{id}"));
        await Refused(HttpStatusCode.BadRequest, new HttpRequestMessage(HttpMethod.Get, $"Patient/{id}/_history"));
        await Refused(HttpStatusCode.BadRequest, new HttpRequestMessage(HttpMethod.Get, $"Patient/{id}/_history/1"));
        await Refused(HttpStatusCode.BadRequest, new HttpRequestMessage(HttpMethod.Delete, $"Patient/{id}"));
        var decoded = Uri.UnescapeDataString(id);
        await Refused(HttpStatusCode.BadRequest, Put($"Patient/{id}", FhirTest.Patient(Unique("Illegal"), id: decoded)));
    }

    [Fact]
    public async Task An_id_of_exactly_64_characters_is_accepted()
    {
        var id = new string('a', 54) + Guid.NewGuid().ToString("N")[..10];
        var response = await Client.PutJsonAsync($"Patient/{id}", FhirTest.Patient(Unique("Long"), id: id));
        Assert.Equal(HttpStatusCode.Created, response.StatusCode);
    }

    [Fact]
    public async Task An_update_whose_body_id_differs_from_the_URL_or_is_missing_is_refused_with_400()
    {
        var id = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("Ids")));

        await Refused(HttpStatusCode.BadRequest, Put($"Patient/{id}", FhirTest.Patient("Other", id: "another-id")));
        await Refused(HttpStatusCode.BadRequest, Put($"Patient/{id}", FhirTest.Patient("Missing")));
        var current = await (await Client.GetAsync($"Patient/{id}")).ReadJsonAsync();
        Assert.Equal("1", (string?)current["meta"]!["versionId"]);
    }

    [Fact]
    public async Task A_body_over_the_configured_limit_is_refused_with_413()
    {
        await using var store = await TestStore.CreateAsync(fixture.Kind);
        store.Options.MaxRequestBodyBytes = 4096;
        await using var small = await TestServer.StartAsync(store.Options);
        var big = FhirTest.Patient(new string('x', 8000));

        await small.RefusedAsync(HttpStatusCode.RequestEntityTooLarge, Post("Patient", big));
        await small.RefusedAsync(HttpStatusCode.RequestEntityTooLarge, Put("Patient/big-1", big.Replace("{", "{\"id\":\"big-1\",", StringComparison.Ordinal)));

        // Without a Content-Length (chunked), the limit is enforced while reading.
        var chunked = new StreamContent(new MemoryStream(Encoding.UTF8.GetBytes(big)));
        chunked.Headers.ContentType = new MediaTypeHeaderValue(FhirTest.JsonType);
        var request = new HttpRequestMessage(HttpMethod.Post, "Patient") { Content = chunked };
        request.Headers.TransferEncodingChunked = true;
        await small.RefusedAsync(HttpStatusCode.RequestEntityTooLarge, request);

        // Far over Kestrel's own backstop (twice the limit): still a FHIR 413.
        await small.RefusedAsync(HttpStatusCode.RequestEntityTooLarge, Post("", FhirTest.Patient(new string('y', 100_000))));

        Assert.Equal(HttpStatusCode.Created, (await small.Client.PostJsonAsync("Patient", FhirTest.Patient(Unique("Small")))).StatusCode);
    }

    [Theory]
    [InlineData("text/plain")]
    [InlineData("application/xml")]
    [InlineData("application/fhir+xml")]
    [InlineData("application/x-www-form-urlencoded")]
    [InlineData("multipart/form-data; boundary=x")]
    [InlineData(null)]
    public async Task A_body_that_is_not_FHIR_JSON_is_refused_with_415(string? contentType)
    {
        var json = FhirTest.Patient(Unique("Media"));
        HttpContent Content()
        {
            var c = new ByteArrayContent(Encoding.UTF8.GetBytes(json));
            if (contentType is not null) c.Headers.TryAddWithoutValidation("Content-Type", contentType);
            return c;
        }
        await Refused(HttpStatusCode.UnsupportedMediaType, new HttpRequestMessage(HttpMethod.Post, "Patient") { Content = Content() });
        await Refused(HttpStatusCode.UnsupportedMediaType, new HttpRequestMessage(HttpMethod.Put, "Patient/media-1") { Content = Content() });
        await Refused(HttpStatusCode.UnsupportedMediaType, new HttpRequestMessage(HttpMethod.Post, "") { Content = Content() });
    }

    [Theory]
    [InlineData("GET", "Patient/any-id")]
    [InlineData("GET", "Patient")]
    [InlineData("GET", "Patient/_history")]
    [InlineData("GET", "metadata")]
    [InlineData("POST", "Patient")]
    public async Task Asking_for_XML_is_refused_with_406(string method, string url)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), url);
        if (method == "POST") request.Content = FhirTest.Json(FhirTest.Patient(Unique("Xml")));
        request.Headers.TryAddWithoutValidation("Accept", "application/fhir+xml");
        await Refused(HttpStatusCode.NotAcceptable, request);

        var xml = new HttpRequestMessage(new HttpMethod(method), url);
        if (method == "POST") xml.Content = FhirTest.Json(FhirTest.Patient(Unique("Xml")));
        xml.Headers.TryAddWithoutValidation("Accept", "application/xml");
        await Refused(HttpStatusCode.NotAcceptable, xml);
    }

    [Theory]
    [InlineData("PATCH", "Patient/1")]
    [InlineData("DELETE", "Patient")]
    [InlineData("PUT", "Patient")]
    [InlineData("POST", "Patient/1")]
    [InlineData("DELETE", "metadata")]
    [InlineData("POST", "Patient/1/_history")]
    [InlineData("PUT", "")]
    public async Task An_unsupported_method_answers_405_with_an_OperationOutcome(string method, string url)
    {
        var request = new HttpRequestMessage(new HttpMethod(method), url);
        if (method is "PATCH" or "PUT" or "POST") request.Content = FhirTest.Json("""{"resourceType":"Patient","id":"1"}""");
        var outcome = await Refused(HttpStatusCode.MethodNotAllowed, request);
        Assert.Contains(outcome.Diagnostics(), d => d.Contains("method", StringComparison.OrdinalIgnoreCase));
    }

    [Theory]
    [InlineData("[", "]")]
    [InlineData("{\"url\":\"http://example.org/x\",\"extension\":[", "]}")]
    public async Task Ten_thousand_levels_of_nesting_are_refused_with_400_without_a_stack_overflow(string open, string close)
    {
        const int depth = 10_000;
        var sb = new StringBuilder("""{"resourceType":"Patient","extension":[""");
        for (var i = 0; i < depth; i++) sb.Append(open);
        sb.Append("{\"url\":\"http://example.org/leaf\",\"valueString\":\"leaf\"}");
        for (var i = 0; i < depth; i++) sb.Append(close);
        sb.Append("]}");
        var body = sb.ToString();

        await Refused(HttpStatusCode.BadRequest, Post("Patient", body));
        var bundle = """{"resourceType":"Bundle","type":"transaction","entry":[{"request":{"method":"POST","url":"Patient"},"resource":""" + body + "}]}";
        await Refused(HttpStatusCode.BadRequest, Post("", bundle));
        Assert.Equal(HttpStatusCode.OK, (await Client.GetAsync("Patient?_count=1")).StatusCode);
    }

    [Fact]
    public async Task Moderate_nesting_of_extensions_is_still_accepted()
    {
        var sb = new StringBuilder("""{"resourceType":"Patient","extension":[""");
        for (var i = 0; i < 20; i++) sb.Append("{\"url\":\"http://example.org/x\",\"extension\":[");
        sb.Append("{\"url\":\"http://example.org/leaf\",\"valueString\":\"leaf\"}");
        for (var i = 0; i < 20; i++) sb.Append("]}");
        sb.Append("]}");
        Assert.Equal(HttpStatusCode.Created, (await Client.PostJsonAsync("Patient", sb.ToString())).StatusCode);
    }

    [Theory]
    [InlineData("Patient/")]
    [InlineData("Patient/../x")]
    [InlineData("Patient/a/b")]
    [InlineData("/Patient/x")]
    [InlineData("Patient")]
    [InlineData("Nonsense/1")]
    [InlineData("Patient/a$b")]
    [InlineData("Patient/x/_history/")]
    [InlineData("Patient/x/_history/o$e")]
    [InlineData("urn:uuid:0f4e1c47-9f7b-4c1b-a1d6-1b7a3e0a2c11")]
    [InlineData("urn:oid:1.2.3")]
    [InlineData("http://exa mple.org/Patient/1")]
    [InlineData("Patient?identifier=x")]
    public async Task A_malformed_or_unresolvable_reference_is_refused_with_400(string reference)
    {
        var body = FhirTest.Observation("PLACEHOLDER").Replace("Patient/PLACEHOLDER", reference, StringComparison.Ordinal);
        await Refused(HttpStatusCode.BadRequest, Post("Observation", body));
        var id = Unique("ref-");
        await Refused(HttpStatusCode.BadRequest, Put($"Observation/{id}", body.Replace("{", $"{{\"id\":\"{id}\",", StringComparison.Ordinal)));
    }

    [Fact]
    public async Task A_reference_to_a_local_resource_that_does_not_exist_is_refused_with_422()
    {
        var outcome = await Refused(HttpStatusCode.UnprocessableEntity, Post("Observation", FhirTest.Observation("no-such-patient")));
        Assert.Contains(outcome.Diagnostics(), d => d.Contains("Patient/no-such-patient", StringComparison.Ordinal));

        var pid = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("Gone")));
        await Client.DeleteAsync($"Patient/{pid}");
        // A deleted target is not a resource one may point at either.
        await Refused(HttpStatusCode.UnprocessableEntity, Post("Observation", FhirTest.Observation(pid)));
    }

    private static JsonObject Entry(string method, string url, string? resource = null, string? fullUrl = null, string? ifMatch = null)
    {
        var request = new JsonObject { ["method"] = method, ["url"] = url };
        if (ifMatch is not null) request["ifMatch"] = ifMatch;
        var e = new JsonObject();
        if (fullUrl is not null) e["fullUrl"] = fullUrl;
        if (resource is not null) e["resource"] = JsonNode.Parse(resource);
        e["request"] = request;
        return e;
    }

    private static string Bundle(string type, IEnumerable<JsonObject> entries) =>
        new JsonObject { ["resourceType"] = "Bundle", ["type"] = type, ["entry"] = new JsonArray([.. entries]) }.ToJsonString();

    private async Task<int> CountAsync(string query) => (int)(await (await Client.GetAsync(query)).ReadJsonAsync())["total"]!;

    [Fact]
    public async Task A_transaction_with_duplicate_fullUrls_is_refused_with_400()
    {
        var family = Unique("Dup");
        var bundle = Bundle("transaction",
        [
            Entry("POST", "Patient", FhirTest.Patient(family), "urn:uuid:5c2b1a1e-0d7e-4b8e-9f51-3c1d2e4f5a60"),
            Entry("POST", "Patient", FhirTest.Patient(family), "urn:uuid:5c2b1a1e-0d7e-4b8e-9f51-3c1d2e4f5a60"),
        ]);
        var outcome = await Refused(HttpStatusCode.BadRequest, Post("", bundle));
        Assert.Contains(outcome.Diagnostics(), d => d.Contains("fullUrl", StringComparison.Ordinal));
        Assert.Equal(0, await CountAsync($"Patient?family={family}"));
    }

    [Theory]
    [InlineData("an invalid resource", 400)]
    [InlineData("a resource of the wrong type", 400)]
    [InlineData("a malformed reference", 400)]
    [InlineData("an unresolvable urn reference", 400)]
    [InlineData("a reference to a missing resource", 422)]
    [InlineData("a stale If-Match", 412)]
    [InlineData("an If-Match on a missing resource", 412)]
    [InlineData("an unknown resource type", 400)]
    [InlineData("an illegal id", 400)]
    public async Task A_transaction_whose_tenth_entry_fails_stores_none_of_the_first_nine(string failure, int status)
    {
        var family = Unique("Tenth");
        var existing = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("Existing")));
        var entries = Enumerable.Range(0, 9)
            .Select(i => Entry("POST", "Patient", FhirTest.Patient(family, given: "N" + i), $"urn:uuid:{Guid.NewGuid()}"))
            .ToList();
        entries.Add(failure switch
        {
            "an invalid resource" => Entry("POST", "Observation", """{"resourceType":"Observation","code":{"text":"no status"}}"""),
            "a resource of the wrong type" => Entry("POST", "Observation", FhirTest.Patient(family)),
            "a malformed reference" => Entry("POST", "Observation", FhirTest.Observation("x").Replace("Patient/x", "Patient/../x", StringComparison.Ordinal)),
            "an unresolvable urn reference" => Entry("POST", "Observation", FhirTest.Observation("x").Replace("Patient/x", $"urn:uuid:{Guid.NewGuid()}", StringComparison.Ordinal)),
            "a reference to a missing resource" => Entry("POST", "Observation", FhirTest.Observation("no-such-patient")),
            "a stale If-Match" => Entry("PUT", $"Patient/{existing}", FhirTest.Patient("Stale", id: existing), ifMatch: "W/\"7\""),
            "an If-Match on a missing resource" => Entry("PUT", "Patient/never-was", FhirTest.Patient("Never", id: "never-was"), ifMatch: "W/\"1\""),
            "an unknown resource type" => Entry("DELETE", "Nonsense/1"),
            "an illegal id" => Entry("DELETE", "Patient/a$b"),
            _ => throw new ArgumentOutOfRangeException(nameof(failure)),
        });

        await Refused((HttpStatusCode)status, Post("", Bundle("transaction", entries)));
        Assert.Equal(0, await CountAsync($"Patient?family={family}"));
        Assert.Equal("1", (string?)(await (await Client.GetAsync($"Patient/{existing}")).ReadJsonAsync())["meta"]!["versionId"]);
    }

    [Fact]
    public async Task A_batch_runs_each_entry_on_its_own_and_reports_each_status()
    {
        var family = Unique("Batch");
        var existing = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("BatchExisting")));
        var bundle = Bundle("batch",
        [
            Entry("POST", "Patient", FhirTest.Patient(family, given: "First")),
            Entry("PUT", $"Patient/{existing}", FhirTest.Patient("Stale", id: existing), ifMatch: "W/\"9\""),
            Entry("POST", "Observation", FhirTest.Observation("no-such-patient")),
            Entry("GET", "Nonsense/1"),
            Entry("DELETE", "Patient/a$b"),
            Entry("POST", "Observation", FhirTest.Patient(family)),
            Entry("POST", "Patient", FhirTest.Patient(family, given: "Last")),
        ]);
        var response = await Client.PostAsync("", FhirTest.Json(bundle));

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var result = await response.ReadJsonAsync();
        Assert.Equal("batch-response", (string?)result["type"]);
        var entries = result.Entries().ToList();
        Assert.Equal(7, entries.Count);
        var statuses = entries.Select(e => ((string)e["response"]!["status"]!).Split(' ')[0]).ToList();
        Assert.Equal(["201", "412", "422", "400", "400", "400", "201"], statuses);
        foreach (var failed in entries.Where(e => !((string)e["response"]!["status"]!).StartsWith('2')))
        {
            Assert.Equal("OperationOutcome", (string?)failed["response"]!["outcome"]?["resourceType"]);
        }
        Assert.Equal(2, await CountAsync($"Patient?family={family}"));
        Assert.Equal("1", (string?)(await (await Client.GetAsync($"Patient/{existing}")).ReadJsonAsync())["meta"]!["versionId"]);
    }

    [Fact]
    public async Task Concurrent_transactions_with_the_same_If_Match_exactly_one_wins_whole()
    {
        var pid = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("TxRace")));
        var tag = Unique("race");
        var attempts = Enumerable.Range(0, 8).Select(async i =>
        {
            var bundle = Bundle("transaction",
            [
                Entry("PUT", $"Patient/{pid}", FhirTest.Patient("Writer" + i, id: pid), ifMatch: "W/\"1\""),
                Entry("POST", "Observation", FhirTest.Observation(pid, code: $"{tag}-{i}")),
            ]);
            var r = await Client.PostAsync("", FhirTest.Json(bundle));
            return (i, r.StatusCode, Body: await r.Content.ReadAsStringAsync());
        }).ToList();
        var results = await Task.WhenAll(attempts);

        var winners = results.Where(r => r.StatusCode == HttpStatusCode.OK).ToList();
        Assert.Single(winners);
        Assert.All(results.Where(r => r.StatusCode != HttpStatusCode.OK), r =>
        {
            Assert.Equal(HttpStatusCode.PreconditionFailed, r.StatusCode);
            Assert.Contains("OperationOutcome", r.Body, StringComparison.Ordinal);
        });
        var winner = winners[0].i;
        var history = await (await Client.GetAsync($"Patient/{pid}/_history")).ReadJsonAsync();
        Assert.Equal(2, (int)history["total"]!);
        var current = await (await Client.GetAsync($"Patient/{pid}")).ReadJsonAsync();
        Assert.Equal("Writer" + winner, (string?)current["name"]![0]!["family"]);
        var observations = await (await Client.GetAsync($"Observation?patient={pid}")).ReadJsonAsync();
        Assert.Equal(1, (int)observations["total"]!);
        Assert.Equal($"{tag}-{winner}", (string?)observations.Resources().Single()["code"]!["coding"]![0]!["code"]);
    }

    [Theory]
    [InlineData("Observation?date=2024-13-45")]
    [InlineData("Observation?date=2024-02-30")]
    [InlineData("Observation?date=xx2024")]
    [InlineData("Observation?date=ge")]
    [InlineData("Observation?date=2024-1-5")]
    [InlineData("Observation?date=24")]
    [InlineData("Observation?date=0000")]
    [InlineData("Observation?date=2024-05-01T25:00:00Z")]
    [InlineData("Observation?date:missing=true")]
    [InlineData("Patient?birthdate=ge1970")]
    [InlineData("Patient?birthdate=1970-01-01T00:00:00Z")]
    [InlineData("Patient?birthdate=1970-02-31")]
    [InlineData("Patient?_lastUpdated=abc")]
    [InlineData("Patient?_lastUpdated=gt2024-13")]
    [InlineData("Patient/_history?_since=abc")]
    public async Task An_invalid_date_in_a_search_is_refused_with_400(string query)
    {
        await Refused(HttpStatusCode.BadRequest, new HttpRequestMessage(HttpMethod.Get, query));
    }

    [Theory]
    [InlineData("Observation?date=le0001-01-01")]
    [InlineData("Observation?date=0001")]
    [InlineData("Patient?_lastUpdated=lt9999-12-31T23:59:59Z")]
    [InlineData("Observation?date=ge9999-12-31")]
    [InlineData("Observation?date=9999")]
    public async Task Dates_at_the_edges_of_the_calendar_do_not_fail(string query)
    {
        var response = await Client.GetAsync(query);
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
    }

    [Fact]
    public async Task Resources_dated_in_the_year_9999_are_stored_and_read_back()
    {
        foreach (var date in new[] { "9999", "9999-12-31", "9999-12-31T23:59:59Z" })
        {
            var pid = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("Late"), birthDate: date[..Math.Min(10, date.Length)]));
            var oid = await Client.CreateAsync("Observation", FhirTest.Observation(pid, date: date));
            var read = await (await Client.GetAsync($"Observation/{oid}")).ReadJsonAsync();
            Assert.Equal(date, (string?)read["effectiveDateTime"]);
        }
    }

    [Theory]
    [InlineData("0001-01-01T00:00:00Z")]
    [InlineData("0001-01-01")]
    [InlineData("0001")]
    [InlineData("9999")]
    [InlineData("9999-12-31")]
    [InlineData("9999-12-31T23:59:59Z")]
    public async Task Resources_with_dates_at_the_edges_of_the_calendar_are_stored_and_found(string date)
    {
        var pid = await Client.CreateAsync("Patient", FhirTest.Patient(Unique("Edge"), birthDate: date[..Math.Min(10, date.Length)]));
        var oid = await Client.CreateAsync("Observation", FhirTest.Observation(pid, date: date));

        var byDate = await (await Client.GetAsync($"Observation?patient={pid}&date={date[..4]}")).ReadJsonAsync();
        Assert.Equal(oid, (string?)byDate.Resources().Single()["id"]);
        var sorted = await Client.GetAsync($"Observation?patient={pid}&_sort=-date");
        Assert.Equal(HttpStatusCode.OK, sorted.StatusCode);
    }

    [Fact]
    public async Task An_unknown_search_parameter_is_refused_with_400_naming_it()
    {
        var outcome = await Refused(HttpStatusCode.BadRequest, new HttpRequestMessage(HttpMethod.Get, "Patient?family=x&shoe-size=42&favourite-colour=blue"));
        var text = string.Join(" | ", outcome.Diagnostics());
        Assert.Contains("shoe-size", text, StringComparison.Ordinal);
        Assert.Contains("favourite-colour", text, StringComparison.Ordinal);
    }

    [Fact]
    public async Task With_lenient_handling_an_unknown_parameter_is_ignored_and_reported_in_the_bundle()
    {
        var family = Unique("Lenient");
        var id = await Client.CreateAsync("Patient", FhirTest.Patient(family));
        var request = new HttpRequestMessage(HttpMethod.Get, $"Patient?family={family}&shoe-size=42");
        request.Headers.TryAddWithoutValidation("Prefer", "handling=lenient");
        var response = await Client.SendAsync(request);

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bundle = await response.ReadJsonAsync();
        Assert.Equal(1, (int)bundle["total"]!);
        Assert.Equal(id, (string?)bundle.Resources().Single()["id"]);
        var outcome = bundle.Resources("outcome").Single();
        Assert.Equal("OperationOutcome", (string?)outcome["resourceType"]);
        Assert.Contains(outcome.Diagnostics(), d => d.Contains("shoe-size", StringComparison.Ordinal));

        var strict = new HttpRequestMessage(HttpMethod.Get, $"Patient?family={family}&shoe-size=42");
        strict.Headers.TryAddWithoutValidation("Prefer", "handling=strict");
        await Refused(HttpStatusCode.BadRequest, strict);
    }

    [Theory]
    [InlineData("Patient?_count=-1")]
    [InlineData("Patient?_count=abc")]
    [InlineData("Patient?_count=1.5")]
    [InlineData("Patient?_count=99999999999999999999")]
    [InlineData("Patient?_offset=-5")]
    [InlineData("Patient?_sort=name")]
    [InlineData("Patient?_sort=birthdate")]
    [InlineData("Patient?_sort=_lastUpdated,-_lastUpdated")]
    [InlineData("Patient?_sort=")]
    [InlineData("Observation?_sort=code")]
    [InlineData("Patient?_summary=text")]
    [InlineData("Patient?_format=xml")]
    [InlineData("Patient?_include=Patient:name")]
    [InlineData("Patient?_include=Observation:patient")]
    [InlineData("Patient?_include=nonsense")]
    [InlineData("Patient?_revinclude=Observation:code")]
    [InlineData("Patient?family:contains=x")]
    [InlineData("Patient?gender:text=x")]
    [InlineData("Observation?subject=x")]
    [InlineData("Observation?patient=Patient/a$b")]
    [InlineData("Observation?code=|")]
    [InlineData("Patient/_history?_count=abc")]
    [InlineData("Patient/_history?foo=bar")]
    public async Task An_invalid_search_control_is_refused_with_400(string query)
    {
        await Refused(HttpStatusCode.BadRequest, new HttpRequestMessage(HttpMethod.Get, query));
    }
}

public sealed class BadInputOnSqlite(SqliteServerFixture fixture) : BadInputConformance(fixture), IClassFixture<SqliteServerFixture>;

public sealed class BadInputOnPostgres(PostgresServerFixture fixture) : BadInputConformance(fixture), IClassFixture<PostgresServerFixture>;
