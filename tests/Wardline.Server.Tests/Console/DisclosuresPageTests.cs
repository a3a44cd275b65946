using System.Net;
using System.Net.Http.Headers;
using System.Text.RegularExpressions;
using Hl7.Fhir.Model;
using Microsoft.Playwright;
using Wardline.Server.Modules.Access;
using Wardline.Server.Pipeline;
using Wardline.Server.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;
using Account = Wardline.Server.Modules.Access.Identity.Account;
using Task = System.Threading.Tasks.Task;

namespace Wardline.Server.Tests.Console;

/// <summary>
/// The accounting of disclosures (ONC 170.315(d)(3)) in a real browser: a privacy officer sees who read a
/// patient's record, sorts by every column with plain links and narrows the period with a GET form.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class DisclosuresPageTests(ConsoleFixture fx)
{
    private static readonly string[] Columns = ["time", "user", "roles", "application", "action", "resource", "purpose", "permitted", "reason"];

    [Fact]
    public async Task Privacy_officer_sees_a_clinicians_read_sorts_by_every_column_and_narrows_the_period()
    {
        var patient = "disc-" + Guid.NewGuid().ToString("N")[..8];
        await fx.ImportAsync(new Patient { Id = patient, Name = [new HumanName { Family = "Disclosed", Given = ["Dana"] }] });
        await fx.CreateAccountAsync(Account.New("dr.disclose", "Dr Disclose") with { Roles = ["physician"], Tier = 1, Departments = ["cardiology"] });
        await fx.CreateAccountAsync(Account.New("nell.disclose", "Nell Disclose") with { Roles = ["nurse"], Departments = ["oncology"] });
        await fx.CreateAccountAsync(Account.New("pat.privacy", "Pat Privacy") with { Roles = ["privacy_officer"] });

        // A clinician reads the record through the FHIR API; a nurse without a care relationship is refused.
        Assert.Equal(HttpStatusCode.OK, await ReadAsync("dr.disclose", $"Patient/{patient}"));
        Assert.Equal(HttpStatusCode.OK, await ReadAsync("dr.disclose", $"Patient/{patient}", purpose: "TREAT"));
        Assert.NotEqual(HttpStatusCode.OK, await ReadAsync("nell.disclose", $"Patient/{patient}"));
        // Forty days ago, through another application: recorded through the ledger's own recorder with that time.
        await fx.Server.Service<IAccessRecorder>().RecordAsync(
        [
            new AccessRecord(DateTimeOffset.UtcNow.AddDays(-40), "dr.disclose", new FhirInteraction(FhirAction.Search, "Observation", null), "decision",
                new AccessDecision(true, "tier1-full-access", "A tier 1 clinician may read clinical records without sensitivity labels."), null, null,
                "old-" + Guid.NewGuid().ToString("N")[..8], "127.0.0.1")
            {
                Patient = "Patient/" + patient, Purpose = "HOPERAT", Roles = ["physician"], Departments = ["cardiology"], Client = "bedside-app",
            },
        ], CancellationToken.None);

        var page = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "pat.privacy");
        await page.GetByRole(AriaRole.Link, new() { Name = "Disclosures" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex("/console/disclosures$"));
        await page.FillAsync("input[name='patient']", patient);
        await page.GetByRole(AriaRole.Button, new() { Name = "Show disclosures" }).ClickAsync();

        var read = page.Locator(".wl-disclosures tbody tr", new() { HasText = "dr.disclose" }).Filter(new() { HasText = $"Patient/{patient}" });
        await Expect(read.First).ToContainTextAsync("physician");
        await Expect(read.First.Locator("td[data-column='action']")).ToHaveTextAsync("Read");
        await Expect(read.First.Locator("td[data-column='permitted']")).ToHaveTextAsync("permitted");
        await Expect(page.Locator(".wl-disclosures tbody tr", new() { HasText = "nell.disclose" }).First.Locator("td[data-column='permitted']")).ToHaveTextAsync("refused");
        await Expect(page.Locator(".wl-disclosures tbody tr", new() { HasText = "bedside-app" })).ToHaveCountAsync(1);
        await ConsoleFixture.ShotAsync(page, "31-disclosures");

        // The export: the same list as CSV, downloaded from the page without any script.
        var download = await page.RunAndWaitForDownloadAsync(() => page.GetByRole(AriaRole.Link, new() { Name = "Export as CSV" }).ClickAsync());
        Assert.Equal($"disclosures-{patient}.csv", download.SuggestedFilename);
        var csv = Rfc4180.Parse(await File.ReadAllTextAsync((await download.PathAsync())!));
        Assert.Equal(["index", "time", "user", "roles", "application", "action", "resource", "purpose", "permitted", "rule", "reason"], csv[0]);
        Assert.Equal(await page.Locator(".wl-disclosures tbody tr").CountAsync(), csv.Count - 1);
        Assert.Contains(csv, row => row[2] == "dr.disclose" && row[5] == "Read" && row[6] == $"Patient/{patient}" && row[8] == "true");
        Assert.Contains(csv, row => row[2] == "nell.disclose" && row[8] == "false");

        // The rows seen first; each page view adds the officer's own reading of the trail, which is left out of the comparison.
        var seen = (await IndexesAsync(page)).ToHashSet();
        foreach (var column in Columns)
        {
            await page.Locator($"th[data-column='{column}'] a").ClickAsync();
            await Expect(page).ToHaveURLAsync(new Regex($"sort={column}&dir=asc$"));
            await Expect(page.Locator($"th[data-column='{column}']")).ToHaveAttributeAsync("aria-sort", "ascending");
            var ascending = await RowsAsync(page, column, seen);
            var texts = ascending.Select(r => r.Text).ToList();
            Assert.True(texts.Distinct().Count() >= 2, $"{column}: every value is the same, so sorting shows nothing");
            Assert.Equal(texts.Order(StringComparer.Ordinal), texts);

            await page.Locator($"th[data-column='{column}'] a").ClickAsync();
            await Expect(page).ToHaveURLAsync(new Regex($"sort={column}&dir=desc$"));
            var descending = await RowsAsync(page, column, seen);
            Assert.Equal(ascending.Select(r => r.Index).Reverse(), descending.Select(r => r.Index));
        }
        await ConsoleFixture.ShotAsync(page, "32-disclosures-sorted");

        // The period: the last week leaves out the entry of forty days ago; a week around it shows only that one.
        var today = DateTime.UtcNow.Date;
        await page.FillAsync("input[name='from']", today.AddDays(-7).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
        await page.FillAsync("input[name='to']", today.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
        await page.GetByRole(AriaRole.Button, new() { Name = "Show disclosures" }).ClickAsync();
        await Expect(page.Locator(".wl-summary")).ToContainTextAsync(today.AddDays(-7).ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture));
        await Expect(page.Locator(".wl-disclosures tbody tr", new() { HasText = "bedside-app" })).ToHaveCountAsync(0);
        await Expect(read.First).ToBeVisibleAsync();
        await ConsoleFixture.ShotAsync(page, "33-disclosures-last-week");

        // Sorting keeps the period.
        await page.Locator("th[data-column='user'] a").ClickAsync();
        await Expect(page).ToHaveURLAsync(new Regex("from=.*&to=.*&sort=user&dir=asc$"));
        await Expect(page.Locator(".wl-disclosures tbody tr", new() { HasText = "bedside-app" })).ToHaveCountAsync(0);

        await page.GotoAsync($"/console/disclosures?patient={patient}&from={Day(today.AddDays(-43))}&to={Day(today.AddDays(-37))}");
        await Expect(page.Locator(".wl-disclosures tbody tr")).ToHaveCountAsync(1);
        await Expect(page.Locator(".wl-disclosures tbody tr")).ToContainTextAsync("bedside-app");
        await Expect(page.Locator(".wl-disclosures tbody tr td[data-column='purpose']")).ToHaveTextAsync("HOPERAT");
    }

    [Fact]
    public async Task A_long_trail_shows_the_first_2000_in_the_chosen_order_and_says_so()
    {
        var patient = "long-" + Guid.NewGuid().ToString("N")[..8];
        var start = DateTimeOffset.UtcNow.AddHours(-3);
        await fx.Server.Service<IAccessRecorder>().RecordAsync(
        [
            .. Enumerable.Range(0, 2100).Select(i => new AccessRecord(start.AddSeconds(i), $"user{i:D4}", new FhirInteraction(FhirAction.Read, "Patient", patient), "decision",
                new AccessDecision(true, "tier1-full-access", "A tier 1 clinician may read clinical records without sensitivity labels."), null, null,
                "long-" + i, "127.0.0.1") { Patient = "Patient/" + patient, Purpose = "TREAT", Roles = ["physician"] }),
        ], CancellationToken.None);
        await fx.CreateAccountAsync(Account.New("lou.privacy", "Lou Privacy") with { Roles = ["privacy_officer"] });
        var page = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "lou.privacy");

        await page.GotoAsync($"/console/disclosures?patient={patient}&sort=user&dir=desc");

        await Expect(page.Locator(".wl-summary")).ToContainTextAsync("2100 entries");
        await Expect(page.Locator(".wl-truncated")).ToContainTextAsync("The first 2000 in this order are shown");
        await Expect(page.Locator(".wl-disclosures tbody tr")).ToHaveCountAsync(2000);
        await Expect(page.Locator(".wl-disclosures tbody tr").First.Locator("td[data-column='user']")).ToHaveTextAsync("user2099");
        await Expect(page.Locator(".wl-disclosures tbody tr").Last.Locator("td[data-column='user']")).ToHaveTextAsync("user0100");
    }

    [Fact]
    public async Task Bad_input_gets_a_clear_message_and_400_never_an_error_page()
    {
        await fx.CreateAccountAsync(Account.New("pam.privacy", "Pam Privacy") with { Roles = ["privacy_officer"] });
        var page = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "pam.privacy");
        (string Query, string Message)[] cases =
        [
            ("patient=..%2Fetc&from=&to=", "A patient id is 1 to 64 letters"),
            ("patient=p-1&from=2026-02-30&to=", "Dates are given as yyyy-mm-dd"),
            ("patient=p-1&from=yesterday&to=", "Dates are given as yyyy-mm-dd"),
            ("patient=p-1&from=2026-03-01&to=31%2F03%2F2026", "Dates are given as yyyy-mm-dd"),
            ("from=2026-03-01", "Give the patient id"),
            ("patient=p-1&from=2026-03-02&to=2026-03-01", "The period's start (from) is after its end (to)."),
        ];

        foreach (var (query, message) in cases)
        {
            var response = await page.GotoAsync("/console/disclosures?" + query);

            Assert.Equal(400, response!.Status);
            await Expect(page.Locator(".wl-error")).ToContainTextAsync(message);
            await Expect(page.Locator(".wl-disclosures")).ToHaveCountAsync(0);
        }
        await ConsoleFixture.ShotAsync(page, "34-disclosures-bad-period");
    }

    [Fact]
    public async Task A_period_ending_on_the_calendars_last_day_shows_the_page_not_an_error()
    {
        await fx.CreateAccountAsync(Account.New("pat.edges", "Pat Edges") with { Roles = ["privacy_officer"] });
        var page = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "pat.edges");

        var response = await page.GotoAsync("/console/disclosures?patient=p-edge&from=0001-01-01&to=9999-12-31");

        Assert.Equal(200, response!.Status);
        await Expect(page.Locator(".wl-error")).ToHaveCountAsync(0);
    }

    [Fact]
    public async Task A_security_officer_reads_the_page_as_the_access_log_operation_lets_them()
    {
        // The same roles on both surfaces: $access-log and AuditEvent search admit privacy and security officers.
        await fx.ImportAsync(new Patient { Id = "p-security", Name = [new HumanName { Family = "Audited", Given = ["Ari"] }] });
        await fx.CreateAccountAsync(Account.New("sam.security", "Sam Security") with { Roles = ["security_officer"] });
        var page = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "sam.security");
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Disclosures" })).ToHaveCountAsync(1);

        var response = await page.GotoAsync("/console/disclosures?patient=p-security");

        Assert.Equal(200, response!.Status);
        await Expect(page.Locator(".wl-summary")).ToContainTextAsync("for Patient/p-security");
        await Expect(page.Locator(".wl-forbidden")).ToHaveCountAsync(0);
        Assert.Equal(HttpStatusCode.OK, await ReadAsync("sam.security", "Patient/p-security/$access-log"));
    }

    [Fact]
    public async Task A_nurse_is_refused_the_disclosures_page_and_has_no_link_to_it()
    {
        await fx.CreateAccountAsync(Account.New("nat.nurse", "Nat Nurse") with { Roles = ["nurse"], Departments = ["cardiology"] });
        var page = await fx.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "nat.nurse");
        await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Disclosures" })).ToHaveCountAsync(0);

        var refused = await page.GotoAsync("/console/disclosures?patient=anyone");

        Assert.Equal(403, refused!.Status);
        await Expect(page.Locator(".wl-forbidden")).ToBeVisibleAsync();
        await Expect(page.Locator(".wl-disclosures")).ToHaveCountAsync(0);
        await ConsoleFixture.ShotAsync(page, "35-disclosures-refused");
    }

    private async Task<HttpStatusCode> ReadAsync(string user, string path, string? purpose = null)
    {
        var token = await fx.Server.Service<AccessTokens>().IssueAsync(user, TimeSpan.FromMinutes(10), CancellationToken.None)
            ?? throw new InvalidOperationException("no token for " + user);
        using var http = new HttpClient { BaseAddress = fx.Server.BaseUri };
        using var request = new HttpRequestMessage(HttpMethod.Get, path);
        request.Headers.Authorization = new AuthenticationHeaderValue("Bearer", token);
        if (purpose is not null) request.Headers.Add(AccessSubjects.PurposeHeader, purpose);
        using var response = await http.SendAsync(request);
        return response.StatusCode;
    }

    private static async Task<List<long>> IndexesAsync(IPage page) =>
        [.. (await page.Locator(".wl-disclosures tbody tr").EvaluateAllAsync<string[]>("rows => rows.map(r => r.dataset.index)")).Select(long.Parse)];

    /// <summary>The rows in page order that are among <paramref name="seen"/>, with the text of one column.</summary>
    private static async Task<List<(long Index, string Text)>> RowsAsync(IPage page, string column, HashSet<long> seen)
    {
        var indexes = await IndexesAsync(page);
        var texts = await page.Locator($".wl-disclosures tbody td[data-column='{column}']").AllInnerTextsAsync();
        Assert.Equal(indexes.Count, texts.Count);
        // A missing value shows as a dash and sorts first.
        return [.. indexes.Zip(texts, (i, t) => (i, t.Trim() is "—" or "(not signed in)" ? "" : t.Trim())).Where(r => seen.Contains(r.i))];
    }

    private static string Day(DateTime d) => d.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture);
}
