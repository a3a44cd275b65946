using System.Security.Claims;
using Microsoft.AspNetCore.Http;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Access.OAuth;

namespace Wardline.Server.Modules.Access;

/// <summary>
/// Scopes of Wardline's own HTTP APIs beside FHIR: <c>wardline/monitor</c> (<c>/monitor</c>: alerts, their review and
/// evidence, replays, timelines, notifications), <c>wardline/backup</c> (<c>/backup</c>) and <c>wardline/ledger</c>
/// (<c>POST /ledger/head</c>, and the entries an auditor may see beside a proof). A token is <em>narrowed</em> when
/// its "scope" claim holds any SMART resource scope or any of these: it then reaches FHIR only through its resource
/// scopes and each API only with that API's scope, so an app granted <c>user/Observation.rs</c> by a privacy officer
/// cannot read the officer's alert queue. A token that is not narrowed (<c>wardline token</c> without
/// <c>--scope</c>, an external provider's token with OpenID scopes only) carries the account's whole permissions.
/// The account's roles are checked as well, always: a scope never grants what the roles do not.
/// </summary>
internal static class ApiScopes
{
    public const string Monitor = "wardline/monitor";
    public const string Backup = "wardline/backup";
    public const string Ledger = "wardline/ledger";

    public static readonly IReadOnlyList<string> All = [Monitor, Backup, Ledger];

    public static bool IsApiScope(string scope) => All.Contains(scope, StringComparer.Ordinal);

    /// <summary>Whether the token's scopes narrow what it may do (a SMART resource scope or an API scope among them).</summary>
    public static bool Narrowed(ClaimsPrincipal user) => Items(user).Any(s => SmartScopes.IsResourceScope(s) || IsApiScope(s));

    /// <summary>Whether the token may call the API of <paramref name="scope"/>: it is not narrowed, or it carries that scope.</summary>
    public static bool Allows(ClaimsPrincipal user, string scope) => !Narrowed(user) || Items(user).Contains(scope, StringComparer.Ordinal);

    /// <summary>The 403 title for a narrowed token without <paramref name="scope"/>.</summary>
    public static string Missing(string scope) =>
        $"The token's scopes do not include {scope}: a client must be registered with it and ask for it (wardline clients add --scope {scope}).";

    /// <summary>
    /// The one access check of Wardline's own APIs (<c>/monitor</c>, <c>/backup</c>): null when the caller is signed in, its account
    /// (local, or of the external provider) holds one of <paramref name="roles"/>, and its token may call <paramref name="scope"/>;
    /// otherwise the refusal: 401, or 403 titled <paramref name="refusal"/> or naming the missing scope.
    /// </summary>
    public static async Task<IResult?> RefusalAsync(HttpContext http, AccountStore accounts, IReadOnlyList<string> roles, string scope, string refusal)
    {
        if (http.User.Identity?.IsAuthenticated != true) return Results.Problem(statusCode: 401, title: "Authentication is required.");
        var account = await accounts.FindAsync(http.User.Identity.Name!, http.RequestAborted) ?? ExternalOidc.Account(http.User);
        if (account is null || !account.Roles.Any(roles.Contains)) return Results.Problem(statusCode: 403, title: refusal);
        return Allows(http.User, scope) ? null : Results.Problem(statusCode: 403, title: Missing(scope));
    }

    private static string[] Items(ClaimsPrincipal user) =>
        (user.FindFirst("scope")?.Value ?? "").Split(' ', StringSplitOptions.RemoveEmptyEntries);
}
