using System.Net;
using System.Text;
using System.Text.Json.Nodes;
using Wardline.Monitoring;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Monitoring;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;
using static Wardline.Server.Tests.Modules.Monitoring.MonitoringServerKit;

namespace Wardline.Server.Tests.Modules.Monitoring;

/// <summary>
/// The /monitor API on a server without streaming (alerts come from replays and from findings recorded directly):
/// the queue and an alert's evidence with proofs, review, replay, status, catalogue and timelines; for privacy and
/// security officers only; every bad input a 400 ProblemDetails that writes nothing.
/// </summary>
public abstract class MonitoringApiConformance(StoreKind kind) : MonitoringServerTest(kind, officer: true)
{
    private Uri Url(string path) => Monitor(Server, path);

    private Task<string> SelfReadAsync() => ReadOwnRecordAsync(Server);

    private Task<JsonNode> ReplayAsync() => ReplayLastHourAsync(Officer, Server);

    /// <summary>The tester reads their own record and the officer replays the hour: the self-access alert it raised.</summary>
    private async Task<JsonObject> SelfAccessAlertAsync()
    {
        await SelfReadAsync();
        await ReplayAsync();
        return await FirstAlertAsync();
    }

    private async Task<JsonObject> FirstAlertAsync() => (await JsonAsync(await Officer.GetAsync(Url("alerts?detection=self-access"))))["alerts"]!.AsArray()[0]!.AsObject();

    [Fact]
    public async Task A_replay_raises_the_alerts_of_a_period_once_and_is_recorded_in_the_ledger()
    {
        var own = await SelfReadAsync();

        var first = await ReplayAsync();
        var second = await ReplayAsync();

        // The self-access, and privileged-grant: the test made the officer's account with the privacy_officer role within the hour.
        Assert.Equal(2, (int)first["newAlerts"]!);
        Assert.Equal(0, (int)second["newAlerts"]!);
        var grant = (await JsonAsync(await Officer.GetAsync(Url("alerts?detection=privileged-grant"))))["alerts"]!.AsArray();
        Assert.Equal("privacy.olu", (string?)Assert.Single(grant)!["user"]);
        Assert.Equal("test gave account privacy.olu the privacy_officer role", (string?)grant[0]!["evidence"]);
        Assert.True((int)second["alreadyKnown"]! >= 1);
        Assert.Equal(2, await CountAsync(Store.Options, "SELECT COUNT(*) FROM ledger_entries WHERE type = 'system' AND event = 'monitor-replay' AND actor = 'api:privacy.olu'"));
        var alert = await FirstAlertAsync();
        Assert.Equal("replay", (string?)alert["source"]);
        Assert.Equal("new", (string?)alert["status"]);
        var byPatient = await JsonAsync(await Officer.GetAsync(Url("alerts?patient=" + own)));
        Assert.Single(byPatient["alerts"]!.AsArray());
    }

    [Fact]
    public async Task A_replay_examines_an_entry_of_its_period_whose_clock_jumped_outside_it()
    {
        var own = await SelfReadAsync();
        // Other work after it, so that its entries sit inside the period.
        for (var i = 0; i < 6; i++)
        {
            var other = await Server.Client.CreateAsync("Patient", """{"resourceType":"Patient","name":[{"family":"Other"}]}""");
            Assert.Equal(HttpStatusCode.OK, (await Server.Client.GetAsync("Patient/" + other)).StatusCode);
        }
        // The clock of the server that recorded the tester's work on their own record had jumped two days back (the entries'
        // time column as such a server writes it; the entries before and after them were stamped by a right clock).
        var jumped = await ExecAsync(Store.Options, "UPDATE ledger_entries SET at = at - 172800000 WHERE patient LIKE @p", ("@p", "%" + own));
        Assert.InRange(jumped, 2, 4);

        await ReplayAsync();

        var alerts = (await JsonAsync(await Officer.GetAsync(Url("alerts?detection=self-access&patient=" + own))))["alerts"]!.AsArray();
        Assert.Single(alerts);
    }

    [Theory]
    [InlineData("""{"from":"2026-11-02","to":"2026-11-01"}""", "after its start")]
    [InlineData("""{"from":"2024-01-01","to":"2026-01-01"}""", "at most 366 days")]
    [InlineData("""{"from":"yesterday","to":"2026-01-01"}""", "from must be a date")]
    [InlineData("""{"to":"2026-01-01"}""", "from is required")]
    [InlineData("""{"from": 12""", "not valid JSON")]
    [InlineData("""{"from": 12, "to": true}""", "not valid JSON")]
    public async Task A_replay_of_a_bad_period_is_refused_with_a_clear_message(string body, string expected)
    {
        var ledger = await CountAsync(Store.Options, "SELECT COUNT(*) FROM ledger_entries WHERE event = 'monitor-replay'");

        var response = await Officer.PostAsync(Url("replay"), new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(expected, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(ledger, await CountAsync(Store.Options, "SELECT COUNT(*) FROM ledger_entries WHERE event = 'monitor-replay'"));
    }

    [Fact]
    public async Task An_officer_reviews_an_alert_through_the_api_and_a_stale_revision_is_a_conflict()
    {
        var alert = await SelfAccessAlertAsync();
        var id = (long)alert["id"]!;
        var revision = (int)alert["revision"]!;

        var assigned = await JsonAsync(await PostJsonAsync(Officer, Url($"alerts/{id}/assign"), new { assignee = "privacy.olu", revision }));
        var comment = await PostJsonAsync(Officer, Url($"alerts/{id}/comments"), new { note = "asked the ward manager" });
        var stale = await PostJsonAsync(Officer, Url($"alerts/{id}/status"), new { status = "closed-violation", note = "confirmed", revision });
        var closed = await JsonAsync(await PostJsonAsync(Officer, Url($"alerts/{id}/status"), new { status = "closed-violation", note = "confirmed", revision = (int)assigned["revision"]! }));
        var detail = await JsonAsync(await Officer.GetAsync(Url($"alerts/{id}")));

        Assert.Equal("privacy.olu", (string?)assigned["assignee"]);
        Assert.Equal(HttpStatusCode.OK, comment.StatusCode);
        Assert.Equal(HttpStatusCode.Conflict, stale.StatusCode);
        Assert.Equal("closed-violation", (string?)closed["status"]);
        Assert.Equal(["raised", "assign", "comment", "status"], detail["events"]!.AsArray().Select(e => (string?)e!["kind"]));
        Assert.Equal("confirmed", (string?)detail["events"]!.AsArray()[3]!["note"]);
        Assert.NotEmpty(detail["entries"]!.AsArray());
    }

    [Fact]
    public async Task An_officer_cannot_change_the_status_of_or_assign_an_alert_about_themselves_and_another_officer_can()
    {
        // An alert about the officer privacy.olu (a finding recorded directly, on a ledger entry of the tester's self-access).
        var own = await SelfReadAsync();
        var index = await CountAsync(Store.Options, "SELECT MAX(idx) FROM ledger_entries");
        var raised = await Server.Service<AlertStore>().RecordFindingsAsync(
            [MonitoringHarness.Finding("self-access", "privacy.olu", own, index, groupKey: own)], MonitorConfig.Default, "stream", null, CancellationToken.None);
        var id = Assert.Single(raised.NewAlertIds);
        var before = await JsonAsync(await Officer.GetAsync(Url($"alerts/{id}")));
        var revision = (int)before["alert"]!["revision"]!;
        var ledger = await CountAsync(Store.Options, "SELECT COUNT(*) FROM ledger_entries WHERE event = 'AlertUpdated'");

        var refused = new[]
        {
            await PostJsonAsync(Officer, Url($"alerts/{id}/status"), new { status = "closed-legitimate", note = "that was me, at work", revision }),
            await PostJsonAsync(Officer, Url($"alerts/{id}/status"), new { status = "under-review" }),
            await PostJsonAsync(Officer, Url($"alerts/{id}/assign"), new { assignee = "privacy.olu", revision }),
        };
        using var other = await ClientAsync(Server, "privacy.ines", "privacy_officer");
        var toSubject = await PostJsonAsync(other, Url($"alerts/{id}/assign"), new { assignee = "privacy.olu", revision });

        foreach (var response in refused.Append(toSubject))
        {
            Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
            Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
            Assert.Contains(response == toSubject ? "cannot be assigned to the user it is about" : "An alert about your own activity is reviewed by another officer.",
                await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        }
        var after = await JsonAsync(await Officer.GetAsync(Url($"alerts/{id}")));
        Assert.Equal(revision, (int)after["alert"]!["revision"]!);
        Assert.Equal("new", (string?)after["alert"]!["status"]);
        Assert.Null((string?)after["alert"]!["assignee"]);
        Assert.Equal(ledger, await CountAsync(Store.Options, "SELECT COUNT(*) FROM ledger_entries WHERE event = 'AlertUpdated'"));

        var assigned = await JsonAsync(await PostJsonAsync(other, Url($"alerts/{id}/assign"), new { assignee = "privacy.ines", revision }));
        var closed = await JsonAsync(await PostJsonAsync(other, Url($"alerts/{id}/status"),
            new { status = "closed-legitimate", note = "covering the ward", revision = (int)assigned["revision"]! }));
        Assert.Equal("privacy.ines", (string?)assigned["assignee"]);
        Assert.Equal("closed-legitimate", (string?)closed["status"]);
    }

    [Fact]
    public async Task The_proof_of_an_alerts_entry_checks_against_the_signed_head_and_other_entries_are_not_found()
    {
        var alert = await SelfAccessAlertAsync();
        var id = (long)alert["id"]!;
        var detail = await JsonAsync(await Officer.GetAsync(Url($"alerts/{id}")));
        var index = (long)detail["entries"]!.AsArray()[0]!["index"]!;

        var proof = await JsonAsync(await Officer.GetAsync(Url($"alerts/{id}/entries/{index}/proof")));
        var other = await Officer.GetAsync(Url($"alerts/{id}/entries/0/proof"));

        var head = await Server.Service<TreeHeads>().LatestAsync(CancellationToken.None);
        Assert.Equal(head!.Size, (long)proof["treeSize"]!);
        Assert.Equal(Convert.ToHexStringLower(head.Root), (string?)proof["rootHash"]);
        var leaf = Convert.FromHexString((string)proof["leafHash"]!);
        var path = proof["auditPath"]!.AsArray().Select(h => Convert.FromHexString((string)h!)).ToList();
        Assert.True(Wardline.Ledger.ProofVerifier.VerifyInclusion(index, head.Size, leaf, path, head.Root).Valid);
        Assert.Equal(HttpStatusCode.NotFound, other.StatusCode);
        Assert.Contains("not evidence", await other.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("alerts?status=open", "status must be one of")]
    [InlineData("alerts?severity=urgent", "severity must be")]
    [InlineData("alerts?from=last-week", "from must be a date")]
    [InlineData("alerts?limit=100000", "limit must be a whole number from 1 to 500")]
    [InlineData("alerts?limit=0", "limit must be")]
    [InlineData("alerts?open=maybe", "open must be true or false")]
    [InlineData("alerts/abc", "is not an alert id")]
    [InlineData("users/nurse.a/activity?from=2026-01-01&to=2025-01-01", "to must be after from")]
    [InlineData("users/nurse.a/activity?from=2025-01-01&to=2026-01-01", "at most 92 days")]
    [InlineData("patients/bad%20id/accesses", "is not a FHIR id")]
    [InlineData("users/nurse.a/activity?to=0001-01-01", "to must be after from")]
    [InlineData("patients/p1/accesses?to=0001-01-01", "to must be after from")]
    [InlineData("users/nurse.a/activity?to=0001-01-01T00:00:00%2B01:00", "to must be a date")]
    [InlineData("alerts/1/entries/x/proof", "is not a ledger index")]
    public async Task Bad_query_input_is_a_400_problem(string path, string expected)
    {
        var response = await Officer.GetAsync(Url(path));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Equal("application/problem+json", response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(expected, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("status", """{"status":"done","note":"x"}""", "status must be one of")]
    [InlineData("status", """{"status":"closed-legitimate"}""", "needs a note")]
    [InlineData("status", """not json""", "not valid JSON")]
    [InlineData("status", """{"status":"escalated","revision":"one"}""", "not valid JSON")]
    [InlineData("assign", """{"assignee":"nobody.at.all"}""", "no account")]
    [InlineData("comments", """{"note":""}""", "needs a note")]
    public async Task Bad_review_input_is_a_400_problem_that_writes_nothing(string action, string body, string expected)
    {
        var id = (long)(await SelfAccessAlertAsync())["id"]!;
        var ledger = await CountAsync(Store.Options, "SELECT COUNT(*) FROM ledger_entries WHERE event = 'AlertUpdated'");

        var response = await Officer.PostAsync(Url($"alerts/{id}/{action}"), new StringContent(body, Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.BadRequest, response.StatusCode);
        Assert.Contains(expected, await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(ledger, await CountAsync(Store.Options, "SELECT COUNT(*) FROM ledger_entries WHERE event = 'AlertUpdated'"));
    }

    [Fact]
    public async Task An_unknown_alert_is_a_404_problem()
    {
        var get = await Officer.GetAsync(Url("alerts/987654"));
        var post = await PostJsonAsync(Officer, Url("alerts/987654/status"), new { status = "under-review" });

        Assert.Equal(HttpStatusCode.NotFound, get.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, post.StatusCode);
        Assert.Equal("application/problem+json", post.Content.Headers.ContentType?.MediaType);
    }

    [Fact]
    public async Task A_clinician_is_refused_with_403_and_an_anonymous_caller_with_401()
    {
        using var clinician = await ClientAsync(Server, "dr.curious", "physician");
        using var anonymous = Server.AnonymousClient();

        foreach (var (client, expected) in new[] { (clinician, HttpStatusCode.Forbidden), (anonymous, HttpStatusCode.Unauthorized) })
        {
            foreach (var path in new[] { "alerts", "alerts/1", "status", "detections", "users/tester/activity", "patients/p1/accesses", "alerts/1/entries/1/proof" })
                Assert.Equal(expected, (await client.GetAsync(Url(path))).StatusCode);
            Assert.Equal(expected, (await PostJsonAsync(client, Url("replay"), new { from = "2026-01-01", to = "2026-01-02" })).StatusCode);
            Assert.Equal(expected, (await PostJsonAsync(client, Url("alerts/1/status"), new { status = "under-review" })).StatusCode);
        }
        Assert.Equal(0, await CountAsync(Store.Options, "SELECT COUNT(*) FROM ledger_entries WHERE event = 'monitor-replay'"));
    }

    [Fact]
    public async Task Status_and_the_detection_catalogue_show_the_configuration_in_force()
    {
        var status = await JsonAsync(await Officer.GetAsync(Url("status")));
        var catalogue = await JsonAsync(await Officer.GetAsync(Url("detections")));

        Assert.False((bool)status["enabled"]!);
        Assert.Equal(MonitorConfig.Default.Fingerprint, (string?)status["configFingerprint"]);
        var self = catalogue["detections"]!.AsArray().Single(d => (string?)d!["id"] == "self-access")!;
        Assert.True((bool)self["enabled"]!);
        Assert.False((bool)self["suppressible"]!);
        Assert.Equal(Catalog.All.Count, catalogue["detections"]!.AsArray().Count);
    }

    [Theory]
    [InlineData("users/tester/activity?to=0001-01-03")]
    [InlineData("patients/p1/accesses?to=0001-01-03")]
    [InlineData("users/tester/activity?to=9999-12-31T23:59:59.9999999Z")]
    [InlineData("patients/p1/accesses?from=9999-12-30&to=9999-12-31")]
    public async Task Timelines_at_the_edges_of_the_calendar_are_answered(string path)
    {
        var response = await Officer.GetAsync(Url(path));

        Assert.True(response.StatusCode == HttpStatusCode.OK, $"{path}: {(int)response.StatusCode} {await response.Content.ReadAsStringAsync()}");
        Assert.Empty((await JsonAsync(response))["items"]!.AsArray());
    }

    [Fact]
    public async Task Timelines_list_a_users_activity_and_a_patients_accesses_and_record_the_officers_read()
    {
        var own = await SelfReadAsync();

        var activity = await JsonAsync(await Officer.GetAsync(Url("users/tester/activity")));
        var accesses = await JsonAsync(await Officer.GetAsync(Url($"patients/{own}/accesses")));

        Assert.Contains(activity["items"]!.AsArray(), i => (string?)i!["patient"] == own && (string?)i["event"] == "decision");
        Assert.Contains(accesses["items"]!.AsArray(), i => (string?)i!["user"] == "tester");
        Assert.True(await CountAsync(Store.Options, $"SELECT COUNT(*) FROM ledger_entries WHERE type = 'access' AND event = 'audit' AND user_name = 'privacy.olu' AND patient = 'Patient/{own}'") >= 2);
    }
}

public sealed class MonitoringApiOnSqlite() : MonitoringApiConformance(StoreKind.Sqlite);

public sealed class MonitoringApiOnPostgres() : MonitoringApiConformance(StoreKind.Postgres);
