using System.Text.RegularExpressions;

namespace Wardline.Server.Modules.Access.OAuth;

/// <summary>
/// The scope strings Wardline's OAuth server accepts: SMART v2 (and v1) resource scopes,
/// <c>launch/patient</c>, and Wardline's API scopes (<see cref="ApiScopes"/>). A client may ask only for
/// scopes it was registered with; client-credentials tokens carry <c>system/</c> scopes, apps' tokens
/// <c>patient/</c> and <c>user/</c> scopes, and either may carry API scopes. Every token must carry at
/// least one resource or API scope, so an app's token is always narrowed by its scopes.
/// </summary>
internal static partial class OAuthScopes
{
    public const string LaunchPatient = "launch/patient";

    public static readonly string[] Supported =
        ["system/*.cruds", "system/*.rs", "user/*.cruds", "user/*.rs", "patient/*.cruds", "patient/*.rs", LaunchPatient, .. ApiScopes.All];

    public static bool IsValid(string scope) =>
        scope == LaunchPatient || ApiScopes.IsApiScope(scope) || ResourceScope().IsMatch(scope) && IsV2OrV1(scope[(scope.LastIndexOf('.') + 1)..]);

    /// <summary>Whether every scope is well formed, registered for the client and fits the grant; and at least one is a resource or API scope.</summary>
    public static bool Allowed(IReadOnlyCollection<string> requested, OAuthClient client, string grantType)
    {
        if (requested.Count == 0 || requested.Count > 50) return false;
        var narrowing = 0;
        foreach (var scope in requested)
        {
            if (!IsValid(scope) || !client.Scopes.Contains(scope, StringComparer.Ordinal)) return false;
            if (scope == LaunchPatient)
            {
                if (grantType != OAuthClients.AuthorizationCode) return false;
                continue;
            }
            if (ApiScopes.IsApiScope(scope))
            {
                narrowing++;
                continue;
            }
            var system = scope.StartsWith("system/", StringComparison.Ordinal);
            if (system != (grantType == OAuthClients.ClientCredentials)) return false;
            narrowing++;
        }
        return narrowing > 0;
    }

    private static bool IsV2OrV1(string p)
    {
        if (p is "read" or "write" or "*") return true;
        var at = 0;
        foreach (var ch in p)
        {
            var i = "cruds".IndexOf(ch, at);
            if (i < 0) return false;
            at = i + 1;
        }
        return p.Length > 0;
    }

    [GeneratedRegex(@"^(patient|user|system)/(\*|[A-Z][A-Za-z]{1,63})\.(\*|[a-z]{1,5})$")]
    private static partial Regex ResourceScope();
}
