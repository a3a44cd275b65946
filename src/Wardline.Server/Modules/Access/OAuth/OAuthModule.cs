using System.Globalization;
using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.IdentityModel.Tokens;
using OpenIddict.Abstractions;
using OpenIddict.Server;
using OpenIddict.Server.AspNetCore;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;
using static OpenIddict.Abstractions.OpenIddictConstants;

namespace Wardline.Server.Modules.Access.OAuth;

/// <summary>
/// Wardline as an OAuth 2.0 authorization server (OpenIddict, degraded mode: clients are Wardline's own
/// <c>oauth_clients</c>, validated by the handlers here). /connect/token serves client credentials and
/// authorization codes; /connect/authorize needs a console session and hands the browser to
/// /console/authorize, where the console's cookie is sent. Codes require PKCE S256 and work once.
/// Access tokens are JWTs signed with <see cref="TokenKeys"/> and read by <see cref="AccessTokens"/>.
/// </summary>
internal static class OAuthModule
{
    public const string TokenPath = "/connect/token";
    public const string AuthorizePath = "/connect/authorize";
    public const string ConsoleAuthorizePath = "/console/authorize";
    public const string SmartConfigurationPath = "/.well-known/smart-configuration";
    public static readonly TimeSpan AccessTokenLifetime = TimeSpan.FromHours(1);
    public static readonly TimeSpan CodeLifetime = TimeSpan.FromMinutes(5);

    /// <summary>Token keys, settings, clients and operator tokens: what both the server and the CLI need.</summary>
    public static IServiceCollection AddWardlineTokens(this IServiceCollection services, WardlineOptions options)
    {
        services.AddSingleton(new TokenSettings(options));
        services.AddSingleton<TokenKeys>();
        services.AddSingleton<OAuthClients>();
        services.AddSingleton<AccessTokens>();
        return services;
    }

    /// <summary>The bearer scheme (the default), the external provider's scheme, and OpenIddict's server.</summary>
    public static IServiceCollection AddWardlineOAuth(this IServiceCollection services, WardlineOptions options)
    {
        var settings = new TokenSettings(options);
        var auth = services.AddAuthentication(TokenAuthenticationHandler.SchemeName)
            .AddScheme<AuthenticationSchemeOptions, TokenAuthenticationHandler>(TokenAuthenticationHandler.SchemeName, null);
        if (settings.External is { } external)
        {
            auth.AddJwtBearer(TokenSettings.ExternalScheme, o =>
            {
                o.Authority = external.Authority;
                o.Audience = external.Audience;
                o.RequireHttpsMetadata = external.RequireHttpsMetadata;
                o.MapInboundClaims = false;
                o.TokenValidationParameters.NameClaimType = external.UserClaim;
                o.TokenValidationParameters.ValidIssuer = external.Authority;
                o.TokenValidationParameters.ValidIssuers = [external.Authority!, external.Authority!.TrimEnd('/'), external.Authority!.TrimEnd('/') + "/"];
                o.TokenValidationParameters.RequireExpirationTime = true;
                o.TokenValidationParameters.RequireSignedTokens = true;
                o.TokenValidationParameters.ClockSkew = TimeSpan.FromSeconds(30);
            });
        }

        services.AddOpenIddict().AddServer(o =>
        {
            o.SetIssuer(settings.Issuer);
            o.SetTokenEndpointUris(TokenPath.TrimStart('/'));
            o.SetAuthorizationEndpointUris(AuthorizePath.TrimStart('/'), ConsoleAuthorizePath.TrimStart('/'));
            o.AllowClientCredentialsFlow().AllowAuthorizationCodeFlow().RequireProofKeyForCodeExchange();
            o.EnableDegradedMode();
            o.DisableScopeValidation();
            o.DisableTokenStorage();
            o.DisableAuthorizationStorage();
            // Resource servers (and the tests) read the tokens; they are signed, not encrypted.
            o.DisableAccessTokenEncryption();
            o.SetAccessTokenLifetime(AccessTokenLifetime);
            o.SetAuthorizationCodeLifetime(CodeLifetime);
            o.AddEventHandler<OpenIddictServerEvents.ValidateTokenRequestContext>(b => b.UseInlineHandler(ValidateTokenRequestAsync));
            o.AddEventHandler<OpenIddictServerEvents.ValidateAuthorizationRequestContext>(b => b.UseInlineHandler(ValidateAuthorizationRequestAsync));
            // SMART: the launch patient is also a parameter of the token response.
            o.AddEventHandler<OpenIddictServerEvents.ProcessSignInContext>(b => b.UseInlineHandler(c =>
            {
                if (c.EndpointType == OpenIddictServerEndpointType.Token && c.Principal?.GetClaim("patient") is { } patient) c.Parameters["patient"] = patient;
                return default;
            }));
            // Errors say what the client must fix, never where to read about the server's internals.
            o.AddEventHandler<OpenIddictServerEvents.ApplyTokenResponseContext>(b => b.UseInlineHandler(c =>
            {
                c.Response.ErrorUri = null;
                return default;
            }).SetOrder(int.MinValue));
            o.AddEventHandler<OpenIddictServerEvents.ApplyAuthorizationResponseContext>(b => b.UseInlineHandler(c =>
            {
                c.Response.ErrorUri = null;
                return default;
            }).SetOrder(int.MinValue));
            var aspNetCore = o.UseAspNetCore().EnableTokenEndpointPassthrough().EnableAuthorizationEndpointPassthrough();
            // Plain http only where the operator chose it for a loopback address (development, tests).
            if (settings.Issuer.Scheme == "http" && settings.Issuer.IsLoopback) aspNetCore.DisableTransportSecurityRequirement();
        });
        services.AddOptions<OpenIddictServerOptions>().Configure<TokenKeys>((o, keys) =>
        {
            var loaded = keys.Current;
            o.SigningCredentials.Add(loaded.SigningCredentials);
            o.EncryptionCredentials.Add(new EncryptingCredentials(loaded.Encryption, SecurityAlgorithms.Aes256KW, SecurityAlgorithms.Aes256CbcHmacSha512));
        });
        return services;
    }

    public static WebApplication MapWardlineOAuth(this WebApplication app)
    {
        app.MapPost(TokenPath, TokenAsync);
        app.MapMethods(AuthorizePath, ["GET", "POST"], (Func<HttpContext, Task<IResult>>)ToConsoleAsync);
        app.MapMethods(ConsoleAuthorizePath, ["GET", "POST"], AuthorizeAsync);
        // SMART App Launch looks for it under the FHIR base; the server's root is kept for clients that look there.
        app.MapGet(SmartConfigurationPath, (TokenSettings settings) => Results.Json(SmartConfiguration(settings)));
        app.MapGet("/fhir" + SmartConfigurationPath, (TokenSettings settings) => Results.Json(SmartConfiguration(settings)));
        return app;
    }

    /// <summary>SMART App Launch 2.0 discovery.</summary>
    internal static Dictionary<string, object> SmartConfiguration(TokenSettings settings) => new()
    {
        ["issuer"] = settings.IssuerClaim,
        ["jwks_uri"] = settings.Endpoint(".well-known/jwks"),
        ["authorization_endpoint"] = settings.Endpoint(AuthorizePath.TrimStart('/')),
        ["token_endpoint"] = settings.Endpoint(TokenPath.TrimStart('/')),
        ["grant_types_supported"] = new[] { OAuthClients.AuthorizationCode, OAuthClients.ClientCredentials },
        ["token_endpoint_auth_methods_supported"] = new[] { "client_secret_basic", "client_secret_post" },
        ["response_types_supported"] = new[] { "code" },
        ["code_challenge_methods_supported"] = new[] { "S256" },
        ["scopes_supported"] = OAuthScopes.Supported,
        ["capabilities"] = new[]
        {
            "launch-standalone", "client-public", "client-confidential-symmetric", "context-standalone-patient",
            "permission-patient", "permission-user", "permission-v1", "permission-v2",
        },
    };

    private static async ValueTask ValidateTokenRequestAsync(OpenIddictServerEvents.ValidateTokenRequestContext context)
    {
        var services = ServicesOf(context.Transaction);
        var clients = services.GetRequiredService<OAuthClients>();
        var ct = context.CancellationToken;
        var client = await clients.AuthenticateAsync(context.ClientId, context.ClientSecret, ct);
        if (client is null)
        {
            context.Reject(Errors.InvalidClient, "The client is unknown or its credentials are wrong.");
            return;
        }
        var grant = context.Request.GrantType!;
        if (!client.GrantTypes.Contains(grant, StringComparer.Ordinal) || (grant == OAuthClients.ClientCredentials && (!client.Confidential || client.Account is null)))
        {
            context.Reject(Errors.UnauthorizedClient, "The client may not use this grant type.");
            return;
        }
        if (grant == OAuthClients.ClientCredentials && !OAuthScopes.Allowed([.. context.Request.GetScopes()], client, grant))
        {
            context.Reject(Errors.InvalidScope, "The scope is missing, malformed or not allowed for this client.");
        }
    }

    private static async ValueTask ValidateAuthorizationRequestAsync(OpenIddictServerEvents.ValidateAuthorizationRequestContext context)
    {
        var clients = ServicesOf(context.Transaction).GetRequiredService<OAuthClients>();
        var client = await clients.FindAsync(context.ClientId, context.CancellationToken);
        if (client is null || !client.GrantTypes.Contains(OAuthClients.AuthorizationCode, StringComparer.Ordinal))
        {
            context.Reject(Errors.InvalidClient, "The client is unknown or may not use the authorization code grant.");
            return;
        }
        if (context.RedirectUri is null || !client.RedirectUris.Contains(context.RedirectUri, StringComparer.Ordinal))
        {
            context.Reject(Errors.InvalidRequest, "The redirect_uri is not registered for this client.");
            return;
        }
        if (context.Request.CodeChallengeMethod != CodeChallengeMethods.Sha256)
        {
            context.Reject(Errors.InvalidRequest, "PKCE with code_challenge_method S256 is required.");
            return;
        }
        if (!OAuthScopes.Allowed([.. context.Request.GetScopes()], client, OAuthClients.AuthorizationCode))
        {
            context.Reject(Errors.InvalidScope, "The scope is missing, malformed or not allowed for this client.");
            return;
        }
        var patient = (string?)context.Request.GetParameter("patient");
        if (patient is not null && !Records.Search.FhirIds.IsValid(patient))
        {
            context.Reject(Errors.InvalidRequest, "The patient parameter is not a FHIR id.");
        }
    }

    private static IServiceProvider ServicesOf(OpenIddictServerTransaction transaction) =>
        transaction.GetHttpRequest()?.HttpContext.RequestServices ?? throw new InvalidOperationException("The OpenIddict request has no HTTP context.");

    /// <summary>
    /// The console's session cookie is scoped to /console, so the browser is sent there with the same
    /// request (OpenIddict has validated it already and validates it again there).
    /// </summary>
    private static async Task<IResult> ToConsoleAsync(HttpContext http)
    {
        var parameters = http.Request.HasFormContentType
            ? (await http.Request.ReadFormAsync(http.RequestAborted)).Select(kv => KeyValuePair.Create(kv.Key, (string?)kv.Value.ToString()))
            : http.Request.Query.Select(kv => KeyValuePair.Create(kv.Key, (string?)kv.Value.ToString()));
        return Results.Redirect(ConsoleAuthorizePath + QueryString.Create(parameters));
    }

    private static async Task<IResult> AuthorizeAsync(HttpContext http, AccountStore accounts, AccessExplainer explainer, RecordStore store, TimeProvider time)
    {
        var request = http.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("The OpenIddict server request is missing.");
        var ct = http.RequestAborted;
        var name = http.User.Identity?.IsAuthenticated == true ? http.User.Identity.Name : null;
        var account = name is null ? null : await accounts.FindAsync(name, ct);
        if (account is null || !account.IsActive(time.GetUtcNow()))
        {
            if (request.HasPromptValue(PromptValues.None)) return Refuse(Errors.LoginRequired, "The user is not signed in.");
            var back = ConsoleAuthorizePath + http.Request.QueryString;
            return Results.Redirect(Wardline.Server.Modules.Console.ConsoleAuth.SignInPath + "?returnUrl=" + Uri.EscapeDataString(back));
        }

        var mfa = Wardline.Server.Modules.Console.ConsoleAuth.HasMfa(http.User);
        var scopes = request.GetScopes();
        var identity = new ClaimsIdentity(TokenSettings.LocalScheme, Claims.Name, Claims.Role);
        identity.SetClaim(Claims.Subject, account.Name).SetClaim(Claims.Name, account.Name);
        identity.AddClaim(new Claim("amr", "pwd"));
        if (mfa) identity.AddClaim(new Claim("amr", "mfa"));
        if ((string?)request.GetParameter("patient") is { } patient)
        {
            // A launch patient only if the user may read that Patient under the policy as it stands.
            var exists = (await store.ReadFactsAsync([("Patient", patient)], ct)).Count > 0;
            var (explanation, _) = exists
                ? await explainer.ExplainAsync(account.Name, "Patient", patient, null, Wardline.Policy.PolicyAction.Read, "TREAT", mfa, true, ct)
                : (null, null);
            if (explanation?.Explanation.Decision.Permitted != true)
                return Refuse(Errors.AccessDenied, "The launch patient is not available to this user.");
            identity.SetClaim("patient", patient);
        }
        identity.SetClaim(TokenSettings.CodeIdClaim, Guid.NewGuid().ToString("N"));
        identity.AddClaim(new Claim(TokenSettings.IssuedMsClaim, time.GetUtcNow().ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture), ClaimValueTypes.Integer64));
        var principal = new ClaimsPrincipal(identity);
        principal.SetScopes(scopes);
        principal.SetResources(http.RequestServices.GetRequiredService<TokenSettings>().Audience);
        SetDestinations(principal);
        return Results.SignIn(principal, null, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    private static async Task<IResult> TokenAsync(HttpContext http, OAuthClients clients, AccountStore accounts, TokenSettings settings, IAccessRecorder recorder, TimeProvider time)
    {
        var request = http.GetOpenIddictServerRequest() ?? throw new InvalidOperationException("The OpenIddict server request is missing.");
        var ct = http.RequestAborted;
        var now = time.GetUtcNow();
        ClaimsPrincipal principal;
        string user;
        if (request.IsClientCredentialsGrantType())
        {
            var client = (await clients.FindAsync(request.ClientId, ct))!;
            // Uncached: a token issued from a stale copy after the account was disabled would outlive its re-enabling.
            if ((await accounts.ReadCredentialsAsync(client.Account!, ct))?.Account is not { } account || !account.IsActive(now))
                return Refuse(Errors.InvalidGrant, "The client's service account is not active.");
            user = account.Name;
            var identity = new ClaimsIdentity(TokenSettings.LocalScheme, Claims.Name, Claims.Role);
            identity.SetClaim(Claims.Subject, account.Name).SetClaim(Claims.Name, account.Name).SetClaim(Claims.ClientId, client.ClientId);
            principal = new ClaimsPrincipal(identity);
            principal.SetScopes(request.GetScopes());
        }
        else if (request.IsAuthorizationCodeGrantType())
        {
            // OpenIddict has checked the code (encrypted, unexpired, for this client and redirect_uri) and the PKCE verifier.
            var result = await http.AuthenticateAsync(OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
            var code = result.Principal;
            if (!result.Succeeded || code?.GetClaim(TokenSettings.CodeIdClaim) is not { } codeId || code.GetClaim(Claims.Subject) is not { } subject)
                return Refuse(Errors.InvalidGrant, "The authorization code is not valid.");
            var expires = code.GetExpirationDate() ?? now.Add(CodeLifetime);
            if (!await clients.RedeemCodeAsync(codeId, request.ClientId!, expires, ct))
            {
                await recorder.RecordAsync(new SecurityEvent(now, SecurityEventKind.TokenRejected, subject, request.ClientId, "refused",
                    $"authorization code replayed by client {request.ClientId}; the token issued for it is revoked", http.TraceIdentifier, http.Connection.RemoteIpAddress?.ToString()), ct);
                return Refuse(Errors.InvalidGrant, "The authorization code is not valid.");
            }
            if ((await accounts.ReadCredentialsAsync(subject, ct))?.Account is not { } account || !account.IsActive(now))
                return Refuse(Errors.InvalidGrant, "The authorization code is not valid.");
            // A code made before the account's password change, MFA reset or disabling gets no token: it came from a sign-in
            // those ended (a code without its issuing time, made before this release, counts as older than any change).
            var issued = code.Identity is ClaimsIdentity codeIdentity ? AccessTokens.IssuedMs(codeIdentity) : 0;
            if (account.TokensAfter is { } after && issued < after.ToUnixTimeMilliseconds())
                return Refuse(Errors.InvalidGrant, "The authorization code is not valid.");
            user = account.Name;
            var identity = new ClaimsIdentity(TokenSettings.LocalScheme, Claims.Name, Claims.Role);
            identity.SetClaim(Claims.Subject, account.Name).SetClaim(Claims.Name, account.Name).SetClaim(Claims.ClientId, request.ClientId);
            foreach (var amr in code.GetClaims("amr")) identity.AddClaim(new Claim("amr", amr));
            if (code.GetClaim("patient") is { } patient) identity.SetClaim("patient", patient);
            identity.SetClaim(TokenSettings.GrantClaim, codeId);
            principal = new ClaimsPrincipal(identity);
            principal.SetScopes(code.GetScopes());
        }
        else
        {
            return Refuse(Errors.UnsupportedGrantType, "The grant type is not supported.");
        }
        principal.SetResources(settings.Audience);
        principal.SetAccessTokenLifetime(AccessTokenLifetime);
        ((ClaimsIdentity)principal.Identity!).AddClaim(new Claim(TokenSettings.IssuedMsClaim, now.ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture), ClaimValueTypes.Integer64));
        SetDestinations(principal);
        await recorder.RecordAsync(new SecurityEvent(now, SecurityEventKind.TokenIssued, user, request.ClientId, "succeeded",
            $"{request.GrantType} token for client {request.ClientId} scope {string.Join(' ', principal.GetScopes())}", http.TraceIdentifier,
            http.Connection.RemoteIpAddress?.ToString()), ct);
        return Results.SignIn(principal, null, OpenIddictServerAspNetCoreDefaults.AuthenticationScheme);
    }

    /// <summary>Everything the principal holds goes into the access token, except the code id (kept in the code only; the token names it in <see cref="TokenSettings.GrantClaim"/>).</summary>
    private static void SetDestinations(ClaimsPrincipal principal)
    {
        foreach (var claim in principal.Claims)
        {
            claim.SetDestinations(claim.Type == TokenSettings.CodeIdClaim ? [] : [Destinations.AccessToken]);
        }
    }

    /// <summary>An RFC 6749 error, written by OpenIddict (JSON at the token endpoint, a redirect to the client at the authorization endpoint).</summary>
    private static IResult Refuse(string error, string description) =>
        Results.Forbid(new AuthenticationProperties(new Dictionary<string, string?>
        {
            [OpenIddictServerAspNetCoreConstants.Properties.Error] = error,
            [OpenIddictServerAspNetCoreConstants.Properties.ErrorDescription] = description,
        }), [OpenIddictServerAspNetCoreDefaults.AuthenticationScheme]);
}
