using System.Security.Claims;
using System.Text.Encodings.Web;
using Microsoft.AspNetCore.Authentication;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Microsoft.IdentityModel.JsonWebTokens;
using Wardline.Server.Modules.Access.OAuth;

namespace Wardline.Server.Modules.Access;

/// <summary>
/// The API's bearer scheme (the default). It picks the validator by the token's issuer: Wardline's own
/// tokens (OAuth server and `wardline token`) go to <see cref="AccessTokens.ValidateTokenAsync"/>; tokens of
/// the configured external OpenID Connect provider go to its JwtBearer scheme (<see cref="ExternalOidc"/>).
/// Either way the request's user is a fresh principal with only what the rest of the server reads:
/// the account name, "amr", "scope", "patient" and "client_id" (and, for an external user without a
/// local account, its mapped roles and departments). Every refusal is the same 401 with
/// <c>WWW-Authenticate: Bearer</c> and no reason.
/// </summary>
internal sealed class TokenAuthenticationHandler(
    IOptionsMonitor<AuthenticationSchemeOptions> options,
    ILoggerFactory logger,
    UrlEncoder encoder,
    AccessTokens tokens,
    TokenSettings settings)
    : AuthenticationHandler<AuthenticationSchemeOptions>(options, logger, encoder)
{
    public const string SchemeName = "WardlineToken";

    private static readonly string[] Carried = ["amr", "scope", "patient", "client_id"];

    protected override async Task<AuthenticateResult> HandleAuthenticateAsync()
    {
        var header = Request.Headers.Authorization.ToString();
        if (string.IsNullOrEmpty(header))
        {
            return AuthenticateResult.NoResult();
        }
        if (!header.StartsWith("Bearer ", StringComparison.OrdinalIgnoreCase))
        {
            return AuthenticateResult.Fail("unsupported authorization scheme");
        }
        var token = header["Bearer ".Length..].Trim();
        ClaimsIdentity? identity;
        if (settings.External is { } external && IssuedBy(token, external.Authority!))
        {
            var result = await Context.AuthenticateAsync(TokenSettings.ExternalScheme);
            identity = result.Succeeded ? await ExternalOidc.MapAsync(result.Principal, external, Context.RequestServices, Context.RequestAborted) : null;
        }
        else
        {
            identity = await tokens.ValidateTokenAsync(token, Context.RequestAborted) is { } validated ? Local(validated) : null;
        }
        // No detail: an attacker learns nothing about which part of the token was wrong.
        return identity is null
            ? AuthenticateResult.Fail("invalid token")
            : AuthenticateResult.Success(new AuthenticationTicket(new ClaimsPrincipal(identity), SchemeName));
    }

    private static ClaimsIdentity Local(ClaimsIdentity validated)
    {
        var claims = new List<Claim> { new(ClaimTypes.Name, validated.FindFirst("sub")!.Value) };
        claims.AddRange(validated.Claims.Where(c => Carried.Contains(c.Type)).Select(c => new Claim(c.Type, c.Value)));
        // A client-credentials token (a client and no "amr": no person signed in) was issued to a
        // confidential client that proved its 256-bit secret to the token endpoint. That machine
        // credential stands in for the second factor the policy asks of people ("mfa" in the request
        // context only; the token itself claims no human authentication method).
        if (validated.HasClaim(c => c.Type == "client_id") && !validated.HasClaim(c => c.Type == "amr"))
        {
            claims.Add(new Claim("amr", "mfa"));
        }
        return new ClaimsIdentity(claims, SchemeName, ClaimTypes.Name, ClaimTypes.Role);
    }

    /// <summary>Whether the (not yet validated) token names <paramref name="authority"/> as its issuer; only used to pick the validator.</summary>
    private static bool IssuedBy(string token, string authority)
    {
        try
        {
            var issuer = new JsonWebToken(token).Issuer;
            return string.Equals(issuer.TrimEnd('/'), authority.TrimEnd('/'), StringComparison.Ordinal);
        }
        catch (ArgumentException)
        {
            return false;
        }
    }

    protected override Task HandleChallengeAsync(AuthenticationProperties properties)
    {
        Response.Headers.WWWAuthenticate = "Bearer";
        return Task.CompletedTask;
    }
}
