using System.Net;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Access.OAuth.OAuthServer;

namespace Wardline.Server.Tests.Modules.Access.OAuth;

/// <summary>The token endpoint: client credentials, the code flow with PKCE, and every way a request is refused.</summary>
public sealed class TokenEndpointTests(OAuthFixture f) : IClassFixture<OAuthFixture>
{
    private OAuthServer S => f.Server;

    [Fact]
    public async Task Client_credentials_give_a_signed_jwt_for_the_service_account_that_reads_and_writes_clinical_records()
    {
        var (status, body) = await S.ClientCredentialsAsync(OAuthFixture.EngineClient, f.EngineSecret, "system/*.cruds");

        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("Bearer", (string?)body["token_type"]);
        var token = (string)body["access_token"]!;
        var header = JsonNode.Parse(Microsoft.IdentityModel.Tokens.Base64UrlEncoder.Decode(token.Split('.')[0]))!;
        Assert.Equal("ES256", (string?)header["alg"]);
        Assert.Equal("at+jwt", (string?)header["typ"]);
        var claims = Payload(token);
        Assert.Equal(OAuthFixture.EngineAccount, (string?)claims["sub"]);
        Assert.Equal(S.Issuer, (string?)claims["iss"]);
        Assert.Equal(S.Audience, claims["aud"] is JsonArray a ? (string?)a[0] : (string?)claims["aud"]);
        Assert.Equal("system/*.cruds", (string?)claims["scope"]);
        Assert.Equal(OAuthFixture.EngineClient, (string?)claims["client_id"]);

        using var engine = S.Client(token);
        var search = await engine.GetAsync($"Observation?patient={f.PatientA}");
        Assert.Equal(HttpStatusCode.OK, search.StatusCode);
        Assert.Equal(2, (await search.ReadJsonAsync()).Resources().Count());
        var created = await engine.PostJsonAsync("Observation", FhirTest.Observation(f.PatientB, value: 88));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
    }

    [Fact]
    public async Task A_narrower_system_scope_limits_the_engine_to_reading_observations()
    {
        var (status, body) = await S.ClientCredentialsAsync(OAuthFixture.EngineClient, f.EngineSecret, "system/Observation.rs");
        Assert.Equal(HttpStatusCode.OK, status);
        using var engine = S.Client((string)body["access_token"]!);

        Assert.Equal(HttpStatusCode.OK, (await engine.GetAsync($"Observation?patient={f.PatientA}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await engine.GetAsync($"Condition/{f.ConditionA}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await engine.PostJsonAsync("Observation", FhirTest.Observation(f.PatientA))).StatusCode);
    }

    [Fact]
    public async Task An_unknown_client_is_refused_with_invalid_client()
    {
        var (status, body) = await S.ClientCredentialsAsync("no-such-client", "wlcs_whatever", "system/*.rs");
        AssertOAuthError(status, body, "invalid_client");
    }

    [Fact]
    public async Task A_wrong_client_secret_is_refused_with_invalid_client()
    {
        var (status, body) = await S.ClientCredentialsAsync(OAuthFixture.EngineClient, f.EngineSecret + "x", "system/*.rs");
        AssertOAuthError(status, body, "invalid_client");
        var (missing, body2) = await S.ClientCredentialsAsync(OAuthFixture.EngineClient, null, "system/*.rs");
        Assert.NotEqual(HttpStatusCode.OK, missing);
        Assert.Contains((string?)body2["error"], new[] { "invalid_client", "invalid_request" });
    }

    [Theory]
    [InlineData("")]
    [InlineData("system/Condition.rs")]
    [InlineData("user/*.cruds")]
    [InlineData("patient/*.rs")]
    [InlineData("system/*.rs?category=vital-signs")]
    [InlineData("system/*.xyz")]
    [InlineData("system/Observation.rsx")]
    [InlineData("openid profile")]
    [InlineData("launch/patient")]
    [InlineData("system/*.cruds launch/patient")]
    [InlineData("system//*.rs")]
    [InlineData("SYSTEM/*.rs")]
    public async Task Bad_or_unregistered_scopes_are_refused_with_invalid_scope(string scope)
    {
        var (status, body) = await S.ClientCredentialsAsync(OAuthFixture.EngineClient, f.EngineSecret, scope);
        AssertOAuthError(status, body, "invalid_scope");
    }

    [Fact]
    public async Task An_unsupported_grant_type_is_refused()
    {
        var (status, body) = await S.TokenRequestAsync(Form(("grant_type", "password"), ("client_id", OAuthFixture.EngineClient),
            ("client_secret", f.EngineSecret), ("username", OAuthFixture.Physician), ("password", Password)));
        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("unsupported_grant_type", (string?)body["error"]);
    }

    [Fact]
    public async Task The_public_app_may_not_use_client_credentials()
    {
        var (status, body) = await S.ClientCredentialsAsync(OAuthFixture.App, null, "patient/*.rs");
        Assert.NotEqual(HttpStatusCode.OK, status);
        Assert.Contains((string?)body["error"], new[] { "unauthorized_client", "invalid_client", "invalid_request" });
    }

    [Fact]
    public async Task Code_flow_with_pkce_gives_the_signed_in_user_a_token_narrowed_to_the_launch_patient()
    {
        using var browser = S.Browser();
        await SignInAsync(browser, OAuthFixture.Physician);
        var (verifier, challenge) = Pkce();

        var back = await AuthorizeAsync(browser, AuthorizeQuery(challenge, "patient/Observation.rs launch/patient", f.PatientA, state: "xyz"));
        Assert.StartsWith(OAuthFixture.RedirectUri, back.AbsoluteUri, StringComparison.Ordinal);
        Assert.Equal("xyz", Parameter(back, "state"));
        var code = Parameter(back, "code");
        Assert.NotNull(code);

        var (status, body) = await RedeemAsync(code!, verifier);
        Assert.Equal(HttpStatusCode.OK, status);
        var token = (string)body["access_token"]!;
        var claims = Payload(token);
        Assert.Equal(OAuthFixture.Physician, (string?)claims["sub"]);
        Assert.Equal(f.PatientA, (string?)claims["patient"]);
        Assert.Equal(f.PatientA, (string?)body["patient"]); // SMART launch context in the token response
        Assert.Equal("pwd", claims["amr"] is JsonArray amr ? (string?)amr.Single() : (string?)claims["amr"]); // no second factor in this session
        Assert.Contains("patient/Observation.rs", ((string)claims["scope"]!).Split(' '));

        using var app = S.Client(token);
        var search = await app.GetAsync("Observation");
        Assert.Equal(HttpStatusCode.OK, search.StatusCode);
        var found = (await search.ReadJsonAsync()).Resources().ToList();
        Assert.Equal(2, found.Count);
        Assert.All(found, o => Assert.Equal("Patient/" + f.PatientA, (string?)o["subject"]!["reference"]));
        var before = await S.StoredRowsAsync();
        Assert.Equal(HttpStatusCode.Forbidden, (await app.PostJsonAsync("Observation", FhirTest.Observation(f.PatientA))).StatusCode);
        Assert.Equal(before, await S.StoredRowsAsync());
    }

    [Fact]
    public async Task A_wrong_pkce_verifier_is_refused_with_invalid_grant()
    {
        using var browser = S.Browser();
        await SignInAsync(browser, OAuthFixture.Physician);
        var (_, challenge) = Pkce();
        var code = Parameter(await AuthorizeAsync(browser, AuthorizeQuery(challenge, "user/Condition.rs")), "code")!;

        var (status, body) = await RedeemAsync(code, Pkce().Verifier);
        AssertOAuthError(status, body, "invalid_grant");
    }

    [Fact]
    public async Task An_authorization_code_works_once()
    {
        using var browser = S.Browser();
        await SignInAsync(browser, OAuthFixture.Physician);
        var (verifier, challenge) = Pkce();
        var code = Parameter(await AuthorizeAsync(browser, AuthorizeQuery(challenge, "user/Condition.rs")), "code")!;

        var (first, _) = await RedeemAsync(code, verifier);
        var (second, body) = await RedeemAsync(code, verifier);

        Assert.Equal(HttpStatusCode.OK, first);
        AssertOAuthError(second, body, "invalid_grant");
    }

    [Fact]
    public async Task The_code_flow_requires_pkce()
    {
        using var browser = S.Browser();
        await SignInAsync(browser, OAuthFixture.Physician);
        var query = Query(("response_type", "code"), ("client_id", OAuthFixture.App), ("redirect_uri", OAuthFixture.RedirectUri), ("scope", "user/Condition.rs"));
        var response = await browser.GetAsync("/connect/authorize?" + query);
        var location = response.Headers.Location;
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest || (location is not null && Parameter(location, "error") == "invalid_request"),
            $"answered {(int)response.StatusCode} {location}");
    }

    [Fact]
    public async Task The_plain_pkce_method_is_refused()
    {
        using var browser = S.Browser();
        await SignInAsync(browser, OAuthFixture.Physician);
        var verifier = Pkce().Verifier;
        var query = Query(("response_type", "code"), ("client_id", OAuthFixture.App), ("redirect_uri", OAuthFixture.RedirectUri), ("scope", "user/Condition.rs"),
            ("code_challenge", verifier), ("code_challenge_method", "plain"));

        var response = await browser.GetAsync("/connect/authorize?" + query);

        var location = response.Headers.Location;
        Assert.True(response.StatusCode == HttpStatusCode.BadRequest || (location is not null && Parameter(location, "error") == "invalid_request"),
            $"answered {(int)response.StatusCode} {location}");
        Assert.True(location is null || Parameter(location, "code") is null);
    }

    [Fact]
    public async Task Authorize_without_a_console_session_sends_the_browser_to_sign_in()
    {
        using var browser = S.Browser();
        var first = await browser.GetAsync("/connect/authorize?" + AuthorizeQuery(Pkce().Challenge, "user/Condition.rs"));
        var second = await browser.GetAsync(first.Headers.Location);

        Assert.Equal(HttpStatusCode.Redirect, second.StatusCode);
        Assert.StartsWith("/console/sign-in?returnUrl=", second.Headers.Location!.OriginalString, StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_browser_that_is_not_signed_in_signs_in_and_continues_to_the_app_with_a_code()
    {
        using var browser = S.Browser();
        var (verifier, challenge) = Pkce();
        var first = await browser.GetAsync("/connect/authorize?" + AuthorizeQuery(challenge, "user/Condition.rs", state: "s1"));
        var signIn = (await browser.GetAsync(first.Headers.Location)).Headers.Location!.OriginalString;
        Assert.StartsWith("/console/sign-in?returnUrl=", signIn, StringComparison.Ordinal);

        var page = await (await browser.GetAsync(signIn)).Content.ReadAsStringAsync();
        var antiforgery = Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value;
        var signedIn = await browser.PostAsync(signIn, new FormUrlEncodedContent(Form(("_handler", "sign-in"),
            ("__RequestVerificationToken", WebUtility.HtmlDecode(antiforgery)), ("Input.UserName", OAuthFixture.Physician), ("Input.Password", Password))));
        var html = await signedIn.Content.ReadAsStringAsync();
        var next = signedIn.Headers.Location?.OriginalString
            ?? WebUtility.HtmlDecode(Regex.Match(html, "class=\"wl-continue\"[^>]*|href=\"(/console/authorize[^\"]*)\"").Groups[1].Value);
        Assert.StartsWith("/console/authorize?", next, StringComparison.Ordinal);

        var back = (await browser.GetAsync(next)).Headers.Location!;
        Assert.StartsWith(OAuthFixture.RedirectUri, back.AbsoluteUri, StringComparison.Ordinal);
        Assert.Equal("s1", Parameter(back, "state"));
        var (status, body) = await RedeemAsync(Parameter(back, "code")!, verifier);
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal(OAuthFixture.Physician, (string?)Payload((string)body["access_token"]!)["sub"]);
    }

    [Fact]
    public async Task A_session_signed_in_with_mfa_gives_a_token_saying_pwd_and_mfa()
    {
        const string nurse = "nurse.mfa";
        await S.CreateAccountAsync(Account.New(nurse, nurse) with { Roles = ["nurse"], Departments = ["cardiology"] });
        var signIns = S.Service<SignInService>();
        Assert.IsType<SignInOutcome.NeedsMfaEnrolment>(await signIns.PasswordAsync(nurse, Password, "127.0.0.1", CancellationToken.None));
        var secret = (await signIns.BeginEnrolmentAsync(nurse, CancellationToken.None))!.Secret;
        var totp = new OtpNet.Totp(OtpNet.Base32Encoding.ToBytes(secret));
        Assert.IsType<SignInOutcome.Succeeded>(await signIns.CompleteEnrolmentAsync(nurse, totp.ComputeTotp(DateTime.UtcNow), "127.0.0.1", CancellationToken.None));

        using var browser = S.Browser();
        var page = await (await browser.GetAsync("/console/sign-in")).Content.ReadAsStringAsync();
        var password = await browser.PostAsync("/console/sign-in", new FormUrlEncodedContent(Form(("_handler", "sign-in"),
            ("__RequestVerificationToken", Antiforgery(page)), ("Input.UserName", nurse), ("Input.Password", Password))));
        var codePage = password.Headers.Location!.OriginalString;
        Assert.EndsWith("/console/sign-in/code", codePage, StringComparison.Ordinal);
        page = await (await browser.GetAsync(codePage)).Content.ReadAsStringAsync();
        // Each code works once and one step ahead is accepted: the next step's code, not the one just used.
        var second = await browser.PostAsync(codePage, new FormUrlEncodedContent(Form(("_handler", "totp"),
            ("__RequestVerificationToken", Antiforgery(page)), ("Input.Code", totp.ComputeTotp(DateTime.UtcNow.AddSeconds(30))))));
        Assert.EndsWith("/console", second.Headers.Location!.OriginalString, StringComparison.Ordinal);

        var (verifier, challenge) = Pkce();
        var code = Parameter(await AuthorizeAsync(browser, AuthorizeQuery(challenge, "user/Condition.rs")), "code")!;
        var (status, body) = await RedeemAsync(code, verifier);

        Assert.Equal(HttpStatusCode.OK, status);
        var amr = Payload((string)body["access_token"]!)["amr"]!.AsArray().Select(n => (string?)n).Order().ToList();
        Assert.Equal(["mfa", "pwd"], amr);
    }

    private static string Antiforgery(string page) =>
        WebUtility.HtmlDecode(Regex.Match(page, "name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"").Groups[1].Value);

    [Fact]
    public async Task A_launch_patient_the_user_may_not_read_is_refused()
    {
        using var browser = S.Browser();
        // A tier-2 cardiologist with no care relationship to the patient (who has no department).
        await SignInAsync(browser, OAuthFixture.JuniorPhysician);
        var back = await AuthorizeAsync(browser, AuthorizeQuery(Pkce().Challenge, "patient/*.rs launch/patient", f.PatientB));

        Assert.StartsWith(OAuthFixture.RedirectUri, back.AbsoluteUri, StringComparison.Ordinal);
        Assert.Equal("access_denied", Parameter(back, "error"));
        Assert.Null(Parameter(back, "code"));
    }

    [Fact]
    public async Task An_unregistered_redirect_uri_or_unknown_client_is_never_redirected_to()
    {
        using var browser = S.Browser();
        await SignInAsync(browser, OAuthFixture.Physician);
        foreach (var query in new[]
        {
            Query(("response_type", "code"), ("client_id", OAuthFixture.App), ("redirect_uri", "https://evil.example/cb"), ("scope", "user/Condition.rs"),
                ("code_challenge", Pkce().Challenge), ("code_challenge_method", "S256")),
            Query(("response_type", "code"), ("client_id", "no-such-app"), ("redirect_uri", OAuthFixture.RedirectUri), ("scope", "user/Condition.rs"),
                ("code_challenge", Pkce().Challenge), ("code_challenge_method", "S256")),
        })
        {
            var response = await browser.GetAsync("/connect/authorize?" + query);
            var text = await response.Content.ReadAsStringAsync();
            Assert.False(response.Headers.Location?.Host == "evil.example", "redirected to an unregistered URI");
            Assert.True(response.StatusCode is HttpStatusCode.BadRequest or HttpStatusCode.Unauthorized, $"answered {(int)response.StatusCode}");
            Assert.DoesNotContain("Exception", text, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Smart_configuration_advertises_the_endpoints_pkce_and_scopes()
    {
        using var http = new HttpClient();
        var config = JsonNode.Parse(await http.GetStringAsync(S.Origin + "/.well-known/smart-configuration"))!.AsObject();

        Assert.Equal(S.Origin + "/connect/authorize", (string?)config["authorization_endpoint"]);
        Assert.Equal(S.Origin + "/connect/token", (string?)config["token_endpoint"]);
        Assert.Equal(["S256"], config["code_challenge_methods_supported"]!.AsArray().Select(n => (string?)n));
        Assert.Contains("client_credentials", config["grant_types_supported"]!.AsArray().Select(n => (string?)n));
        Assert.Contains("authorization_code", config["grant_types_supported"]!.AsArray().Select(n => (string?)n));
        Assert.Contains("permission-v2", config["capabilities"]!.AsArray().Select(n => (string?)n));
        Assert.NotEmpty(config["scopes_supported"]!.AsArray());
    }

    private static string AuthorizeQuery(string challenge, string scope, string? patient = null, string? state = null) =>
        Query(("response_type", "code"), ("client_id", OAuthFixture.App), ("redirect_uri", OAuthFixture.RedirectUri), ("scope", scope),
            ("code_challenge", challenge), ("code_challenge_method", "S256"), ("patient", patient), ("state", state));

    private Task<(HttpStatusCode Status, JsonObject Body)> RedeemAsync(string code, string verifier) =>
        S.TokenRequestAsync(Form(("grant_type", "authorization_code"), ("client_id", OAuthFixture.App), ("code", code),
            ("redirect_uri", OAuthFixture.RedirectUri), ("code_verifier", verifier)));

    /// <summary>RFC 6749 §5.2: a JSON error naming what the client must fix, and nothing about the server.</summary>
    internal static void AssertOAuthError(HttpStatusCode status, JsonObject body, string error)
    {
        Assert.True(status is HttpStatusCode.BadRequest or HttpStatusCode.Unauthorized, $"status {(int)status}: {body}");
        Assert.Equal(error, (string?)body["error"]);
        Assert.Null(body["access_token"]);
        Assert.Null(body["error_uri"]);
        Assert.All(body.Select(p => p.Key), k => Assert.Contains(k, new[] { "error", "error_description" }));
        var text = body.ToJsonString();
        Assert.DoesNotContain("Exception", text, StringComparison.Ordinal);
        Assert.DoesNotContain("   at ", text, StringComparison.Ordinal);
    }
}
