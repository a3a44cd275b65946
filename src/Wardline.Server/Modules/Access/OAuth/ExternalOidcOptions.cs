namespace Wardline.Server.Modules.Access.OAuth;

/// <summary>
/// An external OpenID Connect provider whose access tokens the FHIR API accepts, bound from
/// <c>Wardline:Access:ExternalOidc</c>. A token is sent to it when its issuer is <see cref="Authority"/>.
/// The user is the local account named by <see cref="UserClaim"/> if there is one; otherwise an account
/// is built from the token's role and department claims (mapped, when maps are given).
/// </summary>
public sealed class ExternalOidcOptions
{
    /// <summary>The provider's issuer; its metadata is read from <c>.well-known/openid-configuration</c> under it.</summary>
    public string? Authority { get; set; }

    /// <summary>The audience its tokens must carry for Wardline.</summary>
    public string? Audience { get; set; }

    /// <summary>
    /// The claim that names the Wardline user. It must be one the provider's administrators assign and users cannot
    /// change (Entra ID: <c>upn</c> or <c>preferred_username</c> of a managed tenant; Keycloak: <c>preferred_username</c>
    /// with username editing off): whoever carries a local account's name acts as that account.
    /// </summary>
    public string UserClaim { get; set; } = "preferred_username";

    /// <summary>
    /// Whether the provider's "amr" claim is believed (false by default): set it when the provider enforces MFA and says
    /// so in "amr", and policy conditions on MFA (and break-glass) then hold for its users; otherwise they never do.
    /// </summary>
    public bool TrustProviderMfa { get; set; }

    public string? RoleClaim { get; set; }

    public string? DepartmentClaim { get; set; }

    /// <summary>External role value to Wardline role; values it does not name are dropped. Required with <see cref="RoleClaim"/>.</summary>
    public IDictionary<string, string> RoleMap { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>External department value to Wardline department code; values it does not name are dropped. Required with <see cref="DepartmentClaim"/>.</summary>
    public IDictionary<string, string> DepartmentMap { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Metadata over plain http is allowed only for a loopback authority (tests, a provider on the same host).</summary>
    internal bool RequireHttpsMetadata => Uri.TryCreate(Authority, UriKind.Absolute, out var u) && !(u.Scheme == "http" && u.IsLoopback);

    public IEnumerable<string> Validate()
    {
        if (!Uri.TryCreate(Authority, UriKind.Absolute, out var authority) || (authority.Scheme != "https" && !(authority.Scheme == "http" && authority.IsLoopback)))
            yield return "Wardline:Access:ExternalOidc:Authority must be an https URL (http only on loopback).";
        if (string.IsNullOrWhiteSpace(Audience)) yield return "Wardline:Access:ExternalOidc:Audience is required.";
        if (string.IsNullOrWhiteSpace(UserClaim)) yield return "Wardline:Access:ExternalOidc:UserClaim must name a claim.";
        // An empty map would pass every value the provider sends: a group named "administrator" would make an administrator.
        if (!string.IsNullOrWhiteSpace(RoleClaim) && RoleMap.Count == 0)
            yield return "Wardline:Access:ExternalOidc:RoleMap is required with RoleClaim: name each provider role value Wardline honours and the Wardline role it becomes.";
        if (!string.IsNullOrWhiteSpace(DepartmentClaim) && DepartmentMap.Count == 0)
            yield return "Wardline:Access:ExternalOidc:DepartmentMap is required with DepartmentClaim: name each provider department value and the Wardline department code it becomes.";
    }
}
