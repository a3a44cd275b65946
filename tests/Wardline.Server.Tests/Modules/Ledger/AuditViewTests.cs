using System.Net;
using System.Net.Http.Headers;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Npgsql;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Access.OAuth;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Ledger;

/// <summary>
/// One server under the built-in hospital policy with the people the audit views are about: a nurse who
/// reads everything (tier 1), a nurse who may read nothing, a physician approved for break-glass, a
/// privacy officer, a billing clerk, and a patient with a patient-context token.
/// </summary>
public abstract class AuditViewFixture(StoreKind kind) : IAsyncLifetime
{
    private readonly Dictionary<string, HttpClient> _clients = new(StringComparer.Ordinal);

    public TestStore Store { get; private set; } = null!;

    public TestServer Server { get; private set; } = null!;

    public T Service<T>() where T : notnull => Server.Service<T>();

    /// <summary>The cardiology department's Organization: the ledger records departments by these ids.</summary>
    public string Cardiology { get; private set; } = "";

    public async Task InitializeAsync()
    {
        Store = await TestStore.CreateAsync(kind);
        var policy = Path.Combine(Store.Folder, "hospital-policy.yaml");
        await File.WriteAllTextAsync(policy, PolicyHolder.BuiltInText());
        Store.Options.Access.PolicyPath = policy;
        Store.Options.Access.SubjectCacheSeconds = 0;
        Server = await TestServer.StartAsync(Store.Options, "audit.operator");
        Cardiology = await CreateAsync("Organization",
            """{"resourceType":"Organization","identifier":[{"system":"https://wardline.example/department","value":"cardiology"}],"name":"Cardiology"}""");
        var accounts = Service<AccountService>();
        foreach (var a in new[]
        {
            Account.New("nurse.senior", "Nurse Senior") with { Roles = ["nurse"], Tier = 1, Departments = ["cardiology"] },
            Account.New("nurse.new", "Nurse New") with { Roles = ["nurse"], Departments = ["dermatology"] },
            Account.New("dr.er", "Doctor Emergency") with { Roles = ["physician"], Departments = ["emergency"], BreakGlassApproved = true },
            Account.New("privacy.officer", "Privacy Officer") with { Roles = ["privacy_officer"] },
            Account.New("clerk.billing", "Billing Clerk") with { Roles = ["billing_clerk"], Departments = ["billing"] },
            Account.New("patient.portal", "A patient"),
        })
        {
            var result = await accounts.CreateAsync(a, null, "test", CancellationToken.None);
            if (result is not AccountResult.Done) throw new InvalidOperationException($"{a.Name}: {result}");
        }
    }

    public async Task DisposeAsync()
    {
        foreach (var c in _clients.Values) c.Dispose();
        await Server.DisposeAsync();
        NpgsqlConnection.ClearAllPools();
        SqliteConnection.ClearAllPools();
        await Store.DisposeAsync();
    }

    /// <summary>A client signed in as <paramref name="user"/> with an operator-issued token (all of the user's permissions).</summary>
    public async Task<HttpClient> ClientAsync(string user)
    {
        if (_clients.TryGetValue(user, out var client)) return client;
        var token = await Service<AccessTokens>().IssueAsync(user, TimeSpan.FromHours(2), CancellationToken.None) ?? throw new InvalidOperationException("no token");
        client = Client(token);
        _clients[user] = client;
        return client;
    }

    /// <summary>
    /// A SMART patient-context token for <paramref name="patient"/> (scope patient/*.read and the "patient"
    /// claim), signed with the server's token key as its OAuth server signs a standalone patient launch.
    /// </summary>
    public async Task<HttpClient> PatientClientAsync(string patient, string subject = "patient.portal")
    {
        var keys = await Service<TokenKeys>().GetAsync(CancellationToken.None);
        var settings = Service<TokenSettings>();
        var now = DateTime.UtcNow;
        var token = new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            TokenType = AccessTokens.TokenType,
            Issuer = settings.MintIssuer,
            Audience = settings.MintAudience,
            IssuedAt = now,
            NotBefore = now,
            Expires = now.AddHours(1),
            Claims = new Dictionary<string, object>(StringComparer.Ordinal)
            {
                ["sub"] = subject,
                ["amr"] = new[] { "pwd" },
                ["scope"] = "patient/*.read",
                ["patient"] = patient,
                ["jti"] = Guid.NewGuid().ToString("N"),
            },
            SigningCredentials = keys.SigningCredentials,
        });
        return Client(token);
    }

    private HttpClient Client(string token)
    {
        var client = new HttpClient { BaseAddress = Server.BaseUri, Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>Creates a resource as the operator; returns its id.</summary>
    public async Task<string> CreateAsync(string type, string json)
    {
        var response = await Service<RecordService>().CreateAsync(type, Encoding.UTF8.GetBytes(json), null, "http://operator/fhir", AccessScope.Operator, CancellationToken.None);
        if (response.Status != 201) throw new InvalidOperationException($"operator create {type}: {response.Status}");
        return (string)JsonNode.Parse(response.Json!)!["id"]!;
    }

    public Task<long> CountAsync(string sql) => Service<RecordStore>().CountAsync(sql, CancellationToken.None);
}

public sealed class SqliteAuditViewFixture() : AuditViewFixture(StoreKind.Sqlite);

public sealed class PostgresAuditViewFixture() : AuditViewFixture(StoreKind.Postgres);

/// <summary>AuditEvent and Provenance views over the ledger, and the accounting of disclosures, on both stores.</summary>
public abstract class AuditViewConformance(AuditViewFixture f)
{
    private async Task<string> NewPatientAsync() => await f.CreateAsync("Patient", FhirTest.Patient("Audited" + Guid.NewGuid().ToString("N")[..8]));

    private async Task<HttpClient> Officer() => await f.ClientAsync("privacy.officer");

    private static IEnumerable<JsonObject> Events(JsonObject bundle) => bundle.Resources(mode: null);

    private static IEnumerable<string?> Codes(JsonNode? codings) => codings?.AsArray().Select(c => (string?)c!["code"]) ?? [];

    [Fact]
    public async Task Privacy_officer_finds_a_nurses_read_with_BALP_codes()
    {
        var patient = await NewPatientAsync();
        Assert.Equal(HttpStatusCode.OK, (await (await f.ClientAsync("nurse.senior")).GetAsync($"Patient/{patient}")).StatusCode);

        var response = await (await Officer()).GetAsync($"AuditEvent?patient={patient}&agent=nurse.senior");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var bundle = await response.ReadJsonAsync();
        Assert.Equal("searchset", (string?)bundle["type"]);
        var ae = Assert.Single(Events(bundle));
        Assert.StartsWith("ledger-", (string)ae["id"]!, StringComparison.Ordinal);
        Assert.Equal("rest", (string?)ae["type"]!["code"]);
        Assert.Equal("read", Assert.Single(Codes(ae["subtype"])));
        Assert.Equal("R", (string?)ae["action"]);
        Assert.Equal("0", (string?)ae["outcome"]);
        Assert.Equal("https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.PatientRead", (string?)ae["meta"]!["profile"]![0]);
        var user = ae["agent"]!.AsArray().Single(a => (bool?)a!["requestor"] == true)!;
        Assert.Equal("nurse.senior", (string?)user["who"]!["identifier"]!["value"]);
        Assert.Contains("nurse", user["role"]!.AsArray().SelectMany(r => Codes(r!["coding"])));
        Assert.Contains(ae["agent"]!.AsArray(), a => (string?)a!["type"]!["coding"]![0]!["code"] == "110152");
        Assert.Equal("4", (string?)ae["source"]!["type"]![0]!["code"]);
        var entities = ae["entity"]!.AsArray();
        Assert.Contains(entities, e => (string?)e!["what"]!["reference"] == $"Patient/{patient}" && (string?)e["role"]!["code"] == "1" && (string?)e["type"]!["code"] == "1");
        Assert.Contains(entities, e => (string?)e!["role"]!["code"] == "4");
        Assert.Equal("TREAT", Assert.Single(ae["purposeOfEvent"]!.AsArray().SelectMany(p => Codes(p!["coding"]))));

        // The same event read on its own: a stable id.
        var one = await (await Officer()).GetAsync($"AuditEvent/{ae["id"]}");
        Assert.Equal(HttpStatusCode.OK, one.StatusCode);
        Assert.Equal((string?)ae["id"], (string?)(await one.ReadJsonAsync())["id"]);
    }

    [Fact]
    public async Task Search_pages_follow_the_next_link_without_repeating_an_event()
    {
        var patient = await NewPatientAsync();
        await f.CreateAsync("Observation", FhirTest.Observation(patient));
        await f.CreateAsync("Observation", FhirTest.Observation(patient, value: 75));
        var nurse = await f.ClientAsync("nurse.senior");
        for (var i = 0; i < 3; i++) Assert.Equal(HttpStatusCode.OK, (await nurse.GetAsync($"Patient/{patient}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await nurse.GetAsync($"Observation?patient={patient}")).StatusCode);

        var ids = new List<string>();
        var url = $"AuditEvent?patient={patient}&agent=nurse.senior&_count=2";
        var pages = 0;
        while (url is not null && pages++ < 10)
        {
            var bundle = await (await (await Officer()).GetAsync(url)).ReadJsonAsync();
            ids.AddRange(Events(bundle).Select(e => (string)e["id"]!));
            var next = bundle["link"]!.AsArray().FirstOrDefault(l => (string?)l!["relation"] == "next");
            url = next is null ? null : ((string)next["url"]!)[(f.Server.BaseUri.ToString().Length - 1)..].TrimStart('/');
        }

        Assert.Equal(4, ids.Count);
        Assert.Equal(4, ids.Distinct(StringComparer.Ordinal).Count());
        Assert.True(pages >= 2);
        var searches = Events(await (await (await Officer()).GetAsync($"AuditEvent?patient={patient}&agent=nurse.senior&action=E")).ReadJsonAsync());
        Assert.Equal("search-type", Assert.Single(Codes(Assert.Single(searches)["subtype"])));
    }

    [Fact]
    public async Task A_denied_read_is_a_minor_failure_carrying_the_rules_reason()
    {
        var patient = await NewPatientAsync();
        var refused = await (await f.ClientAsync("nurse.new")).GetAsync($"Patient/{patient}");
        Assert.NotEqual(HttpStatusCode.OK, refused.StatusCode);

        var bundle = await (await (await Officer()).GetAsync($"AuditEvent?patient={patient}&agent=nurse.new&outcome=4")).ReadJsonAsync();

        var ae = Assert.Single(Events(bundle));
        Assert.Equal("4", (string?)ae["outcome"]);
        var reason = await f.Service<RecordStore>().CountAsync(
            $"SELECT COUNT(*) FROM ledger_entries WHERE user_name = 'nurse.new' AND patient = 'Patient/{patient}' AND permitted = 0", CancellationToken.None);
        Assert.Equal(1, reason);
        Assert.False(string.IsNullOrWhiteSpace((string?)ae["outcomeDesc"]));
        Assert.Contains(ae["entity"]!.AsArray(), e => ((string?)e!["description"])?.StartsWith("refused: ", StringComparison.Ordinal) == true);
        Assert.Empty(Events(await (await (await Officer()).GetAsync($"AuditEvent?patient={patient}&agent=nurse.new&outcome=0")).ReadJsonAsync()));
    }

    [Fact]
    public async Task Break_glass_shows_the_emergency_override_and_ETREAT()
    {
        var patient = await NewPatientAsync();
        var (outcome, _) = await f.Service<BreakGlass>().DeclareAsync("dr.er", approved: true, patient, "Unconscious on arrival, history needed", "127.0.0.1", "audit-view-test", CancellationToken.None);
        Assert.Equal(BreakGlassOutcome.Declared, outcome);
        using var read = new HttpRequestMessage(HttpMethod.Get, $"Patient/{patient}");
        read.Headers.Add(AccessSubjects.PurposeHeader, "ETREAT");
        Assert.Equal(HttpStatusCode.OK, (await (await f.ClientAsync("dr.er")).SendAsync(read)).StatusCode);

        var events = Events(await (await (await Officer()).GetAsync($"AuditEvent?patient={patient}")).ReadJsonAsync()).ToList();

        var alert = Assert.Single(events, e => (string?)e["type"]!["code"] == "110113");
        Assert.Contains("110127", Codes(alert["subtype"]));
        Assert.Contains(alert["subtype"]!.AsArray(), s => (string?)s!["display"] == "Emergency Override Started");
        Assert.Equal("0", (string?)alert["outcome"]);
        Assert.Contains(alert["entity"]!.AsArray(), e => (string?)e!["what"]!["reference"] == $"Patient/{patient}");
        var access = Assert.Single(events, e => (string?)e["type"]!["code"] == "rest" && e["agent"]!.AsArray().Any(a => (string?)a!["who"]!["identifier"]!["value"] == "dr.er"));
        Assert.Contains("ETREAT", access["purposeOfEvent"]!.AsArray().SelectMany(p => Codes(p!["coding"])));
        Assert.Contains("110127", Codes(access["subtype"]));
    }

    [Theory]
    [InlineData("110113")]
    [InlineData("http://dicom.nema.org/resources/ontology/DCM|110113")]
    public async Task A_search_by_the_type_an_event_carries_finds_exactly_the_events_of_that_type(string type)
    {
        var patient = await NewPatientAsync();
        Assert.Equal(BreakGlassOutcome.Declared, (await f.Service<BreakGlass>().DeclareAsync("dr.er", approved: true, patient, "Collapsed in the waiting room", "127.0.0.1", "audit-type-test", CancellationToken.None)).Item1);
        Assert.Equal(HttpStatusCode.OK, (await (await f.ClientAsync("nurse.senior")).GetAsync($"Patient/{patient}")).StatusCode);

        var alerts = Events(await (await (await Officer()).GetAsync($"AuditEvent?patient={patient}&type={Uri.EscapeDataString(type)}")).ReadJsonAsync()).ToList();
        var rest = Events(await (await (await Officer()).GetAsync($"AuditEvent?patient={patient}&type=rest")).ReadJsonAsync()).ToList();
        var all = Events(await (await (await Officer()).GetAsync($"AuditEvent?patient={patient}")).ReadJsonAsync()).ToList();

        Assert.Equal("110113", (string?)Assert.Single(alerts)["type"]!["code"]);
        Assert.NotEmpty(rest);
        Assert.All(rest, e => Assert.Equal("rest", (string?)e["type"]!["code"]));
        Assert.Equal(all.Count(e => (string?)e["type"]!["code"] == "rest"), rest.Count);
        Assert.Equal(all.Count(e => (string?)e["type"]!["code"] == "110113"), alerts.Count);
    }

    [Fact]
    public async Task Provenance_of_an_update_carries_the_version_and_the_sha256_of_the_stored_content()
    {
        var patient = await NewPatientAsync();
        var id = await f.CreateAsync("Observation", FhirTest.Observation(patient));
        var updated = JsonNode.Parse(FhirTest.Observation(patient, value: 80))!.AsObject();
        updated["id"] = id;
        var put = await f.Service<RecordService>().UpdateAsync("Observation", id, Encoding.UTF8.GetBytes(updated.ToJsonString()), null, "http://operator/fhir", AccessScope.Operator, CancellationToken.None);
        Assert.Equal(200, put.Status);

        var bundle = await (await (await Officer()).GetAsync($"Provenance?target=Observation/{id}")).ReadJsonAsync();

        var provenances = Events(bundle).ToList();
        Assert.Equal(2, provenances.Count);
        var update = provenances[1];
        Assert.Equal($"Observation/{id}/_history/2", (string?)update["target"]![0]!["reference"]);
        Assert.Equal("UPDATE", (string?)update["activity"]!["coding"]![0]!["code"]);
        Assert.Equal("operator", (string?)update["agent"]![0]!["who"]!["identifier"]!["value"]);
        var stored = await f.Service<RecordStore>().ReadCurrentAsync("Observation", id, CancellationToken.None);
        var expected = Convert.ToHexStringLower(SHA256.HashData(f.Service<RecordKeys>().Open(stored!)!));
        Assert.Contains(update["extension"]!.AsArray(), x => (string?)x!["url"] == "https://wardline.example/fhir/StructureDefinition/ledger-sha256" && (string?)x["valueString"] == expected);
        Assert.Contains(update["extension"]!.AsArray(), x => (string?)x!["url"] == "https://wardline.example/fhir/StructureDefinition/ledger-index" && x["valueUnsignedInt"] is not null);
        var versioned = await (await (await Officer()).GetAsync($"Provenance?target=Observation/{id}/_history/1")).ReadJsonAsync();
        Assert.Equal("CREATE", (string?)Assert.Single(Events(versioned))["activity"]!["coding"]![0]!["code"]);
    }

    [Fact]
    public async Task Writing_an_AuditEvent_or_a_Provenance_is_refused_with_405_and_nothing_is_written()
    {
        var officer = await Officer();
        var writes = await f.CountAsync("SELECT COUNT(*) FROM ledger_entries WHERE type = 'write'");
        var stored = await f.CountAsync("SELECT COUNT(*) FROM resources WHERE res_type IN ('AuditEvent', 'Provenance')");
        const string body = """{"resourceType":"AuditEvent","id":"x"}""";

        var responses = new[]
        {
            await officer.PostJsonAsync("AuditEvent", body),
            await officer.PutJsonAsync("AuditEvent/ledger-1", body),
            await officer.DeleteAsync("AuditEvent/ledger-1"),
            await officer.PostJsonAsync("Provenance", """{"resourceType":"Provenance"}"""),
            await officer.PutJsonAsync("Provenance/ledger-1", """{"resourceType":"Provenance","id":"ledger-1"}"""),
            await officer.DeleteAsync("Provenance/ledger-1"),
            await officer.PostJsonAsync("", """
                {"resourceType":"Bundle","type":"transaction","entry":[
                  {"resource":{"resourceType":"Provenance","recorded":"2026-01-01T00:00:00Z"},"request":{"method":"POST","url":"Provenance"}}]}
                """),
        };

        foreach (var r in responses)
        {
            Assert.Equal(HttpStatusCode.MethodNotAllowed, r.StatusCode);
            Assert.Equal("OperationOutcome", (string?)(await r.ReadJsonAsync())["resourceType"]);
        }
        Assert.Equal(writes, await f.CountAsync("SELECT COUNT(*) FROM ledger_entries WHERE type = 'write'"));
        Assert.Equal(stored, await f.CountAsync("SELECT COUNT(*) FROM resources WHERE res_type IN ('AuditEvent', 'Provenance')"));
    }

    [Fact]
    public async Task A_billing_clerk_is_refused_the_audit_trail_and_the_refusal_is_recorded()
    {
        var patient = await NewPatientAsync();
        var clerk = await f.ClientAsync("clerk.billing");

        Assert.Equal(HttpStatusCode.Forbidden, (await clerk.GetAsync($"AuditEvent?patient={patient}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await clerk.GetAsync($"Provenance?patient={patient}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await clerk.GetAsync($"Patient/{patient}/$access-log")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await (await f.ClientAsync("nurse.senior")).GetAsync("AuditEvent")).StatusCode);
        using var anonymous = f.Server.AnonymousClient();
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync($"AuditEvent?patient={patient}")).StatusCode);
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync($"Patient/{patient}/$access-log")).StatusCode);
        Assert.Equal(1, await f.CountAsync($"SELECT COUNT(*) FROM access_log WHERE phase = 'audit' AND user_name = 'clerk.billing' AND permitted = 0 AND patient = 'Patient/{patient}'"));
    }

    [Fact]
    public async Task Reading_the_audit_trail_adds_an_entry_for_the_reader()
    {
        var patient = await NewPatientAsync();
        string Audit() => $"SELECT COUNT(*) FROM access_log WHERE phase = 'audit' AND user_name = 'privacy.officer' AND patient = 'Patient/{patient}' AND permitted = 1";
        Assert.Equal(0, await f.CountAsync(Audit()));

        Assert.Equal(HttpStatusCode.OK, (await (await Officer()).GetAsync($"AuditEvent?patient={patient}")).StatusCode);
        Assert.Equal(1, await f.CountAsync(Audit()));
        Assert.Equal(HttpStatusCode.OK, (await (await Officer()).GetAsync($"Patient/{patient}/$access-log")).StatusCode);
        Assert.Equal(2, await f.CountAsync(Audit()));

        // The reads of the trail are themselves audit events.
        var bundle = await (await (await Officer()).GetAsync($"AuditEvent?patient={patient}&agent=privacy.officer")).ReadJsonAsync();
        Assert.Contains(Events(bundle), e => (string?)e["type"]!["code"] == "110110");

        // A read that shows events naming no patient (a nurse's refused look at the trail) is recorded as well.
        Assert.Equal(HttpStatusCode.Forbidden, (await (await f.ClientAsync("nurse.senior")).GetAsync("AuditEvent?type=security")).StatusCode);
        const string NoPatient = "SELECT COUNT(*) FROM access_log WHERE phase = 'audit' AND user_name = 'privacy.officer' AND patient IS NULL";
        var before = await f.CountAsync(NoPatient);
        var refusals = await (await Officer()).GetAsync("AuditEvent?agent=nurse.senior&type=110110");
        Assert.NotEmpty(Events(await refusals.ReadJsonAsync()));
        Assert.Equal(before + 1, await f.CountAsync(NoPatient));
        // A page of nothing, or of the reader's own earlier reads of the trail, is not recorded again: a client polling for
        // new events would otherwise read back its own last poll forever.
        Assert.Equal(HttpStatusCode.OK, (await (await Officer()).GetAsync("AuditEvent?agent=nobody.at.all")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await (await Officer()).GetAsync("AuditEvent?agent=privacy.officer&type=110110")).StatusCode);
        Assert.Equal(before + 1, await f.CountAsync(NoPatient));
    }

    [Fact]
    public async Task The_accounting_of_disclosures_lists_each_read_with_who_role_and_reason()
    {
        var patient = await NewPatientAsync();
        Assert.Equal(HttpStatusCode.OK, (await (await f.ClientAsync("nurse.senior")).GetAsync($"Patient/{patient}")).StatusCode);
        Assert.NotEqual(HttpStatusCode.OK, (await (await f.ClientAsync("nurse.new")).GetAsync($"Patient/{patient}")).StatusCode);

        var response = await (await Officer()).GetAsync($"Patient/{patient}/$access-log?from=2020-01-01");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var parameters = await response.ReadJsonAsync();
        Assert.Equal("Parameters", (string?)parameters["resourceType"]);
        var disclosures = Disclosures(parameters);
        var read = Assert.Single(disclosures, d => Part(d, "who") == "nurse.senior");
        Assert.Equal("Read", Part(read, "action"));
        Assert.Equal("nurse", Part(read, "role"));
        Assert.Equal(f.Cardiology, Part(read, "department"));
        Assert.Equal($"Patient/{patient}", Part(read, "resource"));
        Assert.Equal("TREAT", Part(read, "purpose"));
        Assert.Equal("true", Part(read, "permitted"));
        var denied = Assert.Single(disclosures, d => Part(d, "who") == "nurse.new");
        Assert.Equal("false", Part(denied, "permitted"));
        Assert.False(string.IsNullOrEmpty(Part(denied, "reason")));
        Assert.Contains(disclosures, d => Part(d, "who") == "operator" && Part(d, "action") == "Create");

        var future = await (await (await Officer()).GetAsync($"Patient/{patient}/$access-log?from=2100-01-01")).ReadJsonAsync();
        Assert.Empty(Disclosures(future));
        Assert.Equal(HttpStatusCode.NotFound, (await (await Officer()).GetAsync("Patient/no-such-patient/$access-log")).StatusCode);
    }

    [Fact]
    public async Task A_clinicians_app_launched_in_a_patients_context_is_not_the_patient_and_reads_no_accounting()
    {
        var patient = await NewPatientAsync();
        Assert.Equal(HttpStatusCode.OK, (await (await f.ClientAsync("nurse.senior")).GetAsync($"Patient/{patient}")).StatusCode);
        var launched = await f.PatientClientAsync(patient, subject: "nurse.senior");

        var response = await launched.GetAsync($"Patient/{patient}/$access-log");

        Assert.Equal(HttpStatusCode.Forbidden, response.StatusCode);
        Assert.DoesNotContain("Parameters", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_patient_token_sees_its_own_log_without_staff_names_and_no_other()
    {
        var patient = await NewPatientAsync();
        var other = await NewPatientAsync();
        Assert.Equal(HttpStatusCode.OK, (await (await f.ClientAsync("nurse.senior")).GetAsync($"Patient/{patient}")).StatusCode);
        var me = await f.PatientClientAsync(patient);

        var response = await me.GetAsync($"Patient/{patient}/$access-log");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("nurse.senior", text, StringComparison.Ordinal);
        Assert.DoesNotContain("operator", text, StringComparison.Ordinal);
        var disclosures = Disclosures(JsonNode.Parse(text)!.AsObject());
        var read = Assert.Single(disclosures, d => Part(d, "action") == "Read" && Part(d, "role") == "nurse");
        Assert.Null(Part(read, "who"));
        Assert.Equal(f.Cardiology, Part(read, "department"));
        Assert.Null(Part(read, "source"));
        Assert.Equal(1, await f.CountAsync($"SELECT COUNT(*) FROM access_log WHERE phase = 'audit' AND user_name = 'patient.portal' AND patient = 'Patient/{patient}'"));

        var otherResponse = await me.GetAsync($"Patient/{other}/$access-log");
        var unknown = await me.GetAsync("Patient/no-such-patient/$access-log");
        Assert.Equal(HttpStatusCode.NotFound, otherResponse.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal((await unknown.DiagnosticsAsync()).Replace("no-such-patient", other, StringComparison.Ordinal), await otherResponse.DiagnosticsAsync());
        Assert.Equal(HttpStatusCode.Forbidden, (await me.GetAsync($"AuditEvent?patient={patient}")).StatusCode);
    }

    [Fact]
    public async Task A_patient_signed_in_with_their_own_account_reads_their_log_and_no_other()
    {
        var patient = await f.CreateAsync("Patient", """
            {"resourceType":"Patient","identifier":[{"system":"https://wardline.example/staff","value":"patient.portal"}],"name":[{"family":"Portal"}]}
            """);
        var other = await NewPatientAsync();
        Assert.Equal(HttpStatusCode.OK, (await (await f.ClientAsync("nurse.senior")).GetAsync($"Patient/{patient}")).StatusCode);
        var me = await f.ClientAsync("patient.portal");

        var response = await me.GetAsync($"Patient/{patient}/$access-log");

        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        var text = await response.Content.ReadAsStringAsync();
        Assert.DoesNotContain("nurse.senior", text, StringComparison.Ordinal);
        Assert.Contains(Disclosures(JsonNode.Parse(text)!.AsObject()), d => Part(d, "action") == "Read" && Part(d, "role") == "nurse");
        Assert.Equal(HttpStatusCode.Forbidden, (await me.GetAsync($"Patient/{other}/$access-log")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await me.GetAsync($"AuditEvent?patient={patient}")).StatusCode);
    }

    [Fact]
    public async Task With_PatientSeesStaffNames_the_patient_sees_who_read_the_record()
    {
        var patient = await NewPatientAsync();
        Assert.Equal(HttpStatusCode.OK, (await (await f.ClientAsync("nurse.senior")).GetAsync($"Patient/{patient}")).StatusCode);
        var options = f.Service<Wardline.Server.Modules.Ledger.LedgerOptions>();
        options.PatientSeesStaffNames = true;
        try
        {
            var log = await (await (await f.PatientClientAsync(patient)).GetAsync($"Patient/{patient}/$access-log")).ReadJsonAsync();

            var read = Assert.Single(Disclosures(log), d => Part(d, "action") == "Read");
            Assert.Equal("nurse.senior", Part(read, "who"));
            Assert.Null(Part(read, "source"));
        }
        finally
        {
            options.PatientSeesStaffNames = false;
        }
    }

    [Theory]
    [InlineData("AuditEvent?date=garbage")]
    [InlineData("AuditEvent?date=xx2026-01-01")]
    [InlineData("AuditEvent?_count=-1")]
    [InlineData("AuditEvent?_count=abc")]
    [InlineData("AuditEvent?unknown=1")]
    [InlineData("AuditEvent?patient=Patient/%20bad")]
    [InlineData("AuditEvent?outcome=maybe")]
    [InlineData("AuditEvent?type=nonsense")]
    [InlineData("Provenance?target=not-a-reference")]
    [InlineData("Provenance?_count=-1")]
    [InlineData("Patient/p1/$access-log?from=garbage")]
    [InlineData("Patient/p1/$access-log?colour=blue")]
    public async Task Bad_input_is_refused_with_400_and_an_OperationOutcome(string url)
    {
        var response = await (await Officer()).GetAsync(url);

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("OperationOutcome", (string?)(await response.ReadJsonAsync())["resourceType"]);
    }

    [Theory]
    [InlineData("AuditEvent?date=9999")]
    [InlineData("AuditEvent?date=9999-12")]
    [InlineData("AuditEvent?date=9999-12-31")]
    [InlineData("AuditEvent?date=9999-12-31T23:59:59.9999999Z")]
    [InlineData("AuditEvent?date=gt9999-12-31")]
    [InlineData("AuditEvent?date=le9999-12-31T23:59:59.9999999Z")]
    [InlineData("AuditEvent?date=0001-01-01T00:00:00Z")]
    [InlineData("Patient/{patient}/$access-log?to=9999-12-31")]
    [InlineData("Patient/{patient}/$access-log?from=9999-12-31&to=9999-12-31")]
    [InlineData("Patient/{patient}/$access-log?from=0001&to=9999")]
    public async Task Dates_at_the_edges_of_the_calendar_are_answered_not_failed(string url)
    {
        var patient = await NewPatientAsync();

        var response = await (await Officer()).GetAsync(url.Replace("{patient}", patient, StringComparison.Ordinal));

        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{url}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
    }

    private static List<JsonObject> Disclosures(JsonObject parameters) =>
        [.. parameters["parameter"]!.AsArray().Select(p => p!.AsObject()).Where(p => (string?)p["name"] == "disclosure")];

    private static string? Part(JsonObject disclosure, string name)
    {
        var part = disclosure["part"]!.AsArray().FirstOrDefault(p => (string?)p!["name"] == name);
        if (part is null) return null;
        var value = part.AsObject().First(kv => kv.Key.StartsWith("value", StringComparison.Ordinal)).Value;
        return value is JsonValue v && v.TryGetValue<bool>(out var b) ? (b ? "true" : "false") : value is JsonObject o ? (string?)o["reference"] : (string?)value;
    }
}

public sealed class AuditViewOnSqlite(SqliteAuditViewFixture f) : AuditViewConformance(f), IClassFixture<SqliteAuditViewFixture>;

public sealed class AuditViewOnPostgres(PostgresAuditViewFixture f) : AuditViewConformance(f), IClassFixture<PostgresAuditViewFixture>;
