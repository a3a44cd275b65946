using System.Text.Json.Nodes;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.Matrix;

/// <summary>
/// Insecure direct object references: a user who guesses the id of a record they may not see learns
/// nothing on any path. Every answer about a hidden record is the answer about an id that does not
/// exist, byte for byte once the id itself is swapped.
/// </summary>
[Collection(HospitalCollection.Name)]
public sealed class IdorTests(HospitalFixture fixture)
{
    private const string Unknown = "6f0e1d2c-0000-4000-8000-00000000abcd";
    private const string Unknown2 = "6f0e1d2c-0000-4000-8000-00000000abce";

    /// <summary>Who guesses, and which kind of record they guess at.</summary>
    public static TheoryData<string, string> Guesses => new()
    {
        { "nurse.cardio", "oncology Observation" },
        { "nurse.cardio", "HIV-labelled Patient she cares for" },
        { "dr.onco", "cardiology Encounter" },
        { "dr.onco", "psychiatry Condition" },
        { "dr.psych", "general-medicine Patient" },
        { "dr.psych", "oncology MedicationRequest" },
    };

    private OracleFacts Hidden(string account, string what)
    {
        var s = fixture.Subject(account);
        if (what.StartsWith("HIV", StringComparison.Ordinal)) return fixture.World.Facts[("Patient", fixture.Added.HivPatient)];
        var parts = what.Split(' ');
        var (department, type) = (parts[0], parts[1]);
        return fixture.World.OfType(type).First(f => f.Departments.SetEquals([department]) && !HospitalPolicyOracle.Permits(s, MatrixAction.Read, f));
    }

    private static IEnumerable<(string Name, HttpMethod Method, string Url, string? Body)> Paths(string type)
    {
        yield return ("read", HttpMethod.Get, $"{type}/{{id}}", null);
        yield return ("vread", HttpMethod.Get, $"{type}/{{id}}/_history/1", null);
        yield return ("instance history", HttpMethod.Get, $"{type}/{{id}}/_history", null);
        yield return ("search by _id", HttpMethod.Get, $"{type}?_id={{id}}", null);
        yield return ("search by _id with _include", HttpMethod.Get,
            type == "Patient" ? "Patient?_id={id}&_revinclude=Observation:patient&_revinclude=Encounter:patient" : $"{type}?_id={{id}}&_include={type}:patient", null);
        yield return ("search by _id through POST _search", HttpMethod.Post, $"{type}/_search", "form:_id={id}");
        yield return ("search by a list of ids", HttpMethod.Get, $"{type}?_id={{id}},{Unknown2}", null);
        if (type == "Patient")
        {
            yield return ("search by patient", HttpMethod.Get, "Observation?patient={id}", null);
            yield return ("count by subject", HttpMethod.Get, "Encounter?subject=Patient/{id}&_summary=count", null);
            yield return ("conditional reference in a transaction", HttpMethod.Post, "", ConditionalReference("subject", "Patient"));
        }
        if (type == "Encounter")
        {
            yield return ("search by encounter", HttpMethod.Get, "Observation?encounter={id}", null);
            yield return ("conditional reference in a transaction", HttpMethod.Post, "", ConditionalReference("encounter", "Encounter"));
        }
        foreach (var kind in new[] { "batch", "transaction" })
        {
            yield return ($"{kind} GET entries", HttpMethod.Post, "", """
                {"resourceType":"Bundle","type":"KIND","entry":[
                  {"request":{"method":"GET","url":"TYPE/{id}"}},
                  {"request":{"method":"GET","url":"TYPE/{id}/_history/1"}},
                  {"request":{"method":"GET","url":"TYPE/{id}/_history"}},
                  {"request":{"method":"GET","url":"TYPE?_id={id}"}}]}
                """.Replace("KIND", kind, StringComparison.Ordinal).Replace("TYPE", type, StringComparison.Ordinal));
        }
    }

    /// <summary>For a search by reference to the guessed record: how many of the records it finds the user may see; else null.</summary>
    private int? Referrers(string path, OracleFacts hidden, OracleSubject s) => path switch
    {
        "search by patient" => fixture.World.OfType("Observation").Count(f => f.Patient == hidden.Id && HospitalPolicyOracle.Permits(s, MatrixAction.Search, f)),
        "count by subject" => fixture.World.OfType("Encounter").Count(f => f.Patient == hidden.Id && HospitalPolicyOracle.Permits(s, MatrixAction.Search, f)),
        "search by encounter" => fixture.World.OfType("Observation").Count(f => HospitalWorld.Ref(fixture.World.Json("Observation", f.Id)["encounter"], "Encounter") == hidden.Id
            && HospitalPolicyOracle.Permits(s, MatrixAction.Search, f)),
        _ => null,
    };

    /// <summary>A transaction creating an Observation that points at the guessed record by a conditional reference.</summary>
    private static string ConditionalReference(string element, string type) => """
        {"resourceType":"Bundle","type":"transaction","entry":[{"fullUrl":"urn:uuid:8d7c6b5a-0000-4000-8000-000000000001",
          "resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},
            "ELEMENT":{"reference":"TYPE?_id={id}"},"valueQuantity":{"value":72,"unit":"/min","system":"http://unitsofmeasure.org","code":"/min"}},
          "request":{"method":"POST","url":"Observation"}}]}
        """.Replace("ELEMENT", element, StringComparison.Ordinal).Replace("TYPE", type, StringComparison.Ordinal);

    private Task<HttpResponseMessage> SendAsync(string account, HttpMethod method, string url, string? body)
    {
        if (body?.StartsWith("form:", StringComparison.Ordinal) != true) return fixture.SendAsync(account, method, url, body);
        var form = body["form:".Length..].Split('=');
        var request = new HttpRequestMessage(method, url) { Content = new FormUrlEncodedContent([new(form[0], form[1])]) };
        return fixture.As(account).SendAsync(request);
    }

    /// <summary>Status and body with the id replaced and the parts that change with every response (bundle id, meta, timestamp) left out.</summary>
    internal static async Task<string> ShapeAsync(HttpResponseMessage response, string id)
    {
        var text = await response.Content.ReadAsStringAsync();
        var node = text.Length == 0 ? null : JsonNode.Parse(text);
        Normalize(node);
        var shape = $"{(int)response.StatusCode} {(node?.ToJsonString() ?? "").Replace(id, "{id}", StringComparison.Ordinal)}";
        return shape;
    }

    /// <summary>Leaves out what every Bundle, nested ones included, makes new for each response.</summary>
    private static void Normalize(JsonNode? node)
    {
        switch (node)
        {
            case JsonObject o:
                if ((string?)o["resourceType"] == "Bundle")
                {
                    o.Remove("id");
                    o.Remove("meta");
                    o.Remove("timestamp");
                }
                foreach (var (_, child) in o.ToList()) Normalize(child);
                break;
            case JsonArray a:
                foreach (var child in a) Normalize(child);
                break;
        }
    }

    /// <summary>Where two shapes first differ, with some context.</summary>
    private static string FirstDifference(string a, string b)
    {
        var i = 0;
        while (i < a.Length && i < b.Length && a[i] == b[i]) i++;
        var from = Math.Max(0, i - 150);
        return $"at {i}:\n    hidden:  …{a[from..Math.Min(a.Length, i + 150)]}\n    unknown: …{b[from..Math.Min(b.Length, i + 150)]}";
    }

    [Theory]
    [MemberData(nameof(Guesses))]
    public async Task A_guessed_id_of_a_hidden_record_answers_exactly_like_an_id_that_does_not_exist_on_every_path(string account, string what)
    {
        var hidden = Hidden(account, what);
        var differences = new List<string>();
        foreach (var (name, method, url, body) in Paths(hidden.Type))
        {
            using var guessed = await SendAsync(account, method, url.Replace("{id}", hidden.Id, StringComparison.Ordinal), body?.Replace("{id}", hidden.Id, StringComparison.Ordinal));
            using var unknown = await SendAsync(account, method, url.Replace("{id}", Unknown, StringComparison.Ordinal), body?.Replace("{id}", Unknown, StringComparison.Ordinal));
            var (g, u) = (await ShapeAsync(guessed, hidden.Id), await ShapeAsync(unknown, Unknown));
            if (Referrers(name, hidden, fixture.Subject(account)) is { } visibleReferrers)
            {
                // Records that point at the hidden one may themselves be visible (an unlabelled observation of an
                // HIV-labelled patient the nurse cares for): the search then finds exactly those, and no others.
                var total = (int?)(await guessed.ReadJsonAsync())["total"];
                if (total != visibleReferrers) differences.Add($"{name}: total {total}, but the policy permits {visibleReferrers} records pointing at it");
                if (visibleReferrers > 0) continue;
            }
            if (g != u) differences.Add($"{name} {FirstDifference(g, u)}");
            if (name == "read") Assert.Equal(404, (int)guessed.StatusCode);
        }
        Assert.True(differences.Count == 0, $"{account} can tell {hidden} from an unknown id:\n" + string.Join("\n", differences));
    }

    [Fact]
    public async Task Type_history_leaves_out_the_observations_a_nurse_may_not_see_and_counts_only_hers()
    {
        var world = await fixture.LoadWorldAsync();
        var s = fixture.Subject("nurse.cardio", world);
        var permitted = world.OfType("Observation").Where(f => HospitalPolicyOracle.Permits(s, MatrixAction.Search, f)).Select(f => f.Id).ToHashSet();
        var hidden = world.OfType("Observation").Where(f => !permitted.Contains(f.Id)).Select(f => f.Id).ToHashSet();

        using var response = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, "Observation/_history?_count=1000");
        Assert.Equal(200, (int)response.StatusCode);
        var bundle = await response.ReadJsonAsync();
        var ids = bundle.Entries().Select(e => ((string)e["fullUrl"]!).Split('/')[^1]).ToList();

        Assert.NotEmpty(permitted);
        Assert.NotEmpty(hidden);
        Assert.True(ids.Count < 1000, "the nurse's history must fit one page for this test");
        Assert.DoesNotContain(ids, hidden.Contains);
        Assert.Equal(permitted.Order(StringComparer.Ordinal), ids.Distinct().Order(StringComparer.Ordinal));
        Assert.Equal(ids.Count, (int)bundle["total"]!);
    }

    [Fact]
    public async Task Included_resources_leave_out_those_the_user_may_not_see()
    {
        var a = fixture.Added;
        using var include = await fixture.SendAsync("nurse.cardio", HttpMethod.Get,
            $"Observation?_id={a.HivObservation}&_include=Observation:patient&_include=Observation:encounter");
        Assert.Equal(200, (int)include.StatusCode);
        var bundle = await include.ReadJsonAsync();
        Assert.Equal([a.HivObservation], bundle.Resources("match").Select(r => (string)r["id"]!));
        Assert.Equal([$"Encounter/{a.HivEncounter}"], bundle.Resources("include").Select(r => $"{r["resourceType"]}/{r["id"]}"));
        Assert.DoesNotContain(bundle.Entries(), e => (string?)e["resource"]?["resourceType"] == "Patient");

        // A patient the nurse may see, with observations from her department and from others.
        var s = fixture.Subject("nurse.cardio");
        var observations = fixture.World.OfType("Observation").ToLookup(f => f.Patient);
        var patient = fixture.World.OfType("Patient").First(p => HospitalPolicyOracle.Permits(s, MatrixAction.Search, p)
            && observations[p.Id].Any(o => HospitalPolicyOracle.Permits(s, MatrixAction.Search, o))
            && observations[p.Id].Any(o => !HospitalPolicyOracle.Permits(s, MatrixAction.Search, o)));
        var expected = observations[patient.Id].Where(o => HospitalPolicyOracle.Permits(s, MatrixAction.Search, o)).Select(o => o.Id).Order(StringComparer.Ordinal);

        using var revinclude = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, $"Patient?_id={patient.Id}&_revinclude=Observation:patient");
        Assert.Equal(200, (int)revinclude.StatusCode);
        var included = (await revinclude.ReadJsonAsync()).Resources("include").Select(r => (string)r["id"]!).Order(StringComparer.Ordinal);
        Assert.Equal(expected, included);
    }

    [Fact]
    public async Task If_None_Exist_never_matches_a_record_the_user_may_not_see()
    {
        var s = fixture.Subject("nurse.cardio");
        var hidden = fixture.World.OfType("Patient").First(p => !HospitalPolicyOracle.Permits(s, MatrixAction.Search, p) && p.Departments.SetEquals(["oncology"]));
        var visible = fixture.World.OfType("Patient").First(p => HospitalPolicyOracle.Permits(s, MatrixAction.Search, p));
        string Mrn(OracleFacts p) => (string)fixture.World.Json("Patient", p.Id)["identifier"]!.AsArray().First(i => (string?)i!["system"] == "https://wardline.example/mrn")!["value"]!;
        var created = new List<string>();
        try
        {
            async Task<(int Status, string Id)> CreateAsync(string mrn)
            {
                var headers = new Dictionary<string, string> { ["If-None-Exist"] = "identifier=https://wardline.example/mrn|" + mrn };
                using var r = await fixture.SendAsync("nurse.cardio", HttpMethod.Post, "Patient", FhirTest.Patient("Guesser", id: null), headers: headers);
                var id = (string)(await r.ReadJsonAsync())["id"]!;
                if ((int)r.StatusCode == 201) created.Add(id);
                return ((int)r.StatusCode, id);
            }

            var onHidden = await CreateAsync(Mrn(hidden));
            var onNothing = await CreateAsync("WL-NO-SUCH-MRN");
            var onVisible = await CreateAsync(Mrn(visible));

            Assert.Equal(201, onHidden.Status);
            Assert.NotEqual(hidden.Id, onHidden.Id);
            Assert.Equal(201, onNothing.Status);
            Assert.Equal((200, visible.Id), onVisible);
            // The visible match's content went back to the nurse: a disclosure, in the ledger under its patient.
            await using (var c = await fixture.Service<Wardline.Server.Modules.Records.Storage.SqlDialect>().OpenAsync(CancellationToken.None))
            {
                await using var cmd = c.CreateCommand();
                cmd.CommandText = "SELECT COUNT(*) FROM ledger_entries WHERE type = 'access' AND user_name = 'nurse.cardio' AND patient = @p AND res_id = @p2";
                Wardline.Server.Modules.Records.Storage.Migrations.AddParam(cmd, "@p", "Patient/" + visible.Id);
                Wardline.Server.Modules.Records.Storage.Migrations.AddParam(cmd, "@p2", visible.Id);
                Assert.True(Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture) >= 1, "no ledger entry names the matched patient");
            }

            // The same through a batch entry's ifNoneExist.
            var batch = """
                {"resourceType":"Bundle","type":"batch","entry":[{"resource":PATIENT,"request":{"method":"POST","url":"Patient","ifNoneExist":"identifier=https://wardline.example/mrn|MRN"}}]}
                """.Replace("PATIENT", FhirTest.Patient("Guesser"), StringComparison.Ordinal).Replace("MRN", Mrn(hidden), StringComparison.Ordinal);
            using var inBatch = await fixture.SendAsync("nurse.cardio", HttpMethod.Post, "", batch);
            var entry = (await inBatch.ReadJsonAsync()).Entries().Single();
            var location = (string?)entry["response"]?["location"] ?? "";
            if (location.Contains("/Patient/", StringComparison.Ordinal)) created.Add(location.Split("/Patient/")[1].Split('/')[0]);
            Assert.Equal("201 Created", (string?)entry["response"]?["status"]);
            Assert.DoesNotContain(hidden.Id, entry.ToJsonString(), StringComparison.Ordinal);
        }
        finally
        {
            foreach (var id in created) await fixture.OperatorDeleteAsync("Patient", id);
        }
    }

    [Theory]
    [InlineData("Patient?_has:Observation:patient:code=8867-4")]
    [InlineData("Encounter?_has:Observation:encounter:code=8867-4")]
    [InlineData("Observation?subject.name=Smith")]
    [InlineData("Observation?patient.identifier=https://wardline.example/mrn|WL0000001")]
    [InlineData("Observation?subject:Patient.family=Smith")]
    [InlineData("Condition?encounter.service-provider=Organization/x")]
    public async Task Reverse_chained_and_chained_parameters_are_refused_as_unsupported(string url)
    {
        using var response = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, url);

        Assert.Equal(400, (int)response.StatusCode);
        var body = await response.ReadJsonAsync();
        Assert.Equal("OperationOutcome", (string?)body["resourceType"]);
        Assert.Null(body["entry"]);
    }

    [Fact]
    public async Task A_chained_query_on_a_hidden_patients_identifier_answers_like_one_on_an_unknown_identifier()
    {
        var s = fixture.Subject("nurse.cardio");
        var hidden = fixture.World.OfType("Patient").First(p => !HospitalPolicyOracle.Permits(s, MatrixAction.Search, p));
        var mrn = (string)fixture.World.Json("Patient", hidden.Id)["identifier"]![0]!["value"]!;
        const string none = "WL9999999";

        using var guessed = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, $"Observation?patient.identifier=https://wardline.example/mrn|{mrn}");
        using var unknown = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, $"Observation?patient.identifier=https://wardline.example/mrn|{none}");

        Assert.Equal(400, (int)guessed.StatusCode);
        Assert.Equal(await ShapeAsync(unknown, none), await ShapeAsync(guessed, mrn));
    }
}
