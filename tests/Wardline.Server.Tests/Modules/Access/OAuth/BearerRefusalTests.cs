using System.Net;
using System.Security.Cryptography;
using System.Text;
using Microsoft.IdentityModel.Tokens;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Access.OAuth;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Access.OAuth.OAuthServer;

namespace Wardline.Server.Tests.Modules.Access.OAuth;

/// <summary>
/// Every token the API must not accept: each is the same 401, with <c>WWW-Authenticate: Bearer</c>, an
/// OperationOutcome saying only "Authentication is required.", and nothing written.
/// </summary>
public sealed class BearerRefusalTests(OAuthFixture f) : IClassFixture<OAuthFixture>
{
    private OAuthServer S => f.Server;

    [Fact]
    public async Task An_operator_token_is_a_jwt_of_the_same_issuer_vouching_for_mfa_and_it_works()
    {
        var token = await f.OperatorTokenAsync(OAuthFixture.Physician);
        var claims = Payload(token);

        Assert.Equal(S.Issuer, (string?)claims["iss"]);
        Assert.Equal(OAuthFixture.Physician, (string?)claims["sub"]);
        Assert.Equal(["pwd", "mfa"], claims["amr"]!.AsArray().Select(n => (string?)n));
        using var client = S.Client(token);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"Patient/{f.PatientA}")).StatusCode);
    }

    [Fact]
    public async Task An_expired_token_is_refused()
    {
        var token = Mint(await S.ServerKeyAsync(), S.Issuer, S.Audience, OAuthFixture.Physician, DateTimeOffset.UtcNow.AddMinutes(-5));
        await AssertRefusedAsync(token);
    }

    [Fact]
    public async Task A_token_signed_by_another_key_is_refused()
    {
        using var other = ECDsa.Create(ECCurve.NamedCurves.nistP256);
        var key = await S.ServerKeyAsync();
        // Even with the server's key id in the header.
        var forged = new SigningCredentials(new ECDsaSecurityKey(other) { KeyId = key.Key.KeyId }, SecurityAlgorithms.EcdsaSha256);
        await AssertRefusedAsync(Mint(forged, S.Issuer, S.Audience, OAuthFixture.Physician, DateTimeOffset.UtcNow.AddMinutes(30)));
    }

    [Fact]
    public async Task A_token_signed_with_a_shared_secret_is_refused()
    {
        var hmac = new SigningCredentials(new SymmetricSecurityKey(RandomNumberGenerator.GetBytes(32)), SecurityAlgorithms.HmacSha256);
        await AssertRefusedAsync(Mint(hmac, S.Issuer, S.Audience, OAuthFixture.Physician, DateTimeOffset.UtcNow.AddMinutes(30)));
    }

    [Fact]
    public async Task An_unsigned_alg_none_token_is_refused()
    {
        var header = Base64Url(Encoding.UTF8.GetBytes("""{"alg":"none","typ":"at+jwt"}"""));
        var exp = DateTimeOffset.UtcNow.AddMinutes(30).ToUnixTimeSeconds();
        var payload = Base64Url(Encoding.UTF8.GetBytes(
            $$"""{"iss":"{{S.Issuer}}","aud":"{{S.Audience}}","sub":"{{OAuthFixture.Physician}}","exp":{{exp}},"amr":["pwd","mfa"]}"""));
        await AssertRefusedAsync(header + "." + payload + ".");
        // With the real signature of another token pasted on.
        var real = await f.OperatorTokenAsync(OAuthFixture.Physician);
        await AssertRefusedAsync(header + "." + payload + "." + real.Split('.')[2]);
    }

    [Fact]
    public async Task A_token_for_another_audience_is_refused()
    {
        var token = Mint(await S.ServerKeyAsync(), S.Issuer, "https://other.example/fhir", OAuthFixture.Physician, DateTimeOffset.UtcNow.AddMinutes(30));
        await AssertRefusedAsync(token);
    }

    [Fact]
    public async Task A_token_of_another_issuer_is_refused()
    {
        var token = Mint(await S.ServerKeyAsync(), "https://evil.example/", S.Audience, OAuthFixture.Physician, DateTimeOffset.UtcNow.AddMinutes(30));
        await AssertRefusedAsync(token);
    }

    [Fact]
    public async Task A_token_of_another_type_is_refused()
    {
        // An ID token (typ JWT) signed by the right key is not an access token.
        var token = Mint(await S.ServerKeyAsync(), S.Issuer, S.Audience, OAuthFixture.Physician, DateTimeOffset.UtcNow.AddMinutes(30), type: "JWT");
        await AssertRefusedAsync(token);
    }

    [Fact]
    public async Task A_token_of_an_unknown_account_is_refused()
    {
        var token = Mint(await S.ServerKeyAsync(), S.Issuer, S.Audience, "nobody.here", DateTimeOffset.UtcNow.AddMinutes(30));
        await AssertRefusedAsync(token);
    }

    [Theory]
    [InlineData("garbage")]
    [InlineData("a.b.c")]
    [InlineData("wl_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA")]
    public async Task Malformed_tokens_are_refused(string token) => await AssertRefusedAsync(token);

    [Fact]
    public async Task Tokens_of_a_disabled_account_are_refused_and_stay_refused_when_it_is_enabled_again()
    {
        await S.CreatePhysicianAsync("dr.leaving");
        var token = await f.OperatorTokenAsync("dr.leaving");
        await AssertAcceptedAsync(token);

        await LaterAsync();
        Assert.IsType<AccountResult.Done>(await S.Service<AccountService>().DisableAsync("dr.leaving", "test", CancellationToken.None));
        await AssertRefusedAsync(token);

        // Enabling the account again revives no token issued before it was disabled; a new one works.
        Assert.IsType<AccountResult.Done>(await S.Service<AccountService>().EnableAsync("dr.leaving", "test", CancellationToken.None));
        await AssertRefusedAsync(token);
        await AssertAcceptedAsync(await f.OperatorTokenAsync("dr.leaving"));
    }

    [Fact]
    public async Task A_password_change_ends_the_tokens_issued_before_it_and_not_those_after()
    {
        await S.CreatePhysicianAsync("dr.newpass");
        var before = await f.OperatorTokenAsync("dr.newpass");
        // A token of the old kind, which says when it was issued only in whole seconds ("iat"), minted an hour ago.
        var older = Mint(await S.ServerKeyAsync(), S.Issuer, S.Audience, "dr.newpass", DateTimeOffset.UtcNow.AddMinutes(59));
        await AssertAcceptedAsync(before);
        await AssertAcceptedAsync(older);

        await LaterAsync();
        Assert.IsType<AccountResult.Done>(await S.Service<AccountService>().SetPasswordAsync("dr.newpass", "quiet-harbour-lantern-4821", "test", CancellationToken.None));

        await AssertRefusedAsync(before);
        await AssertRefusedAsync(older);
        await AssertAcceptedAsync(await f.OperatorTokenAsync("dr.newpass"));
    }

    [Fact]
    public async Task An_mfa_reset_ends_the_tokens_issued_before_it()
    {
        await S.CreatePhysicianAsync("dr.newphone");
        var before = await f.OperatorTokenAsync("dr.newphone");
        await AssertAcceptedAsync(before);

        await LaterAsync();
        Assert.IsType<AccountResult.Done>(await S.Service<AccountService>().ResetMfaAsync("dr.newphone", "test", CancellationToken.None));

        await AssertRefusedAsync(before);
        await AssertAcceptedAsync(await f.OperatorTokenAsync("dr.newphone"));
    }

    [Fact]
    public async Task A_client_credentials_token_from_before_its_service_account_was_disabled_stays_refused_after_it_is_enabled()
    {
        await S.CreateAccountAsync(Account.New("svc.pause", "Paused engine") with { Roles = ["integration_engine"] }, null);
        var secret = await S.AddClientAsync("pause-engine", "client_credentials", ["system/*.rs"], "svc.pause");
        var before = await ClientTokenAsync("pause-engine", secret);
        await AssertAcceptedAsync(before, "Observation");

        await LaterAsync();
        Assert.IsType<AccountResult.Done>(await S.Service<AccountService>().DisableAsync("svc.pause", "test", CancellationToken.None));
        Assert.IsType<AccountResult.Done>(await S.Service<AccountService>().EnableAsync("svc.pause", "test", CancellationToken.None));

        await AssertRefusedAsync(before);
        await AssertAcceptedAsync(await ClientTokenAsync("pause-engine", secret), "Observation");
    }

    [Fact]
    public async Task A_client_removed_and_added_again_under_its_id_gets_none_of_its_old_tokens_back()
    {
        await S.CreateAccountAsync(Account.New("svc.rotate", "Rotated engine") with { Roles = ["integration_engine"] }, null);
        var leaked = await S.AddClientAsync("rotate-engine", "client_credentials", ["system/*.rs"], "svc.rotate");
        var stolen = await ClientTokenAsync("rotate-engine", leaked);

        // Replacing a leaked secret: remove the client and add it again under the same id.
        await LaterAsync();
        Assert.True(await S.Service<OAuthClients>().RemoveAsync("rotate-engine", CancellationToken.None));
        var fresh = await S.AddClientAsync("rotate-engine", "client_credentials", ["system/*.rs"], "svc.rotate");

        await AssertRefusedAsync(stolen);
        await AssertAcceptedAsync(await ClientTokenAsync("rotate-engine", fresh), "Observation");
    }

    [Fact]
    public async Task An_authorization_code_made_before_a_password_change_gets_no_token_and_an_apps_token_ends_with_it()
    {
        await S.CreatePhysicianAsync("dr.codes");
        using var browser = S.Browser();
        await SignInAsync(browser, "dr.codes");
        var (token, _) = await RedeemAsync(browser, await CodeAsync(browser));
        await AssertAcceptedAsync(token);
        var (verifier, code) = await CodeAsync(browser);

        await LaterAsync();
        Assert.IsType<AccountResult.Done>(await S.Service<AccountService>().SetPasswordAsync("dr.codes", "quiet-harbour-lantern-4821", "test", CancellationToken.None));

        // The app's token (issued by the OAuth server, with its issuing time as a number claim) ends, and the code made
        // before the change, whose session the change ended, gets no token.
        await AssertRefusedAsync(token);
        var (_, status) = await RedeemAsync(browser, (verifier, code), expectToken: false);
        Assert.Equal(HttpStatusCode.BadRequest, status);
    }

    private async Task<(string Verifier, string Code)> CodeAsync(HttpClient browser)
    {
        var (verifier, challenge) = Pkce();
        var back = await AuthorizeAsync(browser, Query(("response_type", "code"), ("client_id", OAuthFixture.App), ("redirect_uri", OAuthFixture.RedirectUri),
            ("scope", "user/*.cruds"), ("code_challenge", challenge), ("code_challenge_method", "S256")));
        return (verifier, Parameter(back, "code")!);
    }

    private async Task<(string Token, HttpStatusCode Status)> RedeemAsync(HttpClient browser, (string Verifier, string Code) code, bool expectToken = true)
    {
        _ = browser;
        var (status, body) = await S.TokenRequestAsync(Form(("grant_type", "authorization_code"), ("client_id", OAuthFixture.App), ("code", code.Code),
            ("redirect_uri", OAuthFixture.RedirectUri), ("code_verifier", code.Verifier)));
        if (expectToken) Assert.Equal(HttpStatusCode.OK, status);
        return (expectToken ? (string)body["access_token"]! : "", status);
    }

    private async Task<string> ClientTokenAsync(string client, string? secret)
    {
        var (status, body) = await S.ClientCredentialsAsync(client, secret, "system/*.rs");
        Assert.Equal(HttpStatusCode.OK, status);
        return (string)body["access_token"]!;
    }

    [Fact]
    public async Task Signing_out_of_the_console_leaves_the_apps_tokens_working()
    {
        await S.CreatePhysicianAsync("dr.signsout");
        var token = await f.OperatorTokenAsync("dr.signsout");

        Assert.True(await S.Service<AccountStore>().EndSessionsAsync("dr.signsout", DateTimeOffset.UtcNow, CancellationToken.None));

        await AssertAcceptedAsync(token);
    }

    /// <summary>Lets the clock pass a millisecond: a token or code issued in the same millisecond as a change counts as after it.</summary>
    private static Task LaterAsync() => Task.Delay(TimeSpan.FromMilliseconds(20));

    private async Task AssertAcceptedAsync(string token, string? path = null)
    {
        using var client = S.Client(token);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync(path ?? $"Patient/{f.PatientA}")).StatusCode);
    }

    [Fact]
    public async Task A_client_credentials_token_stops_when_its_service_account_is_disabled()
    {
        await S.CreateAccountAsync(Account.New("svc.temp", "Temp engine") with { Roles = ["integration_engine"] }, null);
        var secret = await S.AddClientAsync("temp-engine", "client_credentials", ["system/*.rs"], "svc.temp");
        var (_, body) = await S.ClientCredentialsAsync("temp-engine", secret, "system/*.rs");
        var token = (string)body["access_token"]!;

        Assert.IsType<AccountResult.Done>(await S.Service<AccountService>().DisableAsync("svc.temp", "test", CancellationToken.None));

        await AssertRefusedAsync(token);
        var (status, refused) = await S.ClientCredentialsAsync("temp-engine", secret, "system/*.rs");
        TokenEndpointTests.AssertOAuthError(status, refused, "invalid_grant");
    }

    private async Task AssertRefusedAsync(string token)
    {
        using var client = S.Client(token);
        var before = await S.StoredRowsAsync();
        foreach (var request in new Func<Task<HttpResponseMessage>>[]
        {
            () => client.GetAsync($"Patient/{f.PatientA}"),
            () => client.GetAsync("Observation"),
            () => client.PostJsonAsync("Patient", FhirTest.Patient("Refused")),
        })
        {
            var response = await request();
            Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
            Assert.Equal("Bearer", response.Headers.WwwAuthenticate.ToString());
            Assert.Equal("Authentication is required.", await response.DiagnosticsAsync());
        }
        Assert.Equal(before, await S.StoredRowsAsync());
    }
}
