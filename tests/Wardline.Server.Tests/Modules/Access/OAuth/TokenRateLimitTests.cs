using System.Globalization;
using System.Net;
using System.Text.Json.Nodes;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Options;
using OpenIddict.Server;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Access.OAuth;
using static Wardline.Server.Tests.Modules.Access.OAuth.OAuthServer;

namespace Wardline.Server.Tests.Modules.Access.OAuth;

/// <summary>
/// The OAuth endpoints' per-address limit runs before authentication, where OpenIddict checks client secrets
/// and answers refusals itself: a refused request checks no secret, whatever its credentials.
/// </summary>
public sealed class TokenRateLimitTests
{
    private const string Engine = "rl-engine";
    private const string EngineAccount = "svc.rl";

    [Fact]
    public async Task Token_requests_over_the_per_address_budget_get_429_before_any_secret_is_checked_even_with_good_credentials()
    {
        // One request a minute: a burst of one, the next token 60 s later.
        await using var s = await StartAsync(o => o.Access.RateLimits.TokenPerMinute = 1);
        var secret = await AddEngineAsync(s);
        var clients = s.Service<OAuthClients>();
        var limit = s.Service<OAuthRateLimit>();
        var checksBefore = clients.SecretChecks;

        var (first, firstBody) = await s.ClientCredentialsAsync(Engine, secret + "x", "system/*.rs");
        TokenEndpointTests.AssertOAuthError(first, firstBody, "invalid_client");
        Assert.Equal(checksBefore + 1, clients.SecretChecks);

        for (var i = 0; i < 5; i++)
        {
            await AssertThrottledAsync(await PostTokenAsync(s, Engine, secret + "x"));
        }
        await AssertThrottledAsync(await PostTokenAsync(s, "no-such-client", "wlcs_guess"));
        // The right secret waits too: the limit is decided before the credentials are looked at.
        await AssertThrottledAsync(await PostTokenAsync(s, Engine, secret));

        using var http = new HttpClient { BaseAddress = new Uri(s.Origin) };
        var (_, challenge) = Pkce();
        var query = Query(("client_id", "some-app"), ("response_type", "code"), ("redirect_uri", "http://127.0.0.1:9/cb"),
            ("scope", "patient/*.rs"), ("code_challenge", challenge), ("code_challenge_method", "S256"));
        await AssertThrottledAsync(await http.GetAsync("/connect/authorize?" + query));
        await AssertThrottledAsync(await http.GetAsync("/console/authorize?" + query));

        Assert.Equal(checksBefore + 1, clients.SecretChecks);
        Assert.Equal(9, limit.Refused);
        // Other routes are not this limit's business.
        Assert.Equal(HttpStatusCode.OK, (await http.GetAsync("/fhir/metadata")).StatusCode);
    }

    [Fact]
    public async Task After_retry_after_the_address_may_ask_again_and_only_admitted_requests_checked_a_secret()
    {
        // A burst of ten, then one a second.
        await using var s = await StartAsync(o => o.Access.RateLimits.TokenPerMinute = 60);
        var secret = await AddEngineAsync(s);
        var clients = s.Service<OAuthClients>();
        var checksBefore = clients.SecretChecks;

        var admitted = 0;
        HttpResponseMessage? refused = null;
        for (var i = 0; i < 100 && refused is null; i++)
        {
            var response = await PostTokenAsync(s, Engine, secret + "x");
            if (response.StatusCode == HttpStatusCode.TooManyRequests) refused = response;
            else admitted++;
        }
        Assert.NotNull(refused);
        await AssertThrottledAsync(refused);
        Assert.Equal(checksBefore + admitted, clients.SecretChecks);

        // Waiting as told is enough (a slow machine only waits longer, which refills more).
        HttpResponseMessage good;
        var tries = 0;
        do
        {
            var wait = int.Parse((refused ?? throw new InvalidOperationException()).Headers.RetryAfter!.ToString(), CultureInfo.InvariantCulture);
            await Task.Delay(TimeSpan.FromSeconds(wait) + TimeSpan.FromMilliseconds(100));
            good = await PostTokenAsync(s, Engine, secret);
            refused = good;
        }
        while (good.StatusCode == HttpStatusCode.TooManyRequests && ++tries < 5);
        Assert.Equal(HttpStatusCode.OK, good.StatusCode);
        Assert.NotNull((string?)JsonNode.Parse(await good.Content.ReadAsStringAsync())!["access_token"]);
    }

    [Fact]
    public async Task Oauth_requests_are_not_counted_again_by_the_anonymous_limit_and_zero_turns_their_own_limit_off()
    {
        await using var s = await StartAsync(o =>
        {
            o.Access.RateLimits.AnonymousPerMinute = 1;
            o.Access.RateLimits.TokenPerMinute = 0;
        });
        var secret = await AddEngineAsync(s);

        for (var i = 0; i < 12; i++)
        {
            var (status, body) = await s.ClientCredentialsAsync(Engine, secret + "x", "system/*.rs");
            TokenEndpointTests.AssertOAuthError(status, body, "invalid_client");
        }
        Assert.Equal(HttpStatusCode.OK, (await s.ClientCredentialsAsync(Engine, secret, "system/*.rs")).Status);

        // The anonymous budget (one) is still whole for everything else from this address.
        using var anonymous = new HttpClient { BaseAddress = s.Fhir };
        Assert.Equal(HttpStatusCode.Unauthorized, (await anonymous.GetAsync("Patient/x")).StatusCode);
        Assert.Equal(HttpStatusCode.TooManyRequests, (await anonymous.GetAsync("Patient/x")).StatusCode);
    }

    [Fact]
    public async Task The_console_sign_in_post_is_refused_by_the_anonymous_limit_before_the_password_is_checked()
    {
        // The sign-in form is an endpoint, so the general limiter (after authentication, by address) sees it first.
        await using var s = await StartAsync(o => o.Access.RateLimits.AnonymousPerMinute = 1);
        using var browser = s.Browser();
        var page = await browser.GetAsync("/console/sign-in");
        Assert.Equal(HttpStatusCode.OK, page.StatusCode);
        var response = await browser.PostAsync("/console/sign-in", new FormUrlEncodedContent(Form(
            ("_handler", "sign-in"), ("Input.UserName", "nobody"), ("Input.Password", "wrong password"))));
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        Assert.True(response.Headers.RetryAfter is not null);
    }

    [Fact]
    public async Task Every_endpoint_openiddict_serves_is_covered_by_the_limit()
    {
        await using var s = await StartAsync();
        var options = s.Service<IOptions<OpenIddictServerOptions>>().Value;
        var endpoints = typeof(OpenIddictServerOptions).GetProperties()
            .Where(p => p.Name.EndsWith("EndpointUris", StringComparison.Ordinal) && typeof(IEnumerable<Uri>).IsAssignableFrom(p.PropertyType))
            .SelectMany(p => (IEnumerable<Uri>)p.GetValue(options)!)
            .Select(u => u.IsAbsoluteUri ? u.AbsolutePath : "/" + u.OriginalString.TrimStart('/'))
            .ToList();

        Assert.Contains("/connect/token", endpoints);
        Assert.Contains("/.well-known/openid-configuration", endpoints);
        Assert.All(endpoints, e => Assert.True(OAuthRateLimit.Covers(new PathString(e)), e + " is served before the limiter but not limited"));
    }

    [Theory]
    [InlineData("/connect/token", true)]
    [InlineData("/CONNECT/Token/", true)]
    [InlineData("/connect/authorize", true)]
    [InlineData("/console/authorize", true)]
    [InlineData("/.well-known/jwks", true)]
    [InlineData("/.well-known/oauth-authorization-server", true)]
    [InlineData("/connectx", false)]
    [InlineData("/console/sign-in", false)]
    [InlineData("/.well-known/smart-configuration", false)]
    [InlineData("/fhir/metadata", false)]
    public void The_limit_covers_the_oauth_paths_only(string path, bool covered) =>
        Assert.Equal(covered, OAuthRateLimit.Covers(new PathString(path)));

    [Theory]
    [InlineData("203.0.113.7", "203.0.113.7")]
    [InlineData("::ffff:203.0.113.7", "203.0.113.7")]
    [InlineData("2001:db8:1:2:3:4:5:6", "2001:db8:1:2::/64")]
    [InlineData("2001:db8:1:2:ffff::1", "2001:db8:1:2::/64")]
    public void Addresses_are_partitioned_ipv4_by_address_and_ipv6_by_their_64(string address, string key) =>
        Assert.Equal(key, OAuthRateLimit.AddressKey(IPAddress.Parse(address)));

    [Fact]
    public void The_token_limit_is_validated_like_the_others()
    {
        Assert.Empty(new RateLimitOptions { TokenPerMinute = 0 }.Validate());
        Assert.Contains(new RateLimitOptions { TokenPerMinute = -1 }.Validate(), p => p.Contains("TokenPerMinute", StringComparison.Ordinal));
        Assert.Contains(new RateLimitOptions { TokenPerMinute = 1_000_001 }.Validate(), p => p.Contains("TokenPerMinute", StringComparison.Ordinal));
    }

    private static async Task<string> AddEngineAsync(OAuthServer s)
    {
        await s.CreateAccountAsync(Account.New(EngineAccount, "Engine") with { Roles = ["integration_engine"] }, null);
        return (await s.AddClientAsync(Engine, "client_credentials", ["system/*.rs"], EngineAccount))!;
    }

    private static async Task<HttpResponseMessage> PostTokenAsync(OAuthServer s, string clientId, string secret)
    {
        using var http = new HttpClient();
        return await http.PostAsync(s.Origin + "/connect/token", new FormUrlEncodedContent(Form(
            ("grant_type", "client_credentials"), ("client_id", clientId), ("client_secret", secret), ("scope", "system/*.rs"))));
    }

    private static async Task AssertThrottledAsync(HttpResponseMessage response)
    {
        Assert.Equal(HttpStatusCode.TooManyRequests, response.StatusCode);
        var retry = int.Parse(response.Headers.GetValues("Retry-After").Single(), CultureInfo.InvariantCulture);
        Assert.InRange(retry, 1, 60);
        Assert.StartsWith("application/json", response.Content.Headers.ContentType?.ToString() ?? "", StringComparison.Ordinal);
        var body = JsonNode.Parse(await response.Content.ReadAsStringAsync())!.AsObject();
        Assert.Equal("temporarily_unavailable", (string?)body["error"]);
        Assert.Contains("Too many requests", (string?)body["error_description"], StringComparison.Ordinal);
        Assert.Equal(["error", "error_description"], body.Select(p => p.Key).Order());
    }
}
