using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;
using Microsoft.Playwright;
using Wardline.Monitoring;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Monitoring;
using Wardline.Server.Modules.Monitoring.Notifications;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Monitoring.Notifications;
using static Microsoft.Playwright.Assertions;
using Account = Wardline.Server.Modules.Access.Identity.Account;
using Task = System.Threading.Tasks.Task;

namespace Wardline.Server.Tests.Console;

/// <summary>
/// A server of its own whose one notification channel is a webhook on a port nobody listens on, with one attempt
/// allowed: every notification fails at once, as when the SIEM or mail relay is down. The console collection's browser drives it.
/// </summary>
public sealed class MonitoringNotificationsFixture : IAsyncLifetime
{
    internal TestStore Store { get; private set; } = null!;

    internal TestServerLite Server { get; private set; } = null!;

    public string Origin => Server.BaseUri.GetLeftPart(UriPartial.Authority);

    public async Task InitializeAsync()
    {
        Store = await TestStore.CreateAsync(StoreKind.Sqlite);
        var policy = Path.Combine(Store.Folder, "hospital-policy.yaml");
        await File.WriteAllTextAsync(policy, PolicyHolder.BuiltInText());
        Store.Options.Access.PolicyPath = policy;
        Store.Options.Monitoring.Notify.Webhooks.Add($"http://127.0.0.1:{ClosedPort()}/siem");
        Store.Options.Monitoring.Notify.WebhookSecret = "a-shared-secret-of-the-test-siem";
        Store.Options.Monitoring.Notify.MinSeverity = "low";
        Store.Options.Monitoring.Notify.MaxAttempts = 1;
        Store.Options.Monitoring.Notify.RetrySeconds = 0.1;
        Server = await NotifyTestKit.StartAsync(Store.Options);
        // The notifier's first round puts its cursor at the newest alert (history is not announced); alerts after it are new.
        var store = Server.Service<RecordStore>();
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while (await store.CountAsync("SELECT COUNT(*) FROM monitor_state WHERE name = 'notify'", CancellationToken.None) == 0)
        {
            Assert.True(DateTime.UtcNow < deadline, "the notifier never started its cursor");
            await Task.Delay(100);
        }
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Store.DisposeAsync();
    }

    /// <summary>A loopback port that was free a moment ago and that nothing listens on.</summary>
    private static int ClosedPort()
    {
        using var probe = new TcpListener(IPAddress.Loopback, 0);
        probe.Start();
        var port = ((IPEndPoint)probe.LocalEndpoint).Port;
        probe.Stop();
        return port;
    }
}

/// <summary>The queue's count of undelivered notifications, their list and the Retry button, in a real browser.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class MonitoringNotificationsPageTests(ConsoleFixture console, MonitoringNotificationsFixture fx) : IClassFixture<MonitoringNotificationsFixture>
{
    [Fact]
    public async Task A_notification_that_could_not_be_delivered_is_counted_listed_and_retried_by_hand()
    {
        var user = "snoop-" + Guid.NewGuid().ToString("N")[..8];
        var recorded = await fx.Server.Service<AlertStore>().RecordFindingsAsync(
            [new Finding("self-access", Severity.High, user, "pt-undelivered", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds(), [0], "This user opened their own patient record.")],
            MonitorConfig.Default, "test", null, CancellationToken.None);
        var alertId = Assert.Single(recorded.NewAlertIds);
        var failed = await FailedAsync(alertId);
        var created = await fx.Server.Service<AccountService>().CreateAsync(Account.New("pia.notify", "Pia Notify") with { Roles = ["privacy_officer"] }, ConsoleFixture.Password, "test", CancellationToken.None);
        Assert.IsType<AccountResult.Done>(created);
        var context = await console.Browser.NewContextAsync(new() { BaseURL = fx.Origin });
        var page = await context.NewPageAsync();
        await ConsoleFixture.SignInAndEnrolAsync(page, "pia.notify");
        await page.GotoAsync("/console/alerts");

        await page.Locator(".wl-undelivered-link").ClickAsync();

        await Expect(page).ToHaveURLAsync(new Regex("/console/alerts/undelivered$"));
        var row = page.Locator($".wl-undelivered tr[data-notification='{failed.Id}']");
        await Expect(row).ToHaveAttributeAsync("data-status", "failed");
        await Expect(row).ToContainTextAsync("failed: attempts exhausted");
        await Expect(row).ToContainTextAsync("webhook");
        await ConsoleFixture.ShotAsync(page, "57-undelivered");

        await row.GetByRole(AriaRole.Button, new() { Name = "Retry" }).ClickAsync();

        await Expect(page.Locator(".wl-notice")).ToHaveTextAsync($"Notification {failed.Id} will be sent again now.");
        // The retry starts again from the first attempt (and, the receiver being down still, fails again).
        var again = await FailedAsync(alertId);
        Assert.Equal(failed.Id, again.Id);
        await page.GotoAsync($"/console/alerts/{alertId}");
        await Expect(page.Locator($".wl-notifications tr[data-notification='{failed.Id}']")).ToHaveAttributeAsync("data-status", "failed");
    }

    /// <summary>Waits (up to a minute on a busy machine) for the alert's notification to have failed.</summary>
    private async Task<AlertNotification> FailedAsync(long alertId)
    {
        var outbox = fx.Server.Service<NotificationOutbox>();
        var deadline = DateTime.UtcNow.AddMinutes(1);
        while (true)
        {
            var failed = (await outbox.UndeliveredAsync(CancellationToken.None)).FirstOrDefault(n => n.AlertId == alertId && n.Status == "failed");
            if (failed is not null) return failed;
            Assert.True(DateTime.UtcNow < deadline, $"the notification of alert {alertId} did not fail within a minute");
            await Task.Delay(100);
        }
    }
}
