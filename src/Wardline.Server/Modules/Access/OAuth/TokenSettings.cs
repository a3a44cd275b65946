using Wardline.Server.Hosting;

namespace Wardline.Server.Modules.Access.OAuth;

/// <summary>
/// The issuer and audience of Wardline's tokens, shared by the server and the CLI. The issuer is
/// <see cref="AccessOptions.Issuer"/>, else the first server URL; the audience (the FHIR base, as SMART
/// expects) is <see cref="AccessOptions.Audience"/>, else the issuer's <c>/fhir</c>.
/// </summary>
internal sealed class TokenSettings
{
    public const string LocalScheme = "WardlineLocalToken";
    public const string ExternalScheme = "WardlineExternalOidc";

    /// <summary>Claim holding the authorization code's id (in the code only), recorded when redeemed.</summary>
    public const string CodeIdClaim = "wl_code";

    /// <summary>Claim of a token issued for an authorization code: the code's id, so a replay of the code revokes the token (<see cref="OAuthClients.IsGrantRevokedAsync"/>).</summary>
    public const string GrantClaim = "wl_grant";

    /// <summary>Claim of every Wardline token: its issuing instant in Unix milliseconds ("iat" has whole seconds), held to <see cref="Identity.Account.TokensAfter"/>.</summary>
    public const string IssuedMsClaim = "wl_iat_ms";

    /// <summary>Set on principals of an external provider's token; their roles and departments follow in <see cref="ExternalRoleClaim"/> and <see cref="ExternalDepartmentClaim"/>.</summary>
    public const string SourceClaim = "wl_source";
    public const string ExternalSource = "external";
    public const string ExternalRoleClaim = "wl_ext_role";
    public const string ExternalDepartmentClaim = "wl_ext_department";

    /// <summary>
    /// Issuer and audience of tokens minted by a process that does not know the server's address: no
    /// issuer configured and no server URL (e.g. `wardline token --data DIR`, then `wardline serve --urls ...`).
    /// Servers without a configured issuer (or audience) accept it too. This takes nothing from the
    /// issuer check: only holders of this store's sealed key can sign either.
    /// </summary>
    public const string LocalIssuer = "urn:wardline:local";

    public TokenSettings(WardlineOptions options)
    {
        var configured = options.Access.Issuer ?? (options.Urls.Count > 0 ? options.Urls[0] : null);
        var issuer = configured ?? "http://127.0.0.1:5080";
        Issuer = new Uri(issuer.EndsWith('/') ? issuer : issuer + "/", UriKind.Absolute);
        Audience = options.Access.Audience ?? new Uri(Issuer, "fhir").AbsoluteUri;
        External = options.Access.ExternalOidc;
        MintIssuer = configured is null ? LocalIssuer : IssuerClaim;
        MintAudience = configured is null && options.Access.Audience is null ? LocalIssuer : Audience;
        ValidIssuers = options.Access.Issuer is null ? [IssuerClaim, LocalIssuer] : [IssuerClaim];
        ValidAudiences = options.Access.Audience is null && options.Access.Issuer is null ? [Audience, LocalIssuer] : [Audience];
    }

    /// <summary>The issuer and audience of operator tokens (`wardline token`) minted by this process.</summary>
    public string MintIssuer { get; }

    public string MintAudience { get; }

    /// <summary>What the API accepts: its own issuer and audience, and the local ones unless an issuer (audience) is configured.</summary>
    public IReadOnlyList<string> ValidIssuers { get; }

    public IReadOnlyList<string> ValidAudiences { get; }

    public Uri Issuer { get; }

    public string Audience { get; }

    public ExternalOidcOptions? External { get; }

    public string Endpoint(string relative) => new Uri(Issuer, relative).AbsoluteUri;

    /// <summary>The issuer as tokens carry it (OpenIddict writes the issuer URI with its trailing slash).</summary>
    public string IssuerClaim => Issuer.AbsoluteUri;
}
