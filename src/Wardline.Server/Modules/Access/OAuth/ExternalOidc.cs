using System.Security.Claims;
using Microsoft.Extensions.DependencyInjection;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Access.OAuth;

/// <summary>
/// Maps a validated token of the external OpenID Connect provider to a Wardline user: the local
/// account named by <see cref="ExternalOidcOptions.UserClaim"/> when there is one (it must be enabled
/// and unexpired, and a person's: an account with a password; a token-only account, such as an OAuth
/// client's service account, is never taken by a provider user) and bound at the first sign-in to the provider user
/// (issuer and subject) who made it, so no other provider user ever acts as it (<see cref="Account.ExternalSubject"/>;
/// <c>wardline users unlink-external</c> forgets it); otherwise an account built from the
/// token's mapped roles and departments, which <see cref="AccessSubjects"/> uses in place of a stored one.
/// The provider's "amr" (MFA) is believed only with <see cref="ExternalOidcOptions.TrustProviderMfa"/>.
/// </summary>
internal static class ExternalOidc
{
    public static async Task<ClaimsIdentity?> MapAsync(ClaimsPrincipal principal, ExternalOidcOptions options, IServiceProvider services, CancellationToken ct)
    {
        var name = principal.FindFirst(options.UserClaim)?.Value;
        if (name is null || !AccountRules.IsValidName(name)) return null;
        var claims = new List<Claim> { new(ClaimTypes.Name, name) };
        if (options.TrustProviderMfa) claims.AddRange(principal.FindAll("amr").Select(c => new Claim("amr", c.Value)));
        if (principal.FindFirst("scope")?.Value is { } scope) claims.Add(new Claim("scope", scope));
        var accounts = services.GetRequiredService<AccountStore>();
        var local = await accounts.FindAsync(name, ct);
        if (local is not null)
        {
            if (!local.IsActive(services.GetRequiredService<TimeProvider>().GetUtcNow())) return null;
            // Issued before the account's password change, MFA reset or disabling: refused, as Wardline's own tokens are.
            if (local.TokensAfter is { } after && AccessTokens.IssuedMs(principal.Identities.First()) < after.ToUnixTimeMilliseconds()) return null;
            // A service account (token-only: no password) is a machine's: a provider user who happens to carry its name is refused.
            if ((await accounts.ReadCredentialsAsync(name, ct))?.PasswordHash is null) return null;
            // The provider user who first signs in as the account is bound to it (issuer and subject, which the provider never
            // reassigns): another provider user who later carries the same name (renamed, or a namesake made by the
            // provider's administrators) is refused, and the refusal is recorded.
            if (principal.FindFirst("sub")?.Value is not { Length: > 0 } sub || principal.FindFirst("iss")?.Value is not { Length: > 0 } iss) return null;
            var subject = iss.TrimEnd('/') + "|" + sub;
            // Bound already: compared with the cached account. Not yet: bound now, unless another request bound it first.
            var bound = local.ExternalSubject;
            if (bound is null)
            {
                if (await accounts.BindExternalAsync(name, subject))
                    await RecordAsync(services, SecurityEventKind.AccountChanged, name, "succeeded", $"bound to the external provider's user {subject} at its first sign-in through the provider", ct);
                else bound = (await accounts.FindAsync(name, ct))?.ExternalSubject;
            }
            if (bound is not null && bound != subject)
            {
                await RecordAsync(services, SecurityEventKind.TokenRejected, name, "refused", $"a token of the external provider's user {subject}, but the account is bound to {bound}", ct);
                return null;
            }
        }
        else
        {
            claims.Add(new Claim(TokenSettings.SourceClaim, TokenSettings.ExternalSource));
            claims.AddRange(Values(principal, options.RoleClaim, options.RoleMap).Select(r => new Claim(TokenSettings.ExternalRoleClaim, r)));
            claims.AddRange(Values(principal, options.DepartmentClaim, options.DepartmentMap).Select(d => new Claim(TokenSettings.ExternalDepartmentClaim, d)));
        }
        return new ClaimsIdentity(claims, TokenAuthenticationHandler.SchemeName, ClaimTypes.Name, ClaimTypes.Role);
    }

    private static ValueTask RecordAsync(IServiceProvider services, SecurityEventKind kind, string user, string outcome, string detail, CancellationToken ct) =>
        services.GetRequiredService<IAccessRecorder>().RecordAsync(
            new SecurityEvent(services.GetRequiredService<TimeProvider>().GetUtcNow(), kind, user, "external provider", outcome, detail, null, null), ct);

    /// <summary>
    /// The account of an external user who has no local one, from the claims <see cref="MapAsync"/> put
    /// on the request's principal; null for any other principal or for values that are not valid
    /// roles or departments (nothing the provider says is trusted beyond the account rules).
    /// </summary>
    public static Account? Account(ClaimsPrincipal principal)
    {
        if (principal.FindFirst(TokenSettings.SourceClaim)?.Value != TokenSettings.ExternalSource || principal.Identity?.Name is not { } name) return null;
        var account = Identity.Account.New(name, name) with
        {
            Roles = [.. principal.FindAll(TokenSettings.ExternalRoleClaim).Select(c => c.Value).Distinct(StringComparer.Ordinal)],
            Departments = [.. principal.FindAll(TokenSettings.ExternalDepartmentClaim).Select(c => c.Value).Distinct(StringComparer.Ordinal)],
        };
        return AccountRules.Check(account).Count == 0 ? account : null;
    }

    private static IEnumerable<string> Values(ClaimsPrincipal principal, string? claim, IDictionary<string, string> map)
    {
        if (claim is null) yield break;
        // Only mapped values count (the options require a map with each claim): nothing the provider names is taken as it is.
        foreach (var c in principal.FindAll(claim))
        {
            if (map.TryGetValue(c.Value, out var mapped)) yield return mapped;
        }
    }
}
