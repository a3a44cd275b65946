using System.Net;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Tests.Modules.Access.OAuth;

namespace Wardline.Server.Tests.Console;

/// <summary>
/// A console session cookie copied out of a browser (malware, a shared machine) stops working when its owner signs out,
/// and when an administrator sets the password, resets the MFA or disables the account; enabling the account again does
/// not revive it (ASVS 3.3.1, 3.3.3: logout and credential changes end sessions). A new sign-in after any of these works.
/// </summary>
public sealed class ConsoleSessionEndTests : IAsyncLifetime
{
    private OAuthServer _server = null!;

    public async Task InitializeAsync() => _server = await OAuthServer.StartAsync();

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task Signing_out_ends_a_copy_of_the_session_cookie_too()
    {
        await _server.CreatePhysicianAsync("dr.victim");
        var (victim, thief) = await SignedInTwiceAsync("dr.victim");

        var token = await AntiforgeryTokenAsync(victim);
        var signOut = await victim.PostAsync("/console/sign-out", new FormUrlEncodedContent([KeyValuePair.Create("__RequestVerificationToken", token)]));
        Assert.Equal(HttpStatusCode.Redirect, signOut.StatusCode);

        await AssertSentToSignInAsync(thief);
        using var again = _server.Browser();
        await OAuthServer.SignInAsync(again, "dr.victim");
        await AssertSignedInAsync(again);
    }

    [Theory]
    [InlineData("password")]
    [InlineData("reset-mfa")]
    [InlineData("disable-enable")]
    public async Task An_administrators_password_change_mfa_reset_or_disabling_ends_the_accounts_sessions(string change)
    {
        var name = "dr." + change.Replace("-", "", StringComparison.Ordinal);
        await _server.CreatePhysicianAsync(name);
        var (victim, thief) = await SignedInTwiceAsync(name);
        var accounts = _server.Service<AccountService>();

        switch (change)
        {
            case "password":
                Assert.IsType<AccountResult.Done>(await accounts.SetPasswordAsync(name, "a brand new passphrase 77", "admin", CancellationToken.None));
                break;
            case "reset-mfa":
                Assert.IsType<AccountResult.Done>(await accounts.ResetMfaAsync(name, "admin", CancellationToken.None));
                break;
            default:
                Assert.IsType<AccountResult.Done>(await accounts.DisableAsync(name, "admin", CancellationToken.None));
                Assert.IsType<AccountResult.Done>(await accounts.EnableAsync(name, "admin", CancellationToken.None));
                break;
        }

        await AssertSentToSignInAsync(victim);
        await AssertSentToSignInAsync(thief);
        using var again = _server.Browser();
        await OAuthServer.SignInAsync(again, name, change == "password" ? "a brand new passphrase 77" : OAuthServer.Password);
        await AssertSignedInAsync(again);
    }

    /// <summary>Signs <paramref name="name"/> in, and copies the session cookies into a second jar (the thief's).</summary>
    private async Task<(HttpClient Victim, HttpClient Thief)> SignedInTwiceAsync(string name)
    {
        var victimJar = new CookieContainer();
        var victim = Browser(victimJar);
        await OAuthServer.SignInAsync(victim, name);
        var thiefJar = new CookieContainer();
        thiefJar.Add(victimJar.GetAllCookies());
        var thief = Browser(thiefJar);
        await AssertSignedInAsync(victim);
        await AssertSignedInAsync(thief);
        return (victim, thief);
    }

    private HttpClient Browser(CookieContainer jar) => ConsoleHttp.Browser(_server.Origin, jar);

    private static Task AssertSignedInAsync(HttpClient browser) => ConsoleHttp.AssertSignedInAsync(browser);

    private static Task AssertSentToSignInAsync(HttpClient browser) => ConsoleHttp.AssertSentToSignInAsync(browser);

    private static Task<string> AntiforgeryTokenAsync(HttpClient browser) => ConsoleHttp.AntiforgeryTokenAsync(browser, "/console");
}
