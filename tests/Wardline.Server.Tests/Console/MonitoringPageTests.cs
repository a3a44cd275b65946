using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Wardline.Monitoring;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Monitoring;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;
using static Microsoft.Playwright.Assertions;
using Account = Wardline.Server.Modules.Access.Identity.Account;
using Task = System.Threading.Tasks.Task;

namespace Wardline.Server.Tests.Console;

/// <summary>
/// The console's monitoring pages in a real browser: the privacy officer's alert queue, an alert's evidence with the
/// user's activity around it, the review (closing asks for the outcome and a note, and is recorded in the ledger), and
/// the per-user and per-patient access views. Alerts are put in through <see cref="AlertStore.RecordFindingsAsync"/>
/// with findings that name real ledger entries, recorded through the ledger's own recorder.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class MonitoringPageTests(ConsoleFixture fx)
{
    [Fact]
    public async Task Privacy_officer_sees_a_new_alert_in_the_queue_and_filters_it_out_by_status()
    {
        var c = await SnoopAsync();
        await fx.CreateAccountAsync(Account.New("pia.queue", "Pia Queue") with { Roles = ["privacy_officer"] });
        var page = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "pia.queue");

        await page.GetByRole(AriaRole.Link, new() { Name = "Alerts", Exact = true }).ClickAsync();

        await Expect(page).ToHaveURLAsync(new Regex("/console/alerts$"));
        var row = page.Locator($".wl-alerts tr[data-alert='{c.AlertId}']");
        await Expect(row.Locator("td[data-column='detection']")).ToContainTextAsync(Catalog.Find("self-access")!.Title);
        await Expect(row.Locator("td[data-column='user']")).ToHaveTextAsync(c.User);
        await Expect(row.Locator("td[data-column='status']")).ToHaveTextAsync("new");
        await Expect(row.Locator("td[data-column='patients']")).ToHaveTextAsync("1");
        await Expect(row.Locator(".wl-sev")).ToHaveTextAsync("high");
        await Expect(page.Locator(".wl-count[data-status='new'] b")).Not.ToHaveTextAsync("0");
        await Expect(page.Locator(".wl-health")).ToContainTextAsync("Streaming detection running");
        await Expect(page.Locator(".wl-health-config")).ToContainTextAsync("(built in)");
        await ConsoleFixture.ShotAsync(page, "51-alerts-queue");

        await page.FillAsync("input[name='user']", c.User);
        await page.SelectOptionAsync("select[name='detection']", "self-access");
        await page.SelectOptionAsync("select[name='status']", "closed-violation");
        await page.GetByRole(AriaRole.Button, new() { Name = "Show alerts" }).ClickAsync();

        await Expect(page).ToHaveURLAsync(new Regex("status=closed-violation"));
        await Expect(page.Locator(".wl-empty")).ToHaveTextAsync("No alerts match these filters.");
        await Expect(row).ToHaveCountAsync(0);
        // The counts are under the same filters, whatever the status: this user's one new alert.
        await Expect(page.Locator(".wl-count[data-status='new'] b")).ToHaveTextAsync("1");

        await page.Locator(".wl-count[data-status='new']").ClickAsync();
        await Expect(row).ToHaveCountAsync(1);
        var bad = await page.GotoAsync("/console/alerts?severity=extreme");
        Assert.Equal(400, bad!.Status);
        await Expect(page.Locator(".wl-error")).ToContainTextAsync("Minimum severity is one of: low, medium, high, critical.");
        bad = await page.GotoAsync("/console/alerts?patient=..%2Fetc");
        Assert.Equal(400, bad!.Status);
        await Expect(page.Locator(".wl-error")).ToContainTextAsync("A patient id is 1 to 64 letters");
        var missing = await page.GotoAsync("/console/alerts/987654321");
        Assert.Equal(200, missing!.Status);
        await Expect(page.Locator(".wl-error")).ToHaveTextAsync("There is no alert 987654321.");
    }

    [Fact]
    public async Task The_detail_shows_the_evidence_the_timeline_and_a_proof_and_closing_needs_an_outcome_and_a_note()
    {
        var c = await SnoopAsync();
        await fx.CreateAccountAsync(Account.New("pia.detail", "Pia Detail") with { Roles = ["privacy_officer"] });
        var page = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "pia.detail");
        await page.GotoAsync($"/console/alerts?user={c.User}");

        await page.Locator($".wl-alerts tr[data-alert='{c.AlertId}'] a.wl-alert-link").ClickAsync();

        await Expect(page).ToHaveURLAsync(new Regex($"/console/alerts/{c.AlertId}$"));
        await Expect(page.Locator(".wl-evidence")).ToHaveTextAsync(Evidence);
        var entry = page.Locator($".wl-entries tr[data-index='{c.Hit}']");
        await Expect(entry.Locator("td[data-column='patient']")).ToHaveTextAsync($"Patient/{c.Patient}");
        await Expect(entry.Locator("td[data-column='action']")).ToHaveTextAsync("Read");
        await Expect(entry.Locator("td[data-column='decision']")).ToContainTextAsync("permitted");
        // The timeline: the alert's entry highlighted among the user's other activity that day, the older one outside the window left out.
        await Expect(page.Locator($".wl-timeline tr[data-index='{c.Hit}']")).ToHaveAttributeAsync("data-hit", "true");
        await Expect(page.Locator($".wl-timeline tr[data-index='{c.Before}']")).ToHaveAttributeAsync("data-hit", "false");
        await Expect(page.Locator($".wl-timeline tr[data-index='{c.Before}'] td[data-column='patient']")).ToHaveTextAsync($"Patient/{c.Other}");
        await Expect(page.Locator($".wl-timeline tr[data-index='{c.LongBefore}']")).ToHaveCountAsync(0);
        await Expect(page.Locator(".wl-history li[data-kind='raised']")).ToHaveCountAsync(1);
        await ConsoleFixture.ShotAsync(page, "52-alert-detail");

        await entry.Locator("a.wl-proof-link").ClickAsync();
        await Expect(page.Locator($".wl-proof[data-index='{c.Hit}']")).ToContainTextAsync("root hash:");
        await Expect(page.Locator($".wl-proof[data-index='{c.Hit}']")).ToContainTextAsync($"Inclusion proof of entry {c.Hit}");

        // Close with an outcome and a blank note: refused (the browser's check passes whitespace; the server's does not), nothing written.
        var before = await UpdatesAsync(c.AlertId);
        await page.CheckAsync("input[name='Close.Outcome'][value='violation']");
        await page.FillAsync("textarea[name='Close.Note']", "   ");
        await page.GetByRole(AriaRole.Button, new() { Name = "Close alert" }).ClickAsync();
        await Expect(page.Locator(".wl-error")).ToContainTextAsync("choose the outcome (violation or legitimate) and write a note");
        await Expect(page.Locator(".wl-alert-status")).ToHaveAttributeAsync("data-status", "new");
        Assert.Equal(before, await UpdatesAsync(c.AlertId));
        Assert.Equal(AlertStatus.New, (await fx.Server.Service<AlertStore>().GetAsync(c.AlertId, CancellationToken.None))!.Alert.Status);

        await page.CheckAsync("input[name='Close.Outcome'][value='violation']");
        await page.FillAsync("textarea[name='Close.Note']", "Confirmed with the department head: no care reason.");
        await page.GetByRole(AriaRole.Button, new() { Name = "Close alert" }).ClickAsync();

        await Expect(page).ToHaveURLAsync(new Regex($"/console/alerts/{c.AlertId}\\?done=closed$"));
        await Expect(page.Locator(".wl-notice")).ToContainTextAsync("recorded in the ledger");
        await Expect(page.Locator(".wl-alert-status")).ToHaveAttributeAsync("data-status", "closed-violation");
        await Expect(page.Locator(".wl-history li[data-kind='status']")).ToContainTextAsync("pia.detail");
        await Expect(page.Locator(".wl-history li[data-kind='status'] .wl-note")).ToContainTextAsync("no care reason");
        Assert.Equal(before + 1, await UpdatesAsync(c.AlertId));
        Assert.Equal(1, await fx.Server.Service<RecordStore>().CountAsync(
            $"SELECT COUNT(*) FROM ledger_entries WHERE type = 'security' AND event = 'AlertUpdated' AND actor = 'pia.detail' AND detail = 'alert {c.AlertId} new -> closed-violation'", CancellationToken.None));
        await ConsoleFixture.ShotAsync(page, "53-alert-closed");
    }

    [Fact]
    public async Task A_change_made_by_someone_else_since_the_page_was_opened_is_reported_and_nothing_is_written()
    {
        var c = await SnoopAsync();
        await fx.CreateAccountAsync(Account.New("sam.stale", "Sam Stale") with { Roles = ["security_officer"] });
        var page = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "sam.stale");
        await page.GotoAsync($"/console/alerts/{c.AlertId}");
        await Expect(page.Locator(".wl-alert-status")).ToHaveAttributeAsync("data-status", "new");
        var changed = await fx.Server.Service<AlertStore>().AssignAsync(c.AlertId, "sam.stale", "someone.else", null, CancellationToken.None);
        Assert.IsType<AlertChange.Done>(changed);
        var before = await UpdatesAsync(c.AlertId);

        await page.GetByRole(AriaRole.Button, new() { Name = "Start review" }).ClickAsync();

        await Expect(page.Locator(".wl-error")).ToContainTextAsync("Someone else changed this alert since you opened it; reload");
        await Expect(page.Locator(".wl-reload")).ToBeVisibleAsync();
        Assert.Equal(before, await UpdatesAsync(c.AlertId));
        Assert.Equal(AlertStatus.New, (await fx.Server.Service<AlertStore>().GetAsync(c.AlertId, CancellationToken.None))!.Alert.Status);

        await page.Locator(".wl-reload").ClickAsync();
        await Expect(page.Locator(".wl-alert-assignee")).ToHaveTextAsync("sam.stale");
        await page.GetByRole(AriaRole.Button, new() { Name = "Start review" }).ClickAsync();
        await Expect(page.Locator(".wl-alert-status")).ToHaveAttributeAsync("data-status", "under-review");

        // The rest of the review: a comment, assignment to the signed-in officer, escalation.
        await page.FillAsync("textarea[name='Comment.Note']", "Asked the ward manager.");
        await page.GetByRole(AriaRole.Button, new() { Name = "Add comment" }).ClickAsync();
        await Expect(page.Locator(".wl-history li[data-kind='comment'] .wl-note")).ToContainTextAsync("Asked the ward manager.");
        await page.FillAsync("input[name='Assign.Assignee']", "");
        await page.GetByRole(AriaRole.Button, new() { Name = "Assign", Exact = true }).ClickAsync();
        await Expect(page.Locator(".wl-alert-assignee")).ToHaveTextAsync("nobody");
        await page.GetByRole(AriaRole.Button, new() { Name = "Assign to me" }).ClickAsync();
        await Expect(page.Locator(".wl-alert-assignee")).ToHaveTextAsync("sam.stale");
        await page.GetByRole(AriaRole.Button, new() { Name = "Escalate to incident" }).ClickAsync();
        await Expect(page.Locator(".wl-alert-status")).ToHaveAttributeAsync("data-status", "escalated");
        Assert.Equal(before + 5, await UpdatesAsync(c.AlertId));
    }

    [Fact]
    public async Task The_per_user_and_per_patient_views_list_the_accesses_and_link_to_each_other()
    {
        var c = await SnoopAsync();
        await fx.CreateAccountAsync(Account.New("pia.views", "Pia Views") with { Roles = ["privacy_officer"] });
        var page = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "pia.views");

        await page.GotoAsync($"/console/monitor/users/{c.User}");

        foreach (var index in new[] { c.Hit, c.Before })
        {
            await Expect(page.Locator($".wl-activity tr[data-index='{index}'] td[data-column='action']")).ToHaveTextAsync("Read");
        }
        // Forty days ago is outside the default period (the last 7 days).
        await Expect(page.Locator($".wl-activity tr[data-index='{c.LongBefore}']")).ToHaveCountAsync(0);
        await Expect(page.Locator($".wl-alerts tr[data-alert='{c.AlertId}']")).ToHaveCountAsync(1);
        await ConsoleFixture.ShotAsync(page, "54-user-accesses");

        await page.Locator($".wl-activity tr[data-index='{c.Hit}'] td[data-column='patient'] a").ClickAsync();

        await Expect(page).ToHaveURLAsync(new Regex($"/console/monitor/patients/{c.Patient}$"));
        var access = page.Locator($".wl-activity tr[data-index='{c.Hit}']");
        await Expect(access.Locator("td[data-column='user']")).ToHaveTextAsync(c.User);
        await Expect(access.Locator("td[data-column='decision']")).ToContainTextAsync("permitted");
        await Expect(page.Locator($".wl-activity tr[data-index='{c.Before}']")).ToHaveCountAsync(0);
        await Expect(page.Locator($".wl-alerts tr[data-alert='{c.AlertId}']")).ToHaveCountAsync(1);
        // Reading who accessed the patient is itself recorded.
        Assert.True(await fx.Server.Service<RecordStore>().CountAsync(
            $"SELECT COUNT(*) FROM ledger_entries WHERE user_name = 'pia.views' AND patient = 'Patient/{c.Patient}'", CancellationToken.None) >= 1);
        await ConsoleFixture.ShotAsync(page, "55-patient-accesses");

        var old = DateTime.UtcNow.Date.AddDays(-40);
        await page.GotoAsync($"/console/monitor/users/{c.User}?from={Day(old.AddDays(-1))}&to={Day(old.AddDays(1))}");
        await Expect(page.Locator(".wl-activity tbody tr")).ToHaveCountAsync(1);
        await Expect(page.Locator($".wl-activity tr[data-index='{c.LongBefore}']")).ToHaveCountAsync(1);
        var bad = await page.GotoAsync($"/console/monitor/patients/{c.Patient}?from=2026-03-02&to=2026-03-01");
        Assert.Equal(400, bad!.Status);
        await Expect(page.Locator(".wl-error")).ToContainTextAsync("The period's start (from) is after its end (to).");
    }

    [Fact]
    public async Task Periods_at_the_edges_of_the_calendar_show_the_page_not_an_error()
    {
        await fx.CreateAccountAsync(Account.New("pia.edges", "Pia Edges") with { Roles = ["privacy_officer"] });
        var page = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "pia.edges");

        // The default start (six days before "to") is cut short at the calendar's first day; its last day ends with the calendar.
        foreach (var (path, period) in new[]
        {
            ("/console/monitor/users/pia.edges?to=0001-01-03", "0001-01-01 to 0001-01-03"),
            ("/console/monitor/patients/p-1?to=0001-01-03", "0001-01-01 to 0001-01-03"),
            ("/console/monitor/users/pia.edges?to=9999-12-31", "9999-12-25 to 9999-12-31"),
            ("/console/monitor/patients/p-1?to=9999-12-31", "9999-12-25 to 9999-12-31"),
            ("/console/alerts?to=9999-12-31", null),
            ("/console/alerts?from=0001-01-01&to=9999-12-31", null),
        })
        {
            var response = await page.GotoAsync(path);

            Assert.True(response!.Status == 200, $"{path}: {response.Status}");
            await Expect(page.Locator(".wl-error")).ToHaveCountAsync(0);
            if (period is not null) await Expect(page.GetByText("Ledger entries, " + period)).ToHaveCountAsync(1);
        }
    }

    [Fact]
    public async Task A_nurse_is_refused_the_monitoring_pages_and_has_no_link_to_them()
    {
        await fx.CreateAccountAsync(Account.New("nia.nurse", "Nia Nurse") with { Roles = ["nurse"], Departments = ["cardiology"] });
        var page = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "nia.nurse");
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Alerts", Exact = true })).ToHaveCountAsync(0);

        foreach (var path in new[] { "/console/alerts", "/console/alerts/1", "/console/monitor/users/nia.nurse", "/console/monitor/patients/p-1" })
        {
            var refused = await page.GotoAsync(path);

            Assert.Equal(403, refused!.Status);
            await Expect(page.Locator(".wl-forbidden")).ToBeVisibleAsync();
            await Expect(page.Locator(".wl-alerts, .wl-activity, .wl-evidence")).ToHaveCountAsync(0);
        }
        await ConsoleFixture.ShotAsync(page, "56-alerts-refused");
    }

    private const string Evidence = "This user opened their own patient record.";

    /// <summary>
    /// A user's reads, recorded through the ledger's own recorder: one of a patient an hour ago (the alert's evidence),
    /// one of another patient two hours ago (in the timeline, not in the alert), and one forty days ago (outside both);
    /// then a self-access finding on the first, recorded as an alert.
    /// </summary>
    private async Task<Case> SnoopAsync()
    {
        var tag = Guid.NewGuid().ToString("N")[..8];
        var (user, patient, other) = ("snoop-" + tag, "pt-" + tag, "pt2-" + tag);
        var now = DateTimeOffset.UtcNow;
        var recorder = fx.Server.Service<IAccessRecorder>();
        foreach (var (at, p) in new[] { (now.AddDays(-40), other), (now.AddHours(-2), other), (now.AddHours(-1), patient) })
        {
            await recorder.RecordAsync(
            [
                new AccessRecord(at, user, new FhirInteraction(FhirAction.Read, "Patient", p), "decision",
                    new AccessDecision(true, "tier1-full-access", "A tier 1 clinician may read clinical records without sensitivity labels."), null, "Patient/" + p,
                    "mon-" + Guid.NewGuid().ToString("N")[..8], "127.0.0.1") { Patient = "Patient/" + p, Purpose = "TREAT", Roles = ["physician"] },
            ], CancellationToken.None);
        }
        var store = fx.Server.Service<RecordStore>();
        async Task<long> IndexAsync(string p, string order) =>
            await store.CountAsync($"SELECT idx FROM ledger_entries WHERE user_name = '{user}' AND patient = 'Patient/{p}' ORDER BY at {order} LIMIT 1", CancellationToken.None);
        var (hit, before, longBefore) = (await IndexAsync(patient, "DESC"), await IndexAsync(other, "DESC"), await IndexAsync(other, "ASC"));
        var finding = new Finding("self-access", Severity.High, user, patient, now.AddHours(-1).ToUnixTimeMilliseconds(), [hit], Evidence);
        var alerts = fx.Server.Service<AlertStore>();
        var recorded = await alerts.RecordFindingsAsync([finding], MonitorConfig.Default, "test", null, CancellationToken.None);
        return new Case(user, patient, other, Assert.Single(recorded.NewAlertIds), hit, before, longBefore);
    }

    /// <summary>The AlertUpdated entries the ledger holds for one alert.</summary>
    private async Task<long> UpdatesAsync(long alertId) => await fx.Server.Service<RecordStore>().CountAsync(
        $"SELECT COUNT(*) FROM ledger_entries WHERE type = 'security' AND event = 'AlertUpdated' AND detail LIKE 'alert {alertId} %'", CancellationToken.None);

    private static string Day(DateTime d) => d.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

    private sealed record Case(string User, string Patient, string Other, long AlertId, long Hit, long Before, long LongBefore);
}
