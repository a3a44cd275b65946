using System.Globalization;
using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Wardline.Server.Modules.Access.Identity;

namespace Wardline.Server.Modules.Console;

/// <summary>
/// The console's two cookies. <see cref="Scheme"/> is the session: the account name, "amr" (RFC 8176:
/// "pwd", and "mfa" when a TOTP code was given) and the sign-in time, which bounds the session however
/// often the idle time-out slides. <see cref="PendingScheme"/> lives only between a correct password and
/// the second step, and names the account and the step (code or enrolment), so the second step is
/// tied to the browser that gave the password; <see cref="SignInService"/> enforces the time window.
/// </summary>
internal static class ConsoleAuth
{
    public const string Scheme = "WardlineConsole";
    public const string PendingScheme = "WardlineConsolePending";
    public const string SignInPath = ConsoleModule.PathPrefix + "/sign-in";
    public const string AuthTimeClaim = "auth_time";
    public const string StepClaim = "wardline_step";
    public const string StepCode = "totp";
    public const string StepEnrol = "enrol";
    public const string ReturnClaim = "wardline_return";

    /// <summary>The sign-in's instant in Unix milliseconds (auth_time has whole seconds), held to <see cref="Account.SessionsAfter"/>.</summary>
    public const string AuthMsClaim = "wardline_auth_ms";

    public static async Task SignInAsync(HttpContext http, string name, bool mfa, TimeProvider time)
    {
        var claims = new List<Claim>
        {
            new(ClaimTypes.Name, name),
            new("amr", "pwd"),
            new(AuthTimeClaim, time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)),
            new(AuthMsClaim, time.GetUtcNow().ToUnixTimeMilliseconds().ToString(CultureInfo.InvariantCulture)),
        };
        if (mfa) claims.Add(new Claim("amr", "mfa"));
        await http.SignOutAsync(PendingScheme);
        await http.SignInAsync(Scheme, new ClaimsPrincipal(new ClaimsIdentity(claims, Scheme)), new AuthenticationProperties { IsPersistent = false });
    }

    /// <summary>Remembers, for the second step in this browser, the account, the step and where to go after it.</summary>
    public static Task BeginSecondStepAsync(HttpContext http, string name, string step, string? returnTo)
    {
        var claims = new List<Claim> { new(ClaimTypes.Name, name), new(StepClaim, step) };
        if (SafeReturn(returnTo) is { } back) claims.Add(new Claim(ReturnClaim, back));
        return http.SignInAsync(PendingScheme, new ClaimsPrincipal(new ClaimsIdentity(claims, PendingScheme)));
    }

    /// <summary>The account waiting for <paramref name="step"/> in this browser and where it goes next, or null.</summary>
    public static async Task<(string Name, string? ReturnTo)?> PendingAsync(HttpContext http, string step)
    {
        var result = await http.AuthenticateAsync(PendingScheme);
        if (!result.Succeeded || result.Principal.FindFirst(StepClaim)?.Value != step || result.Principal.Identity?.Name is not { } name) return null;
        return (name, SafeReturn(result.Principal.FindFirst(ReturnClaim)?.Value));
    }

    /// <summary>
    /// Where a sign-in may send the browser afterwards: only a console path of this server (e.g. the
    /// OAuth authorisation endpoint /console/authorize?...), never another site, so the sign-in page
    /// cannot be used as an open redirect. Anything else is null (the console's home).
    /// </summary>
    public static string? SafeReturn(string? url)
    {
        if (string.IsNullOrEmpty(url) || url.Length > 4096) return null;
        if (!(url == ConsoleModule.PathPrefix || url.StartsWith(ConsoleModule.PathPrefix + "/", StringComparison.Ordinal)
            || url.StartsWith(ConsoleModule.PathPrefix + "?", StringComparison.Ordinal))) return null;
        var query = url.IndexOf('?', StringComparison.Ordinal);
        var path = query < 0 ? url : url[..query];
        if (path.Contains("//", StringComparison.Ordinal) || path.Contains("..", StringComparison.Ordinal) || url.Contains('\\', StringComparison.Ordinal)
            || url.Any(c => char.IsControl(c) || char.IsWhiteSpace(c))) return null;
        return path.StartsWith(SignInPath, StringComparison.Ordinal) ? null : url;
    }

    /// <summary>
    /// Every request: the session ends past its absolute lifetime, and at once when the account is
    /// disabled, expired or gone, or its sessions were ended after this one signed in (sign-out, password
    /// change, MFA reset, disabling: <see cref="Account.SessionsAfter"/>); the account lookup is cached for a
    /// few seconds on other servers.
    /// </summary>
    public static async Task ValidateAsync(CookieValidatePrincipalContext context)
    {
        var services = context.HttpContext.RequestServices;
        var now = services.GetRequiredService<TimeProvider>().GetUtcNow();
        var lifetime = services.GetRequiredService<IOptions<ConsoleOptions>>().Value.AbsoluteLifetime;
        var name = context.Principal?.Identity?.Name;
        var authTime = context.Principal?.FindFirst(AuthTimeClaim)?.Value;
        var valid = name is not null
            && long.TryParse(authTime, NumberStyles.None, CultureInfo.InvariantCulture, out var signedIn)
            && now - DateTimeOffset.FromUnixTimeSeconds(signedIn) < lifetime
            && await services.GetRequiredService<AccountService>().FindAsync(name, context.HttpContext.RequestAborted) is { } account
            && account.IsActive(now)
            && (account.SessionsAfter is not { } after || SignedInMs(context.Principal!, signedIn) > after.ToUnixTimeMilliseconds());
        if (!valid)
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(Scheme);
        }
    }

    /// <summary>The sign-in's instant in ms; a cookie without the ms claim counts from the start of its auth_time second.</summary>
    private static long SignedInMs(ClaimsPrincipal principal, long authTimeSeconds) =>
        long.TryParse(principal.FindFirst(AuthMsClaim)?.Value, NumberStyles.None, CultureInfo.InvariantCulture, out var ms) ? ms : authTimeSeconds * 1000;

    public static bool HasMfa(ClaimsPrincipal user) => user.FindAll("amr").Any(c => c.Value == "mfa");
}
