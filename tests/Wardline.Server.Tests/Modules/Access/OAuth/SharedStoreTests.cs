using System.Net;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Access.OAuth;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Access.OAuth.OAuthServer;

namespace Wardline.Server.Tests.Modules.Access.OAuth;

/// <summary>
/// Two servers sharing one store and keyring (PostgreSQL, and SQLite for the sealed-key check) behind one
/// issuer: a token or code of either works on both, and a code redeemed on one is spent on both.
/// </summary>
public sealed class SharedStoreTests
{
    private const string App = "shared-app";
    private const string Redirect = "http://127.0.0.1:9/cb";

    [Theory]
    [InlineData(StoreKind.Postgres)]
    [InlineData(StoreKind.Sqlite)]
    public async Task Servers_sharing_a_store_sign_and_validate_with_one_key_and_spend_each_code_once(StoreKind kind)
    {
        await using var store = await TestStore.CreateAsync(kind);
        var issuer = $"http://127.0.0.1:{FreePort()}/";
        await using var a = await StartAsync(store, null, o => o.Access.Issuer = issuer);
        await using var b = await StartAsync(store, store.SharedOptions(), o => o.Access.Issuer = issuer);
        await a.CreatePhysicianAsync("dr.shared");
        await a.CreateAccountAsync(Account.New("svc.shared", "Shared engine") with { Roles = ["integration_engine"] }, null);
        var secret = await a.AddClientAsync("shared-engine", "client_credentials", ["system/*.rs"], "svc.shared");
        await a.AddClientAsync(App, "authorization_code", ["user/*.rs"], redirects: [Redirect], confidential: false);

        var (fromA, bodyA) = await a.ClientCredentialsAsync("shared-engine", secret, "system/*.rs");
        var (fromB, bodyB) = await b.ClientCredentialsAsync("shared-engine", secret, "system/*.rs");
        Assert.Equal(HttpStatusCode.OK, fromA);
        Assert.Equal(HttpStatusCode.OK, fromB);
        using (var onB = b.Client((string)bodyA["access_token"]!))
        using (var onA = a.Client((string)bodyB["access_token"]!))
        {
            Assert.Equal(HttpStatusCode.OK, (await onB.GetAsync("Observation")).StatusCode);
            Assert.Equal(HttpStatusCode.OK, (await onA.GetAsync("Observation")).StatusCode);
        }

        using var browser = a.Browser();
        await SignInAsync(browser, "dr.shared");
        var (verifier, challenge) = Pkce();
        var back = await AuthorizeAsync(browser, Query(("response_type", "code"), ("client_id", App), ("redirect_uri", Redirect),
            ("scope", "user/*.rs"), ("code_challenge", challenge), ("code_challenge_method", "S256")));
        var redeem = Form(("grant_type", "authorization_code"), ("client_id", App), ("code", Parameter(back, "code")), ("redirect_uri", Redirect), ("code_verifier", verifier));
        var (first, issued) = await b.TokenRequestAsync(redeem);
        Assert.Equal(HttpStatusCode.OK, first);
        var token = (string)issued["access_token"]!;
        using (var onA = a.Client(token))
        {
            Assert.Equal(HttpStatusCode.OK, (await onA.GetAsync("Observation")).StatusCode);
        }

        var (replayed, error) = await a.TokenRequestAsync(redeem);
        TokenEndpointTests.AssertOAuthError(replayed, error, "invalid_grant");

        // The replay means the code leaked: the token issued for it the first time is revoked on both servers (RFC 6749 4.1.2).
        using (var onA = a.Client(token))
        using (var onB = b.Client(token))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await onA.GetAsync("Observation")).StatusCode);
            Assert.Equal(HttpStatusCode.Unauthorized, (await onB.GetAsync("Observation")).StatusCode);
        }
        // A second replay changes nothing, and another code of the same app and user still gives a working token.
        var (again, againError) = await a.TokenRequestAsync(redeem);
        TokenEndpointTests.AssertOAuthError(again, againError, "invalid_grant");
        (verifier, challenge) = Pkce();
        back = await AuthorizeAsync(browser, Query(("response_type", "code"), ("client_id", App), ("redirect_uri", Redirect),
            ("scope", "user/*.rs"), ("code_challenge", challenge), ("code_challenge_method", "S256")));
        var (fresh, freshBody) = await a.TokenRequestAsync(Form(("grant_type", "authorization_code"), ("client_id", App), ("code", Parameter(back, "code")),
            ("redirect_uri", Redirect), ("code_verifier", verifier)));
        Assert.Equal(HttpStatusCode.OK, fresh);
        using var freshClient = b.Client((string)freshBody["access_token"]!);
        Assert.Equal(HttpStatusCode.OK, (await freshClient.GetAsync("Observation")).StatusCode);
    }

    [Fact]
    public async Task The_signing_key_is_stored_sealed_never_in_the_clear()
    {
        await using var server = await StartAsync();
        var key = (await server.Service<TokenKeys>().GetAsync(CancellationToken.None)).Signing.ECDsa!;
        var privateScalar = key.ExportParameters(true).D!;
        var pkcs8 = key.ExportPkcs8PrivateKey();

        var dialect = server.Service<SqlDialect>();
        await using var c = await dialect.OpenAsync(CancellationToken.None);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT wrapped_key, sealed FROM oauth_keys";
        await using var r = await cmd.ExecuteReaderAsync();
        var rows = 0;
        while (await r.ReadAsync())
        {
            rows++;
            foreach (var column in new[] { (byte[])r.GetValue(0), (byte[])r.GetValue(1) })
            {
                Assert.Equal(-1, column.AsSpan().IndexOf(privateScalar));
                Assert.Equal(-1, column.AsSpan().IndexOf(pkcs8.AsSpan(pkcs8.Length - 32)));
            }
        }
        Assert.Equal(2, rows);
        foreach (var path in Directory.GetFiles(server.Store.Options.DataDirectory!, "wardline.db*"))
        {
            Assert.Equal(-1, (await File.ReadAllBytesAsync(path)).AsSpan().IndexOf(privateScalar));
        }
    }
}
