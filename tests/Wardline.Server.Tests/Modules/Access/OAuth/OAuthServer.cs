using System.Net;
using System.Net.Http.Headers;
using System.Net.Sockets;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json.Nodes;
using System.Text.RegularExpressions;
using Microsoft.AspNetCore.Builder;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Access.OAuth;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.OAuth;

/// <summary>
/// A real Wardline server on SQLite under the built-in hospital policy, on a fixed loopback port so its
/// issuer (the first server URL, the default) is the address clients reach. Physicians may sign in to
/// the console with a password alone, so the code flow can be driven through the real login form.
/// </summary>
public sealed partial class OAuthServer : IAsyncDisposable
{
    public const string Password = "correct horse battery staple 42";

    private OAuthServer(TestStore store, WebApplication app, string origin)
    {
        Store = store;
        App = app;
        Origin = origin;
    }

    public TestStore Store { get; }

    public WebApplication App { get; }

    /// <summary>e.g. http://127.0.0.1:41234 (no trailing slash).</summary>
    public string Origin { get; }

    public string Issuer => Origin + "/";

    public string Audience => Origin + "/fhir";

    public Uri Fhir => new(Origin + "/fhir/");

    public T Service<T>() where T : notnull => App.Services.GetRequiredService<T>();

    public static async Task<OAuthServer> StartAsync(Action<WardlineOptions>? configure = null) =>
        await StartAsync(await TestStore.CreateAsync(StoreKind.Sqlite), null, configure);

    /// <summary>A server on <paramref name="store"/>; with <paramref name="options"/> (e.g. <see cref="TestStore.SharedOptions"/>) a second server on the same store, which it does not own.</summary>
    public static async Task<OAuthServer> StartAsync(TestStore store, WardlineOptions? options, Action<WardlineOptions>? configure = null)
    {
        var policy = Path.Combine(store.Folder, "hospital-policy.yaml");
        if (!File.Exists(policy)) await File.WriteAllTextAsync(policy, PolicyHolder.BuiltInText());
        var owner = options is null;
        options ??= store.Options;
        options.Access.PolicyPath = policy;
        options.Access.RateLimits.UserPerMinute = 0;
        options.Access.RateLimits.AnonymousPerMinute = 0;
        options.Access.RateLimits.ClientPerMinute = 0;
        options.Access.RateLimits.TokenPerMinute = 0;
        var origin = $"http://127.0.0.1:{FreePort()}";
        options.Urls.Clear();
        options.Urls.Add(origin);
        configure?.Invoke(options);
        var app = WardlineHost.Build(options, configure: b => b.Services.Configure<SignInOptions>(o => o.MfaOptionalRoles.Add("physician")));
        await app.StartAsync();
        return new OAuthServer(store, app, origin) { _ownsStore = owner };
    }

    public static int FreePort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        return ((IPEndPoint)listener.LocalEndpoint).Port;
    }

    internal async Task CreateAccountAsync(Account account, string? password = Password)
    {
        var result = await Service<AccountService>().CreateAsync(account, password, "test", CancellationToken.None);
        Assert.IsType<AccountResult.Done>(result);
    }

    /// <summary>A tier-1 physician: the policy lets them read and write every clinical record.</summary>
    internal Task CreatePhysicianAsync(string name, int tier = 1) =>
        CreateAccountAsync(Account.New(name, name) with { Roles = ["physician"], Tier = tier, Departments = ["cardiology"] });

    /// <summary>Registers a client; returns its secret (null for a public app).</summary>
    internal async Task<string?> AddClientAsync(string id, string grant, string[] scopes, string? account = null, string[]? redirects = null, bool confidential = true)
    {
        var (added, secret) = await Service<OAuthClients>().AddAsync(
            new OAuthClient(id, id, confidential, [grant], redirects ?? [], scopes, account), CancellationToken.None);
        Assert.True(added);
        return secret;
    }

    public HttpClient Client(string? token = null)
    {
        var client = new HttpClient { BaseAddress = Fhir, Timeout = TimeSpan.FromSeconds(60) };
        if (token is not null) client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>POSTs a form to /connect/token.</summary>
    public async Task<(HttpStatusCode Status, JsonObject Body)> TokenRequestAsync(IEnumerable<KeyValuePair<string, string>> form)
    {
        using var http = new HttpClient();
        var response = await http.PostAsync(Origin + "/connect/token", new FormUrlEncodedContent(form));
        var text = await response.Content.ReadAsStringAsync();
        Assert.StartsWith("application/json", response.Content.Headers.ContentType?.ToString() ?? "", StringComparison.Ordinal);
        return (response.StatusCode, JsonNode.Parse(text)!.AsObject());
    }

    public Task<(HttpStatusCode Status, JsonObject Body)> ClientCredentialsAsync(string clientId, string? secret, string scope) =>
        TokenRequestAsync(Form(("grant_type", "client_credentials"), ("client_id", clientId), ("client_secret", secret), ("scope", scope)));

    public static IEnumerable<KeyValuePair<string, string>> Form(params (string Key, string? Value)[] fields) =>
        fields.Where(f => f.Value is not null).Select(f => KeyValuePair.Create(f.Key, f.Value!));

    /// <summary>The rows that hold records (the access log is not counted: refusals are audited).</summary>
    public async Task<long> StoredRowsAsync()
    {
        var store = Service<RecordStore>();
        long rows = 0;
        foreach (var table in new[] { "resource_versions", "resources", "data_keys" })
        {
            rows += await store.CountAsync($"SELECT COUNT(*) FROM {table}", CancellationToken.None);
        }
        return rows;
    }

    /// <summary>A browser: a cookie jar and no automatic redirects, so each hop can be looked at.</summary>
    public HttpClient Browser() =>
        new(new HttpClientHandler { CookieContainer = new CookieContainer(), AllowAutoRedirect = false, UseCookies = true })
        {
            BaseAddress = new Uri(Origin),
            Timeout = TimeSpan.FromSeconds(60),
        };

    /// <summary>Signs in through the console's login form (password only: physicians need no second factor here).</summary>
    public static async Task SignInAsync(HttpClient browser, string name, string password = Password)
    {
        var page = await (await browser.GetAsync("/console/sign-in")).Content.ReadAsStringAsync();
        var antiforgery = AntiforgeryField().Match(page);
        Assert.True(antiforgery.Success, "the sign-in page has no anti-forgery token");
        var response = await browser.PostAsync("/console/sign-in", new FormUrlEncodedContent(Form(
            ("_handler", "sign-in"), ("__RequestVerificationToken", WebUtility.HtmlDecode(antiforgery.Groups[1].Value)),
            ("Input.UserName", name), ("Input.Password", password))));
        Assert.True(response.StatusCode is HttpStatusCode.Redirect or HttpStatusCode.Found or HttpStatusCode.SeeOther,
            $"sign-in answered {(int)response.StatusCode}");
        Assert.EndsWith("/console", response.Headers.Location!.OriginalString, StringComparison.Ordinal);
    }

    public static (string Verifier, string Challenge) Pkce()
    {
        var verifier = Base64Url(RandomNumberGenerator.GetBytes(32));
        return (verifier, Base64Url(SHA256.HashData(Encoding.ASCII.GetBytes(verifier))));
    }

    /// <summary>
    /// Runs the browser half of the code flow: /connect/authorize (handed to /console/authorize) and
    /// back to the redirect URI. Returns the final Location (with code or error).
    /// </summary>
    public static async Task<Uri> AuthorizeAsync(HttpClient browser, string query)
    {
        var first = await browser.GetAsync("/connect/authorize?" + query);
        Assert.Equal(HttpStatusCode.Redirect, first.StatusCode);
        var second = await browser.GetAsync(first.Headers.Location);
        Assert.True(second.StatusCode is HttpStatusCode.Redirect or HttpStatusCode.Found or HttpStatusCode.SeeOther,
            $"authorize answered {(int)second.StatusCode}: {await second.Content.ReadAsStringAsync()}");
        return second.Headers.Location!;
    }

    public static string Query(params (string Key, string? Value)[] fields) =>
        string.Join('&', fields.Where(f => f.Value is not null).Select(f => f.Key + "=" + Uri.EscapeDataString(f.Value!)));

    public static string? Parameter(Uri uri, string name)
    {
        foreach (var pair in uri.Query.TrimStart('?').Split('&', StringSplitOptions.RemoveEmptyEntries))
        {
            var eq = pair.IndexOf('=', StringComparison.Ordinal);
            if (eq > 0 && Uri.UnescapeDataString(pair[..eq]) == name) return Uri.UnescapeDataString(pair[(eq + 1)..].Replace('+', ' '));
        }
        return null;
    }

    /// <summary>Mints a JWT with any key and claims, for forged, expired and misaddressed tokens.</summary>
    public static string Mint(SigningCredentials credentials, string issuer, string audience, string subject, DateTimeOffset expires,
        string type = AccessTokens.TokenType, IDictionary<string, object>? extra = null)
    {
        var claims = new Dictionary<string, object>(extra ?? new Dictionary<string, object>()) { ["sub"] = subject };
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            TokenType = type,
            Issuer = issuer,
            Audience = audience,
            IssuedAt = expires.AddHours(-1).UtcDateTime,
            NotBefore = expires.AddHours(-1).UtcDateTime,
            Expires = expires.UtcDateTime,
            Claims = claims,
            SigningCredentials = credentials,
        });
    }

    /// <summary>The server's own signing key (as the CLI opens it: store plus keyring).</summary>
    internal async Task<SigningCredentials> ServerKeyAsync() => (await Service<TokenKeys>().GetAsync(CancellationToken.None)).SigningCredentials;

    public static JsonObject Payload(string jwt) =>
        JsonNode.Parse(Base64UrlEncoder.Decode(jwt.Split('.')[1]))!.AsObject();

    public static string Base64Url(byte[] bytes) => Convert.ToBase64String(bytes).TrimEnd('=').Replace('+', '-').Replace('/', '_');

    private bool _ownsStore = true;

    public async ValueTask DisposeAsync()
    {
        await App.StopAsync();
        await App.DisposeAsync();
        if (_ownsStore) await Store.DisposeAsync();
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();
}
