using System.Security.Cryptography;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.AspNetCore.Hosting;
using Microsoft.IdentityModel.JsonWebTokens;
using Microsoft.IdentityModel.Tokens;

namespace Wardline.Server.Tests.Modules.Access.OAuth;

/// <summary>
/// A small real OpenID Connect provider on 127.0.0.1: its discovery document and JWKS (an RSA test key)
/// over HTTP, and tokens minted in-process as it would issue them.
/// </summary>
public sealed class TestOidcProvider : IAsyncDisposable
{
    private readonly RSA _rsa = RSA.Create(2048);
    private readonly WebApplication _app;

    private TestOidcProvider(WebApplication app, string issuer)
    {
        _app = app;
        Issuer = issuer;
        Key = new RsaSecurityKey(_rsa) { KeyId = "test-oidc-1" };
    }

    public string Issuer { get; }

    public RsaSecurityKey Key { get; }

    public static async Task<TestOidcProvider> StartAsync()
    {
        var issuer = $"http://127.0.0.1:{OAuthServer.FreePort()}";
        var builder = WebApplication.CreateSlimBuilder();
        builder.WebHost.UseUrls(issuer);
        var app = builder.Build();
        var provider = new TestOidcProvider(app, issuer);
        app.MapGet("/.well-known/openid-configuration", () => Results.Json(new Dictionary<string, object>
        {
            ["issuer"] = issuer,
            ["jwks_uri"] = issuer + "/jwks",
            ["authorization_endpoint"] = issuer + "/authorize",
            ["token_endpoint"] = issuer + "/token",
            ["response_types_supported"] = new[] { "code" },
            ["subject_types_supported"] = new[] { "public" },
            ["id_token_signing_alg_values_supported"] = new[] { "RS256" },
        }));
        app.MapGet("/jwks", () =>
        {
            var jwk = JsonWebKeyConverter.ConvertFromRSASecurityKey(new RsaSecurityKey(provider._rsa.ExportParameters(false)) { KeyId = provider.Key.KeyId });
            return Results.Json(new
            {
                keys = new[] { new Dictionary<string, string> { ["kty"] = jwk.Kty, ["kid"] = jwk.Kid, ["use"] = "sig", ["alg"] = "RS256", ["n"] = jwk.N, ["e"] = jwk.E } },
            });
        });
        await app.StartAsync();
        return provider;
    }

    public string Mint(string audience, IDictionary<string, object> claims, TimeSpan? lifetime = null)
    {
        var now = DateTime.UtcNow;
        return new JsonWebTokenHandler().CreateToken(new SecurityTokenDescriptor
        {
            Issuer = Issuer,
            Audience = audience,
            IssuedAt = now,
            NotBefore = now,
            Expires = now.Add(lifetime ?? TimeSpan.FromMinutes(10)),
            Claims = claims,
            SigningCredentials = new SigningCredentials(Key, SecurityAlgorithms.RsaSha256),
        });
    }

    public async ValueTask DisposeAsync()
    {
        await _app.StopAsync();
        await _app.DisposeAsync();
        _rsa.Dispose();
    }
}
