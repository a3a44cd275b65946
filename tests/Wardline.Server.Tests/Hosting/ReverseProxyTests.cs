using System.Net;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Hosting.Server;
using Microsoft.AspNetCore.Hosting.Server.Features;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Hosting;

/// <summary>
/// Behind a reverse proxy of <c>Wardline:TrustedProxies</c> the caller is the forwarded client: its own rate-limit
/// budget, its own network in the policy, its own address in the ledger. The test's requests come from 127.0.0.1, which
/// plays the proxy when it is listed; when it is not, its X-Forwarded-For is a forgery and changes nothing.
/// </summary>
public sealed class ReverseProxyTests
{
    private const string Client = "203.0.113.7";

    [Fact]
    public async Task Behind_a_trusted_proxy_each_forwarded_client_has_its_own_token_budget_ipv6_by_its_64()
    {
        await using var s = await BudgetServer.StartAsync(o =>
        {
            o.TrustedProxies.Add("127.0.0.1");
            o.TrustedProxies.Add("10.0.0.0/8");
        });

        Assert.NotEqual(HttpStatusCode.TooManyRequests, await s.TokenAsync("203.0.113.10"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await s.TokenAsync("203.0.113.10"));
        Assert.NotEqual(HttpStatusCode.TooManyRequests, await s.TokenAsync("203.0.113.11"));
        // Through a second trusted proxy (10.9.9.9) the client is still 203.0.113.10, whose budget is spent.
        Assert.Equal(HttpStatusCode.TooManyRequests, await s.TokenAsync("203.0.113.10, 10.9.9.9"));
        // An address the client's own proxy added on the left is not believed: the first untrusted address from the right counts.
        Assert.Equal(HttpStatusCode.TooManyRequests, await s.TokenAsync("198.51.100.99, 203.0.113.10"));

        Assert.NotEqual(HttpStatusCode.TooManyRequests, await s.TokenAsync("2001:db8:1:2::1"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await s.TokenAsync("2001:db8:1:2:ffff::9"));
        Assert.NotEqual(HttpStatusCode.TooManyRequests, await s.TokenAsync("2001:db8:1:3::1"));
    }

    [Fact]
    public async Task The_anonymous_limit_counts_a_forwarded_ipv6_client_by_its_64_too()
    {
        await using var s = await BudgetServer.StartAsync(o =>
        {
            o.TrustedProxies.Add("127.0.0.1");
            o.Access.RateLimits.AnonymousPerMinute = 1;
        });

        Assert.Equal(HttpStatusCode.Unauthorized, await s.AnonymousReadAsync("2001:db8:1:2::1"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await s.AnonymousReadAsync("2001:db8:1:2::2"));
        Assert.Equal(HttpStatusCode.Unauthorized, await s.AnonymousReadAsync("2001:db8:1:3::1"));
        Assert.Equal(HttpStatusCode.Unauthorized, await s.AnonymousReadAsync(Client));
    }

    [Fact]
    public async Task Without_trusted_proxies_forwarded_clients_share_the_peers_budget()
    {
        await using var s = await BudgetServer.StartAsync(_ => { });

        Assert.NotEqual(HttpStatusCode.TooManyRequests, await s.TokenAsync("203.0.113.10"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await s.TokenAsync("203.0.113.11"));
    }

    [Fact]
    public async Task A_forged_header_from_a_peer_that_is_not_a_trusted_proxy_cannot_escape_its_budget()
    {
        await using var s = await BudgetServer.StartAsync(o => o.TrustedProxies.Add("192.0.2.1"));

        Assert.NotEqual(HttpStatusCode.TooManyRequests, await s.TokenAsync("203.0.113.10"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await s.TokenAsync("203.0.113.11"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await s.TokenAsync(null));
    }

    [Fact]
    public async Task Aspnetcores_own_forwarded_headers_switch_does_not_make_every_peer_a_trusted_proxy()
    {
        // The documented ASPNETCORE_FORWARDEDHEADERS_ENABLED=true, given here on the command line, would believe anyone's header.
        await using var s = await BudgetServer.StartAsync(_ => { }, "--ForwardedHeaders_Enabled=true");

        Assert.NotEqual(HttpStatusCode.TooManyRequests, await s.TokenAsync("203.0.113.10"));
        Assert.Equal(HttpStatusCode.TooManyRequests, await s.TokenAsync("203.0.113.11"));
    }

    [Fact]
    public async Task The_ledger_records_the_forwarded_client_of_a_trusted_proxy_and_the_peer_for_a_forged_or_malformed_header()
    {
        var dir = TempDir();
        var options = new WardlineOptions { DataDirectory = dir };
        options.TrustedProxies.Add("127.0.0.1");
        await using (var s = await TestServer.StartAsync(options))
        {
            var id = await s.Client.CreateAsync("Patient", FhirTest.Patient("Proxied"));

            Assert.Equal(HttpStatusCode.OK, (await s.Client.SendAsync(Forwarded(HttpMethod.Get, "Patient/" + id, Client))).StatusCode);
            var perRead = await AccessesFromAsync(s, id, Client);
            Assert.True(perRead >= 1, "the read is not recorded under the forwarded client's address");

            var before = await AccessesFromAsync(s, id, "127.0.0.1");
            Assert.Equal(HttpStatusCode.OK, (await s.Client.SendAsync(Forwarded(HttpMethod.Get, "Patient/" + id, "not-an-address"))).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await s.Client.SendAsync(Forwarded(HttpMethod.Get, "Patient/" + id, "198.51.100.1, garbage"))).StatusCode);
            Assert.Equal(before + 2 * perRead, await AccessesFromAsync(s, id, "127.0.0.1"));
            Assert.Equal(0, await AccessesFromAsync(s, id, "198.51.100.1"));

            // Azure Application Gateway forwards the client's port too.
            Assert.Equal(HttpStatusCode.OK, (await s.Client.SendAsync(Forwarded(HttpMethod.Get, "Patient/" + id, Client + ":50123"))).StatusCode);
            Assert.Equal(2 * perRead, await AccessesFromAsync(s, id, Client));
        }
        Directory.Delete(dir, recursive: true);

        dir = TempDir();
        options = new WardlineOptions { DataDirectory = dir };
        options.TrustedProxies.Add("192.0.2.1");
        await using (var s = await TestServer.StartAsync(options))
        {
            var id = await s.Client.CreateAsync("Patient", FhirTest.Patient("Forged"));

            Assert.Equal(HttpStatusCode.OK, (await s.Client.SendAsync(Forwarded(HttpMethod.Get, "Patient/" + id, Client))).StatusCode);
            Assert.Equal(0, await AccessesFromAsync(s, id, Client));
            Assert.True(await AccessesFromAsync(s, id, "127.0.0.1") >= 1);
        }
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task A_forwarded_client_outside_the_internal_networks_is_external_to_the_policy_though_its_proxy_is_internal()
    {
        var dir = TempDir();
        Directory.CreateDirectory(dir);
        var policy = Path.Combine(dir, "outside.yaml");
        await File.WriteAllTextAsync(policy, """
            version: 1
            roles:
              tester: {title: Tester, clinical: true, description: "Test-only role."}
            rules:
              - id: tester-all
                effect: permit
                description: The tester may do everything.
                actions: any
                when: {role: [tester]}
              - id: nothing-from-outside
                effect: forbid
                description: Nothing from the external network.
                actions: any
                when: {network: external}
            """);
        var options = new WardlineOptions { DataDirectory = dir };
        options.Access.PolicyPath = policy;
        options.Access.InternalNetworks.Clear();
        options.Access.InternalNetworks.Add("127.0.0.0/8");
        options.Access.InternalNetworks.Add("10.0.0.0/8");
        options.TrustedProxies.Add("127.0.0.1");
        await using (var s = await TestServer.StartAsync(options))
        {
            // The server made the token's account without roles.
            Assert.IsType<AccountResult.Done>(await s.Service<AccountService>().UpdateAsync("tester", a => a with { Roles = ["tester"] }, "test", CancellationToken.None));

            var inside = await s.Client.PostAsync("Patient", FhirTest.Json(FhirTest.Patient("Inside")));
            Assert.True(inside.StatusCode == HttpStatusCode.Created, await inside.Content.ReadAsStringAsync());
            Assert.Equal(HttpStatusCode.Created, (await s.Client.SendAsync(Forwarded(HttpMethod.Post, "Patient", "10.20.30.40", FhirTest.Patient("Ward")))).StatusCode);
            var outside = await s.Client.SendAsync(Forwarded(HttpMethod.Post, "Patient", Client, FhirTest.Patient("Outside")));
            Assert.Equal(HttpStatusCode.Forbidden, outside.StatusCode);
            Assert.Equal(1, await s.Service<RecordStore>().CountAsync(
                $"SELECT COUNT(*) FROM ledger_entries WHERE type = 'access' AND permitted = 0 AND rule = 'nothing-from-outside' AND source = '{Client}'", CancellationToken.None));
        }
        Directory.Delete(dir, recursive: true);
    }

    [Fact]
    public async Task A_forwarded_https_request_from_a_trusted_proxy_gets_hsts_and_a_forged_one_does_not()
    {
        await using var trusted = await BudgetServer.StartAsync(o => o.TrustedProxies.Add("127.0.0.1"));
        await using var untrusted = await BudgetServer.StartAsync(o => o.TrustedProxies.Add("192.0.2.1"));

        Assert.True((await trusted.MetadataAsync("https")).Headers.Contains("Strict-Transport-Security"));
        Assert.False((await trusted.MetadataAsync(null)).Headers.Contains("Strict-Transport-Security"));
        Assert.False((await untrusted.MetadataAsync("https")).Headers.Contains("Strict-Transport-Security"));
    }

    [Theory]
    [InlineData("proxy.hospital.example")]
    [InlineData("10.0.0.1/8")]
    [InlineData("010.020.030.005")]
    [InlineData("010.0.0.0/8")]
    [InlineData("0x0a.0.0.5")]
    [InlineData("10.0.0.0/33")]
    [InlineData("10.1")]
    [InlineData("10.1/8")]
    [InlineData("0.0.0.0/0")]
    [InlineData("::/0")]
    [InlineData("")]
    public void A_bad_trusted_proxy_entry_stops_the_server_at_start_naming_the_setting(string entry)
    {
        var options = new WardlineOptions { DataDirectory = Path.Combine(Path.GetTempPath(), "wl-proxy-" + Guid.NewGuid().ToString("N")) };
        options.TrustedProxies.Add(entry);

        var refused = Assert.Throws<OptionsValidationException>(() => WardlineHost.Build(options));

        Assert.Contains($"Wardline:TrustedProxies: '{entry}'", refused.Message, StringComparison.Ordinal);
        Assert.False(Directory.Exists(options.DataDirectory));
    }

    [Fact]
    public void Trusted_proxies_are_addresses_or_networks_bound_from_the_wardline_section()
    {
        var config = new ConfigurationBuilder().AddInMemoryCollection(new Dictionary<string, string?>
        {
            ["Wardline:DataDirectory"] = "/var/lib/wardline",
            ["Wardline:TrustedProxies:0"] = "10.0.0.5",
            ["Wardline:TrustedProxies:1"] = "10.1.0.0/16",
            ["Wardline:TrustedProxies:2"] = "2001:db8::7",
            ["Wardline:TrustedProxies:3"] = "fd00:1::/64",
            ["Wardline:TrustedProxies:4"] = "::ffff:10.0.0.6",
        }).Build();
        var options = new WardlineOptions();
        config.GetSection(WardlineOptions.Section).Bind(options);

        Assert.Equal(5, options.TrustedProxies.Count);
        Assert.DoesNotContain(options.Validate(), p => p.Contains("TrustedProxies", StringComparison.Ordinal));
    }

    private static HttpRequestMessage Forwarded(HttpMethod method, string url, string forwardedFor, string? json = null)
    {
        var request = new HttpRequestMessage(method, url) { Content = json is null ? null : FhirTest.Json(json) };
        request.Headers.TryAddWithoutValidation("X-Forwarded-For", forwardedFor);
        return request;
    }

    private static Task<long> AccessesFromAsync(TestServer s, string id, string source) =>
        s.Service<RecordStore>().CountAsync(
            $"SELECT COUNT(*) FROM ledger_entries WHERE type = 'access' AND res_id = '{id}' AND source = '{source}'", CancellationToken.None);

    private static string TempDir() => Path.Combine(Path.GetTempPath(), "wl-proxy-" + Guid.NewGuid().ToString("N")[..8]);

    /// <summary>A server whose OAuth endpoints take one request a minute per address (a burst of one), and nothing else is limited.</summary>
    private sealed class BudgetServer : IAsyncDisposable
    {
        private readonly WebApplication _app;
        private readonly string _dir;
        private readonly HttpClient _http;

        private BudgetServer(WebApplication app, string dir, string origin)
        {
            _app = app;
            _dir = dir;
            _http = new HttpClient { BaseAddress = new Uri(origin), Timeout = TimeSpan.FromSeconds(60) };
        }

        public static async Task<BudgetServer> StartAsync(Action<WardlineOptions> configure, params string[] args)
        {
            var dir = TempDir();
            var options = new WardlineOptions { DataDirectory = dir };
            options.Urls.Add("http://127.0.0.1:0");
            options.Access.PolicyPath = TestServer.AllAccessPolicy;
            options.Access.RateLimits.TokenPerMinute = 1;
            options.Access.RateLimits.AnonymousPerMinute = 0;
            options.Access.RateLimits.UserPerMinute = 0;
            configure(options);
            var app = WardlineHost.Build(options, args);
            await app.StartAsync();
            var origin = app.Services.GetRequiredService<IServer>().Features.Get<IServerAddressesFeature>()!.Addresses.First();
            return new BudgetServer(app, dir, origin);
        }

        /// <summary>A client-credentials request with a client that does not exist: refused by the server (400/401) or by the limit (429).</summary>
        public async Task<HttpStatusCode> TokenAsync(string? forwardedFor)
        {
            using var request = new HttpRequestMessage(HttpMethod.Post, "/connect/token")
            {
                Content = new FormUrlEncodedContent(new Dictionary<string, string>
                {
                    ["grant_type"] = "client_credentials",
                    ["client_id"] = "no-such-client",
                    ["client_secret"] = "wlcs_guess",
                }),
            };
            if (forwardedFor is not null) request.Headers.TryAddWithoutValidation("X-Forwarded-For", forwardedFor);
            using var response = await _http.SendAsync(request);
            return response.StatusCode;
        }

        /// <summary>A FHIR read without a token: 401, or 429 from the anonymous limit.</summary>
        public async Task<HttpStatusCode> AnonymousReadAsync(string forwardedFor)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/fhir/Patient/x");
            request.Headers.TryAddWithoutValidation("X-Forwarded-For", forwardedFor);
            using var response = await _http.SendAsync(request);
            return response.StatusCode;
        }

        public async Task<HttpResponseMessage> MetadataAsync(string? forwardedProto)
        {
            using var request = new HttpRequestMessage(HttpMethod.Get, "/fhir/metadata");
            if (forwardedProto is not null) request.Headers.TryAddWithoutValidation("X-Forwarded-Proto", forwardedProto);
            var response = await _http.SendAsync(request);
            Assert.Equal(HttpStatusCode.OK, response.StatusCode);
            return response;
        }

        public async ValueTask DisposeAsync()
        {
            _http.Dispose();
            await _app.StopAsync();
            await _app.DisposeAsync();
            Directory.Delete(_dir, recursive: true);
        }
    }
}
