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

    public string UserClaim { get; set; } = "preferred_username";

    public string? RoleClaim { get; set; }

    public string? DepartmentClaim { get; set; }

    /// <summary>External role value to Wardline role. When not empty, values it does not name are dropped.</summary>
    public IDictionary<string, string> RoleMap { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>External department value to Wardline department code. When not empty, values it does not name are dropped.</summary>
    public IDictionary<string, string> DepartmentMap { get; } = new Dictionary<string, string>(StringComparer.Ordinal);

    /// <summary>Metadata over plain http is allowed only for a loopback authority (tests, a provider on the same host).</summary>
    internal bool RequireHttpsMetadata => Uri.TryCreate(Authority, UriKind.Absolute, out var u) && !(u.Scheme == "http" && u.IsLoopback);

    public IEnumerable<string> Validate()
    {
        if (!Uri.TryCreate(Authority, UriKind.Absolute, out var authority) || (authority.Scheme != "https" && !(authority.Scheme == "http" && authority.IsLoopback)))
            yield return "Wardline:Access:ExternalOidc:Authority must be an https URL (http only on loopback).";
        if (string.IsNullOrWhiteSpace(Audience)) yield return "Wardline:Access:ExternalOidc:Audience is required.";
        if (string.IsNullOrWhiteSpace(UserClaim)) yield return "Wardline:Access:ExternalOidc:UserClaim must name a claim.";
    }
}
