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

    public static async Task SignInAsync(HttpContext http, string name, bool mfa, TimeProvider time)
    {
        var claims = new List<Claim>
        {
            new(ClaimTypes.Name, name),
            new("amr", "pwd"),
            new(AuthTimeClaim, time.GetUtcNow().ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture)),
        };
        if (mfa) claims.Add(new Claim("amr", "mfa"));
        await http.SignOutAsync(PendingScheme);
        await http.SignInAsync(Scheme, new ClaimsPrincipal(new ClaimsIdentity(claims, Scheme)), new AuthenticationProperties { IsPersistent = false });
    }

    public static Task BeginSecondStepAsync(HttpContext http, string name, string step) =>
        http.SignInAsync(PendingScheme, new ClaimsPrincipal(new ClaimsIdentity([new Claim(ClaimTypes.Name, name), new Claim(StepClaim, step)], PendingScheme)));

    /// <summary>The account waiting for <paramref name="step"/> in this browser, or null.</summary>
    public static async Task<string?> PendingAsync(HttpContext http, string step)
    {
        var result = await http.AuthenticateAsync(PendingScheme);
        return result.Succeeded && result.Principal.FindFirst(StepClaim)?.Value == step ? result.Principal.Identity?.Name : null;
    }

    /// <summary>
    /// Every request: the session ends past its absolute lifetime, and at once when the account is
    /// disabled, expired or gone (the account lookup is cached for a few seconds).
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
            && account.IsActive(now);
        if (!valid)
        {
            context.RejectPrincipal();
            await context.HttpContext.SignOutAsync(Scheme);
        }
    }

    public static bool HasMfa(ClaimsPrincipal user) => user.FindAll("amr").Any(c => c.Value == "mfa");
}
