using System.Text.RegularExpressions;
using Hl7.Fhir.Model;
using Microsoft.Playwright;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;
using Account = Wardline.Server.Modules.Access.Identity.Account;
using Task = System.Threading.Tasks.Task;

namespace Wardline.Server.Tests.Console;

/// <summary>
/// A server of its own whose backups go to a real folder, with continuous backups off (IntervalSeconds 0) so that
/// nothing runs unless a test starts it. The console collection's browser drives it.
/// </summary>
public sealed class BackupPageFixture : IAsyncLifetime
{
    public TestStore Store { get; private set; } = null!;

    public TestServer Server { get; private set; } = null!;

    /// <summary>The backup target folder.</summary>
    public string Target { get; private set; } = null!;

    public string Origin => Server.BaseUri.GetLeftPart(UriPartial.Authority);

    public async Task InitializeAsync()
    {
        Store = await TestStore.CreateAsync(StoreKind.Sqlite);
        var policy = Path.Combine(Store.Folder, "hospital-policy.yaml");
        await File.WriteAllTextAsync(policy, PolicyHolder.BuiltInText());
        Store.Options.Access.PolicyPath = policy;
        Target = Path.Combine(Store.Folder, "backup-target");
        Store.Options.Backup.Target = "file://" + Target;
        Store.Options.Backup.IntervalSeconds = 0;
        Store.Options.Backup.DrillIntervalHours = 0;
        Store.Options.Backup.DrillFolder = Directory.CreateDirectory(Path.Combine(Store.Folder, "drills")).FullName;
        Server = await TestServer.StartAsync(Store.Options);
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Store.DisposeAsync();
    }

    internal async Task CreateAccountAsync(Account account)
    {
        var result = await Server.Service<AccountService>().CreateAsync(account, ConsoleFixture.Password, "test", CancellationToken.None);
        Assert.IsType<AccountResult.Done>(result);
    }

    /// <summary>A patient, so that the next backup has something new to ship.</summary>
    public async Task ImportPatientAsync()
    {
        var id = "bk-" + Guid.NewGuid().ToString("N")[..8];
        var result = await Server.Service<RecordImporter>().ImportResourceAsync(
            new Patient { Id = id, Name = [new HumanName { Family = "Backed", Given = ["Bea"] }] }, "console-test", CancellationToken.None);
        Assert.Empty(result.Problems);
    }

    internal async Task<BackupRunResult> BackUpAsync(string trigger)
    {
        var result = await Server.Service<BackupService>().BackupNowAsync(false, trigger, CancellationToken.None);
        Assert.Equal("completed", result.Status);
        return result;
    }
}

/// <summary>
/// The console's backup page in a real browser: the age of the last good backup, where backups go and whether they are
/// immutable, the history of runs and drills, and "Back up now" and "Run restore drill" attributed to the signed-in user.
/// </summary>
[Collection(ConsoleCollection.Name)]
public sealed class BackupPageTests(ConsoleFixture console, BackupPageFixture fx) : IClassFixture<BackupPageFixture>
{
    /// <summary>Backups and drills run on the server while the page reloads itself; a busy shared machine gets time.</summary>
    private static readonly LocatorAssertionsToContainTextOptions Patiently = new() { Timeout = 60_000 };

    [Fact]
    public async Task Administrator_sees_the_age_of_the_last_good_backup_its_target_and_the_history()
    {
        await fx.ImportPatientAsync();
        var run = await fx.BackUpAsync("test:age");
        await fx.CreateAccountAsync(Account.New("ada.backup", "Ada Backup") with { Roles = ["administrator"] });
        var page = await NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "ada.backup");

        await page.GetByRole(AriaRole.Link, new() { Name = "Backup", Exact = true }).ClickAsync();

        await Expect(page).ToHaveURLAsync(new Regex("/console/backup$"));
        var age = page.Locator(".wl-backup-age");
        await Expect(age).ToHaveTextAsync(new Regex(@"^\d+ (seconds?|min \d+ s) ago$"));
        await Expect(age).ToHaveAttributeAsync("data-healthy", "true");
        await Expect(age).ToHaveCSSAsync("color", "rgb(27, 94, 32)");
        await Expect(page.Locator(".wl-backup-state")).ToContainTextAsync("Healthy");
        await Expect(page.Locator(".wl-backup-state")).ToContainTextAsync(run.RunId);
        await Expect(page.Locator(".wl-backup-target")).ToHaveTextAsync("file://" + fx.Target);
        await Expect(page.Locator(".wl-backup-immutability")).ToContainTextAsync("This target cannot make backups immutable (folder)");
        await Expect(page.Locator(".wl-backup-schedule")).ToContainTextAsync("Continuous backups are off");
        await Expect(page.Locator(".wl-backup-last-error")).ToHaveCountAsync(0);

        var row = page.Locator($".wl-backup-runs tr[data-run='{run.RunId}']");
        await Expect(row.Locator("td[data-column='status']")).ToHaveTextAsync("completed");
        await Expect(row.Locator("td[data-column='trigger']")).ToHaveTextAsync("test:age");
        await Expect(row.Locator("td[data-column='kind']")).ToHaveTextAsync(run.Kind);
        await Expect(row.Locator("td[data-column='entries']")).ToHaveTextAsync(new Regex("→ " + run.Manifest!.LedgerSize.ToString("N0", System.Globalization.CultureInfo.InvariantCulture) + "$"));
        await Expect(row.Locator("td[data-column='bytes']")).ToHaveAttributeAsync("data-bytes", run.StoredBytes.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Expect(row.Locator("td[data-column='reused']")).ToHaveTextAsync(run.Reused.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await ConsoleFixture.ShotAsync(page, "41-backup");

        // An address with an outcome id the server does not know (expired, or made up) is simply the page.
        var unknown = await page.GotoAsync("/console/backup?op=not-a-known-operation");
        Assert.Equal(200, unknown!.Status);
        await Expect(page.Locator(".wl-backup-outcome")).ToHaveCountAsync(0);
        await Expect(page.Locator(".wl-backup-age")).ToBeVisibleAsync();
    }

    [Fact]
    public async Task A_clinician_and_a_privacy_officer_are_refused_and_see_no_link()
    {
        await fx.CreateAccountAsync(Account.New("dr.nobackup", "Dr No Backup") with { Roles = ["physician"], Tier = 1, Departments = ["cardiology"] });
        await fx.CreateAccountAsync(Account.New("pia.nobackup", "Pia No Backup") with { Roles = ["privacy_officer"] });
        foreach (var name in new[] { "dr.nobackup", "pia.nobackup" })
        {
            var page = await NewPageAsync();
            await ConsoleFixture.SignInAndEnrolAsync(page, name);
            await Expect(page.GetByRole(AriaRole.Link, new() { Name = "Backup", Exact = true })).ToHaveCountAsync(0);

            var refused = await page.GotoAsync("/console/backup");

            Assert.Equal(403, refused!.Status);
            await Expect(page.Locator(".wl-forbidden")).ToBeVisibleAsync();
            await Expect(page.Locator(".wl-backup-age")).ToHaveCountAsync(0);
            Assert.DoesNotContain(fx.Target, await page.ContentAsync(), StringComparison.Ordinal);
            await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Back up now" })).ToHaveCountAsync(0);
            if (name == "dr.nobackup") await ConsoleFixture.ShotAsync(page, "42-backup-refused");
        }
    }

    [Fact]
    public async Task Back_up_now_adds_a_completed_run_attributed_to_the_signed_in_user()
    {
        await fx.CreateAccountAsync(Account.New("bo.backup", "Bo Backup") with { Roles = ["administrator"] });
        var page = await NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "bo.backup");
        await fx.ImportPatientAsync();
        await page.GotoAsync("/console/backup");

        await page.GetByRole(AriaRole.Button, new() { Name = "Back up now" }).ClickAsync();

        await Expect(page).ToHaveURLAsync(new Regex(@"/console/backup\?op=[0-9a-f]{32}$"));
        var outcome = page.Locator(".wl-backup-outcome");
        await Expect(outcome).ToContainTextAsync("completed", Patiently);
        await Expect(outcome).ToContainTextAsync("objects stored");
        var mine = page.Locator(".wl-backup-runs tr[data-trigger='console:bo.backup']");
        await Expect(mine).ToHaveCountAsync(1);
        await Expect(mine.Locator("td[data-column='status']")).ToHaveTextAsync("completed");
        await Expect(page.Locator(".wl-backup-runs tbody tr").First).ToHaveAttributeAsync("data-trigger", "console:bo.backup");
        await Expect(page.Locator(".wl-backup-age")).ToHaveAttributeAsync("data-healthy", "true");
        await Expect(page.Locator(".wl-backup-progress")).ToHaveCountAsync(0);
        await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Back up now" })).ToBeEnabledAsync();
        await ConsoleFixture.ShotAsync(page, "43-backup-now");

        // The server's own record agrees, and reloading the outcome's address does not start another run.
        var status = await fx.Server.Service<BackupStatus>().ReadAsync(100, CancellationToken.None);
        var run = Assert.Single(status.History, r => r.Trigger == "console:bo.backup");
        Assert.Equal("completed", run.Status);
        Assert.Contains(run.Id, await outcome.InnerTextAsync(), StringComparison.Ordinal);
        await page.ReloadAsync();
        await Expect(page.Locator(".wl-backup-outcome")).ToContainTextAsync(run.Id);
        Assert.Single((await fx.Server.Service<BackupStatus>().ReadAsync(100, CancellationToken.None)).History, r => r.Trigger == "console:bo.backup");
    }

    [Fact]
    public async Task Run_restore_drill_shows_a_passed_drill_with_its_RTO_and_RPO()
    {
        await fx.ImportPatientAsync();
        await fx.BackUpAsync("test:drill");
        await fx.CreateAccountAsync(Account.New("sam.security", "Sam Security") with { Roles = ["security_officer"] });
        var page = await NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "sam.security");
        await page.GetByRole(AriaRole.Link, new() { Name = "Backup", Exact = true }).ClickAsync();
        var before = await page.Locator(".wl-backup-drills tbody tr").CountAsync();

        await page.GetByRole(AriaRole.Button, new() { Name = "Run restore drill" }).ClickAsync();

        var outcome = page.Locator(".wl-backup-outcome");
        await Expect(outcome).ToContainTextAsync("passed", Patiently);
        await Expect(outcome).ToContainTextAsync("restored and proven unaltered");
        await Expect(outcome).ToContainTextAsync(new Regex(@"RTO \d+(\.\d)? (ms|s), RPO \d+(\.\d)? (ms|s)"));
        await Expect(page.Locator(".wl-backup-drills tbody tr")).ToHaveCountAsync(before + 1);
        var drill = page.Locator(".wl-backup-drills tbody tr").First;
        await Expect(drill).ToHaveAttributeAsync("data-status", "passed");
        await Expect(drill.Locator("td[data-column='status']")).ToHaveTextAsync("passed");
        await Expect(drill.Locator("td[data-column='rto']")).ToHaveTextAsync(new Regex(@"^\d+(\.\d)? (ms|s)$"));
        await Expect(drill.Locator("td[data-column='rpo']")).ToHaveTextAsync(new Regex(@"^\d+(\.\d)? (ms|s)$"));
        await Expect(drill.Locator("td[data-column='problems']")).ToHaveTextAsync("none");
        await ConsoleFixture.ShotAsync(page, "44-backup-drill");

        var recorded = (await fx.Server.Service<BackupStatus>().DrillsAsync(1, CancellationToken.None)).Single();
        Assert.Equal("passed", recorded.Status);
        Assert.True(recorded.LedgerSize > 0 && recorded.Versions > 0, $"the drill verified {recorded.LedgerSize} entries and {recorded.Versions} versions");
        await Expect(drill).ToHaveAttributeAsync("data-drill", recorded.Id);
        await Expect(drill.Locator("td[data-column='rto']")).ToHaveAttributeAsync("data-ms", recorded.RtoMs.ToString(System.Globalization.CultureInfo.InvariantCulture));
        await Expect(drill.Locator("td[data-column='entries']")).ToHaveTextAsync(recorded.LedgerSize.ToString("N0", System.Globalization.CultureInfo.InvariantCulture));
    }

    [Fact]
    public async Task A_running_backup_shows_its_progress_and_the_page_turns_to_the_outcome_by_itself()
    {
        await fx.CreateAccountAsync(Account.New("pip.progress", "Pip Progress") with { Roles = ["administrator"] });
        var page = await NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "pip.progress");
        await fx.ImportPatientAsync();
        await page.GotoAsync("/console/backup");

        // The store's write gate, held: the run starts and waits to record itself, as a backup waits on a busy store.
        var gate = await fx.Server.Service<SqlDialect>().EnterWriteAsync(CancellationToken.None);
        try
        {
            await page.GetByRole(AriaRole.Button, new() { Name = "Back up now" }).ClickAsync();

            var progress = page.Locator(".wl-backup-progress");
            await Expect(progress).ToHaveAttributeAsync("data-activity", "backup");
            await Expect(progress).ToContainTextAsync("Backup in progress");
            await Expect(progress.Locator("progress")).ToBeVisibleAsync();
            await Expect(page.Locator("meta[http-equiv='refresh']")).ToHaveAttributeAsync("content", new Regex(@"^1;url=/console/backup\?op=[0-9a-f]{32}$"));
            await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Back up now" })).ToBeDisabledAsync();
            await Expect(page.GetByRole(AriaRole.Button, new() { Name = "Run restore drill" })).ToBeDisabledAsync();
            await ConsoleFixture.ShotAsync(page, "45-backup-progress");
            Assert.Equal("backup", fx.Server.Service<BackupService>().Running);
        }
        finally
        {
            await gate.DisposeAsync();
        }

        // No click: the page reloads itself each second until the outcome is known, then stops.
        await Expect(page.Locator(".wl-backup-outcome")).ToContainTextAsync("completed", Patiently);
        await Expect(page.Locator(".wl-backup-progress")).ToHaveCountAsync(0);
        await Expect(page.Locator("meta[http-equiv='refresh']")).ToHaveCountAsync(0);
        await Expect(page.Locator(".wl-backup-runs tbody tr").First).ToHaveAttributeAsync("data-trigger", "console:pip.progress");
    }

    [Fact]
    public async Task A_store_never_backed_up_is_shown_in_red_and_a_failing_target_names_its_error()
    {
        // A server of its own whose target cannot be created: its parent is a file.
        await using var store = await TestStore.CreateAsync(StoreKind.Sqlite);
        var policy = Path.Combine(store.Folder, "hospital-policy.yaml");
        await File.WriteAllTextAsync(policy, PolicyHolder.BuiltInText());
        store.Options.Access.PolicyPath = policy;
        var blocker = Path.Combine(store.Folder, "a-file");
        await File.WriteAllTextAsync(blocker, "not a folder");
        store.Options.Backup.Target = "file://" + Path.Combine(blocker, "target");
        store.Options.Backup.IntervalSeconds = 0;
        store.Options.Backup.DrillIntervalHours = 0;
        await using var server = await TestServer.StartAsync(store.Options);
        Assert.IsType<AccountResult.Done>(await server.Service<AccountService>().CreateAsync(
            Account.New("fay.failing", "Fay Failing") with { Roles = ["administrator"] }, ConsoleFixture.Password, "test", CancellationToken.None));
        var context = await console.Browser.NewContextAsync(new() { BaseURL = server.BaseUri.GetLeftPart(UriPartial.Authority) });
        var page = await context.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "fay.failing");
        await page.GotoAsync("/console/backup");

        var age = page.Locator(".wl-backup-age");
        await Expect(age).ToHaveTextAsync("Never");
        await Expect(age).ToHaveAttributeAsync("data-healthy", "false");
        await Expect(age).ToHaveCSSAsync("color", "rgb(183, 28, 28)");
        await Expect(page.Locator(".wl-backup-state")).ToContainTextAsync("Never backed up");
        await Expect(page.Locator(".wl-backup-runs")).ToHaveCountAsync(0);
        await Expect(page.Locator(".wl-backup-drills")).ToHaveCountAsync(0);

        await page.GetByRole(AriaRole.Button, new() { Name = "Back up now" }).ClickAsync();

        var outcome = page.Locator(".wl-backup-outcome");
        await Expect(outcome).ToContainTextAsync("failed", Patiently);
        await Expect(outcome).ToHaveClassAsync(new Regex("wl-error"));
        await Expect(page.Locator(".wl-backup-last-error")).ToContainTextAsync("by console:fay.failing) failed: ");
        await Expect(page.Locator(".wl-backup-last-error")).ToContainTextAsync(Path.Combine(blocker, "target"));
        var row = page.Locator(".wl-backup-runs tbody tr").First;
        await Expect(row).ToHaveAttributeAsync("data-status", "failed");
        await Expect(row).ToHaveAttributeAsync("data-trigger", "console:fay.failing");
        await Expect(age).ToHaveTextAsync("Never");
        Assert.DoesNotContain("..", await page.Locator(".wl-backup-last-error").InnerTextAsync(), StringComparison.Ordinal);
        await ConsoleFixture.ShotAsync(page, "46-backup-failing");

        // A drill with nothing to restore fails and says why, and is listed as failed.
        await page.GetByRole(AriaRole.Button, new() { Name = "Run restore drill" }).ClickAsync();
        await Expect(outcome).ToContainTextAsync("Restore drill", Patiently);
        await Expect(outcome).ToContainTextAsync("failed");
        await Expect(page.Locator(".wl-backup-drills tbody tr").First).ToHaveAttributeAsync("data-status", "failed");
        await Expect(page.Locator(".wl-backup-drills tbody tr").First.Locator("td[data-column='problems'] li")).Not.ToHaveCountAsync(0);
        Assert.DoesNotContain("..", await outcome.InnerTextAsync(), StringComparison.Ordinal);
        await ConsoleFixture.ShotAsync(page, "47-backup-drill-failed");
        await context.CloseAsync();
    }

    private async Task<IPage> NewPageAsync()
    {
        var context = await console.Browser.NewContextAsync(new() { BaseURL = fx.Origin });
        return await context.NewPageAsync();
    }
}
