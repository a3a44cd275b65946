using Resource = Hl7.Fhir.Model.Resource;
using Microsoft.Playwright;
using OtpNet;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Records;
using Wardline.Server.Tests.Infrastructure;
using static Microsoft.Playwright.Assertions;

namespace Wardline.Server.Tests.Console;

/// <summary>
/// One server on SQLite under the built-in hospital policy, and Debian's chromium driven by Playwright.
/// Each test opens its own browser context (its own cookies) and makes its own accounts.
/// </summary>
public sealed class ConsoleFixture : IAsyncLifetime
{
    public const string Password = "correct horse battery staple 42";

    private IPlaywright? _playwright;

    public TestStore Store { get; private set; } = null!;

    public TestServer Server { get; private set; } = null!;

    public IBrowser Browser { get; private set; } = null!;

    /// <summary>The server's origin, e.g. http://127.0.0.1:41234.</summary>
    public string Origin => Server.BaseUri.GetLeftPart(UriPartial.Authority);

    /// <summary>Where screenshots go; kept as test artefacts.</summary>
    public static string Screenshots { get; } = Directory.CreateDirectory(Path.Combine(AppContext.BaseDirectory, "TestResults", "screenshots")).FullName;

    public async Task InitializeAsync()
    {
        Store = await TestStore.CreateAsync(StoreKind.Sqlite);
        var policy = Path.Combine(Store.Folder, "hospital-policy.yaml");
        await File.WriteAllTextAsync(policy, PolicyHolder.BuiltInText());
        Store.Options.Access.PolicyPath = policy;
        Server = await TestServer.StartAsync(Store.Options);
        _playwright = await Playwright.CreateAsync();
        Browser = await _playwright.Chromium.LaunchAsync(new() { ExecutablePath = "/usr/bin/chromium", Headless = true, Args = ["--no-sandbox"] });
    }

    public async Task DisposeAsync()
    {
        if (Browser is not null) await Browser.DisposeAsync();
        _playwright?.Dispose();
        await Server.DisposeAsync();
        await Store.DisposeAsync();
    }

    public async Task<IPage> NewPageAsync()
    {
        var context = await Browser.NewContextAsync(new() { BaseURL = Origin });
        return await context.NewPageAsync();
    }

    internal async Task CreateAccountAsync(Account account)
    {
        var result = await Server.Service<AccountService>().CreateAsync(account, Password, "test", CancellationToken.None);
        Assert.IsType<AccountResult.Done>(result);
    }

    public async Task ImportAsync(Resource resource)
    {
        var result = await Server.Service<RecordImporter>().ImportResourceAsync(resource, "console-test", CancellationToken.None);
        Assert.Empty(result.Problems);
    }

    /// <summary>The code an authenticator app would show now.</summary>
    public static string Code(string secret) => new OtpNet.Totp(Base32Encoding.ToBytes(secret)).ComputeTotp(DateTime.UtcNow);

    /// <summary>
    /// A code for the next time step: each code works once, and the server accepts one step ahead, so a
    /// second sign-in right after enrolment uses this instead of waiting up to 30 seconds.
    /// </summary>
    public static string NextCode(string secret) => new OtpNet.Totp(Base32Encoding.ToBytes(secret)).ComputeTotp(DateTime.UtcNow.AddSeconds(30));

    /// <summary>First sign-in of a new account: password, then enrolment from the key shown on the page. Returns the key.</summary>
    public static async Task<string> SignInAndEnrolAsync(IPage page, string name, string? screenshot = null, string signInPath = "/console/sign-in", string landing = "/console$")
    {
        await SubmitPasswordAsync(page, name, Password, signInPath);
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex("/console/sign-in/enrol$"));
        await Expect(page.Locator(".wl-qr svg")).ToBeVisibleAsync();
        var secret = (await page.Locator(".wl-secret").InnerTextAsync()).Trim();
        if (screenshot is not null) await ShotAsync(page, screenshot);
        await page.FillAsync("input[name='Input.Code']", Code(secret));
        await page.GetByRole(AriaRole.Button, new() { Name = "Confirm and sign in" }).ClickAsync();
        await Expect(page).ToHaveURLAsync(new System.Text.RegularExpressions.Regex(landing));
        return secret;
    }

    public static async Task SubmitPasswordAsync(IPage page, string name, string password, string signInPath = "/console/sign-in")
    {
        await page.GotoAsync(signInPath);
        await page.FillAsync("input[name='Input.UserName']", name);
        await page.FillAsync("input[name='Input.Password']", password);
        await page.GetByRole(AriaRole.Button, new() { Name = "Sign in" }).ClickAsync();
    }

    public static async Task ShotAsync(IPage page, string name) =>
        await page.ScreenshotAsync(new() { Path = Path.Combine(Screenshots, name + ".png"), FullPage = true });
}

/// <summary>The console's test classes share one server and one browser, and run one after another.</summary>
[CollectionDefinition(Name)]
public sealed class ConsoleCollection : ICollectionFixture<ConsoleFixture>
{
    public const string Name = "Console";
}
