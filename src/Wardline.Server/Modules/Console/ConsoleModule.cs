using System.Security.Claims;
using Microsoft.AspNetCore.Antiforgery;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Builder;
using Microsoft.AspNetCore.DataProtection;
using Microsoft.AspNetCore.DataProtection.KeyManagement;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using MudBlazor.Services;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Console.Components;

namespace Wardline.Server.Modules.Console;

/// <summary>
/// The web console at /console: Razor components rendered on the server (static SSR, plain form
/// posts, no script at all), signed in with the console's own cookie. The FHIR API is untouched: its
/// bearer-token scheme stays the default, and console requests see only the console cookie.
/// </summary>
internal static class ConsoleModule
{
    public const string PathPrefix = "/console";

    /// <summary>
    /// The console's Content-Security-Policy. Nothing runs but the server's own pages: no script source
    /// at all (the pages are static server rendering). Styles need 'unsafe-inline': MudBlazor's theme
    /// provider writes its CSS variables in a &lt;style&gt; element and its components set style
    /// attributes, neither of which can carry a nonce. Inline styles cannot run code; with script and
    /// connections limited to this origin and images to this origin, the CSS-exfiltration risk
    /// 'unsafe-inline' leaves is small and no untrusted text is ever rendered as markup.
    /// </summary>
    public const string ContentSecurityPolicy =
        "default-src 'self'; script-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self'; font-src 'self'; connect-src 'self'; "
        + "frame-ancestors 'none'; object-src 'none'; base-uri 'self'; form-action 'self'";

    /// <summary>The Data Protection application name: keys and protected payloads are shared by every server that uses it.</summary>
    public const string DataProtectionApplicationName = "wardline-console";

    /// <summary>How long each Data Protection key protects new cookies and forms (Data Protection's default, stated).</summary>
    public static readonly TimeSpan KeyLifetime = TimeSpan.FromDays(90);

    /// <summary>True for requests to the console (its pages, assets and sign-out).</summary>
    public static bool IsConsole(HttpContext http) => http.Request.Path.StartsWithSegments(PathPrefix, StringComparison.OrdinalIgnoreCase);

    /// <summary>Registers the console's components, options, cookie schemes and anti-forgery, leaving the default (token) scheme alone.</summary>
    public static IServiceCollection AddWardlineConsole(this IServiceCollection services, IConfiguration configuration)
    {
        services.AddOptions<ConsoleOptions>()
            .Bind(configuration.GetSection(ConsoleOptions.Section))
            .Validate(o => o.Validate().Count == 0, "Wardline:Console options are out of range (IdleTimeout 1 min-2 h, AbsoluteLifetime from IdleTimeout to 24 h).")
            .ValidateOnStart();
        services.AddRazorComponents();
        services.AddMudServices();
        services.AddAntiforgery(o =>
        {
            o.Cookie.Name = "wardline-console-af";
            o.Cookie.Path = PathPrefix;
            o.Cookie.SameSite = SameSiteMode.Strict;
            o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
            // The security headers middleware sends X-Frame-Options: DENY already.
            o.SuppressXFrameOptionsHeader = true;
        });
        // The keys of the session cookies and anti-forgery tokens (ASP.NET Core Data Protection) live in the store, each
        // key's secret sealed under the keyring: every server sharing the store and keyring reads and writes one key ring,
        // so a session survives a restart and any server behind one address accepts it (no sticky sessions), while a copy
        // of the database without the keyring opens no key. The fixed application name, not the content root, scopes the
        // keys, so servers installed in different folders share them. A key protects new cookies for KeyLifetime; Data
        // Protection stores its successor days before it takes over, and every server re-reads the key ring daily.
        services.AddSingleton<ConsoleKeyRepository>();
        services.AddSingleton<KeyringXmlEncryptor>();
        services.AddDataProtection()
            .SetApplicationName(DataProtectionApplicationName)
            .SetDefaultKeyLifetime(KeyLifetime);
        services.AddOptions<KeyManagementOptions>().Configure<ConsoleKeyRepository, KeyringXmlEncryptor>((o, repository, encryptor) =>
        {
            o.XmlRepository = repository;
            o.XmlEncryptor = encryptor;
        });
        services.AddAuthentication()
            .AddCookie(ConsoleAuth.Scheme)
            .AddCookie(ConsoleAuth.PendingScheme);
        services.AddOptions<CookieAuthenticationOptions>(ConsoleAuth.Scheme).Configure<IOptions<ConsoleOptions>>((o, console) =>
        {
            Harden(o, "wardline-console");
            o.ExpireTimeSpan = console.Value.IdleTimeout;
            o.SlidingExpiration = true;
            o.Events.OnValidatePrincipal = ConsoleAuth.ValidateAsync;
        });
        services.AddOptions<CookieAuthenticationOptions>(ConsoleAuth.PendingScheme).Configure<IOptions<Access.Identity.SignInOptions>>((o, signIn) =>
        {
            Harden(o, "wardline-console-step");
            o.ExpireTimeSpan = signIn.Value.SecondStepWindow;
            o.SlidingExpiration = false;
        });
        return services;
    }

    private static void Harden(CookieAuthenticationOptions o, string name)
    {
        o.Cookie.Name = name;
        o.Cookie.Path = PathPrefix;
        o.Cookie.HttpOnly = true;
        o.Cookie.SameSite = SameSiteMode.Strict;
        o.Cookie.SecurePolicy = CookieSecurePolicy.SameAsRequest;
        o.LoginPath = ConsoleAuth.SignInPath;
        o.AccessDeniedPath = ConsoleAuth.SignInPath;
    }

    /// <summary>
    /// After UseAuthentication: console requests are the console cookie's user and nobody else's (a
    /// bearer token does not sign in to the console), then anti-forgery checks every console form post.
    /// </summary>
    public static WebApplication UseWardlineConsole(this WebApplication app)
    {
        app.Use(async (http, next) =>
        {
            if (IsConsole(http))
            {
                var result = await http.AuthenticateAsync(ConsoleAuth.Scheme);
                http.User = result.Succeeded ? result.Principal : new ClaimsPrincipal(new ClaimsIdentity());
            }
            await next();
        });
        app.UseAntiforgery();
        return app;
    }

    public static WebApplication MapWardlineConsole(this WebApplication app)
    {
        app.MapGet(PathPrefix + "/assets/mudblazor.min.css", () => Asset("mudblazor.min.css"));
        app.MapGet(PathPrefix + "/assets/console.css", () => Asset("console.css"));
        app.MapPost(PathPrefix + "/sign-out", SignOutAsync);
        // Unknown console paths (named routes always win): a page, not the API's OperationOutcome.
        app.MapGet(PathPrefix + "/{**path}", () => Results.Content(NotFoundPage, "text/html; charset=utf-8", statusCode: StatusCodes.Status404NotFound));
        app.MapRazorComponents<App>();
        return app;
    }

    private const string NotFoundPage =
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\" /><title>Not found · Wardline</title>"
        + "<link rel=\"stylesheet\" href=\"/console/assets/console.css\" /></head><body><div class=\"wl-bare\"><div class=\"wl-brand\">Wardline</div>"
        + "<p>There is no such page in the console.</p><p><a href=\"/console\">Go to the console</a></p></div></body></html>";

    private static IResult Asset(string name)
    {
        var stream = typeof(ConsoleModule).Assembly.GetManifestResourceStream("Wardline.Server.Console." + name);
        return stream is null ? Results.NotFound() : Results.Stream(stream, "text/css; charset=utf-8");
    }

    private static async Task<IResult> SignOutAsync(HttpContext http, IAntiforgery antiforgery, AccountStore accounts, TimeProvider time)
    {
        try
        {
            await antiforgery.ValidateRequestAsync(http);
        }
        catch (AntiforgeryValidationException)
        {
            return Results.BadRequest();
        }
        // Signing out ends every console session of the account, not only this browser's cookie: a copy of the cookie
        // taken earlier stops working too (on other servers within the account cache's few seconds).
        if ((await http.AuthenticateAsync(ConsoleAuth.Scheme)).Principal?.Identity?.Name is { } name)
            await accounts.EndSessionsAsync(name, time.GetUtcNow(), http.RequestAborted);
        await http.SignOutAsync(ConsoleAuth.Scheme);
        await http.SignOutAsync(ConsoleAuth.PendingScheme);
        return Results.Redirect(ConsoleAuth.SignInPath + "?signed-out=1");
    }
}
