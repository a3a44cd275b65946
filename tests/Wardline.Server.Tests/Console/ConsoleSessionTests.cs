using System.Globalization;
using System.Net;
using System.Security.Claims;
using Microsoft.AspNetCore.Authentication;
using Microsoft.AspNetCore.Authentication.Cookies;
using Microsoft.AspNetCore.Http;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Console;

namespace Wardline.Server.Tests.Console;

/// <summary>The console session's limits, and that the API's bearer tokens do not open the console.</summary>
[Collection(ConsoleCollection.Name)]
public sealed class ConsoleSessionTests(ConsoleFixture fx)
{
    [Fact]
    public void The_session_cookie_slides_over_15_minutes_and_the_second_step_cookie_lasts_the_sign_in_window()
    {
        var cookies = fx.Server.Service<IOptionsMonitor<CookieAuthenticationOptions>>();

        var session = cookies.Get(ConsoleAuth.Scheme);
        var step = cookies.Get(ConsoleAuth.PendingScheme);

        Assert.Equal(TimeSpan.FromMinutes(15), session.ExpireTimeSpan);
        Assert.True(session.SlidingExpiration);
        Assert.True(session.Cookie.HttpOnly);
        Assert.Equal(SameSiteMode.Strict, session.Cookie.SameSite);
        Assert.Equal(CookieSecurePolicy.SameAsRequest, session.Cookie.SecurePolicy);
        Assert.Equal(fx.Server.Service<IOptions<SignInOptions>>().Value.SecondStepWindow, step.ExpireTimeSpan);
        Assert.False(step.SlidingExpiration);
        Assert.True(step.Cookie.HttpOnly);
        Assert.Equal(SameSiteMode.Strict, step.Cookie.SameSite);
    }

    [Fact]
    public async Task A_session_ends_after_its_absolute_lifetime_however_busy_and_at_once_when_the_account_is_gone_or_disabled()
    {
        await fx.CreateAccountAsync(Account.New("sam.session", "Sam Session") with { Roles = ["nurse"] });
        var signedIn = DateTimeOffset.UtcNow;

        Assert.True(await StillValidAsync("sam.session", signedIn, at: signedIn.AddHours(7.9)));
        Assert.False(await StillValidAsync("sam.session", signedIn, at: signedIn.AddHours(8)));
        Assert.False(await StillValidAsync("no.such.account", signedIn, at: signedIn.AddMinutes(1)));
        await fx.Server.Service<AccountService>().DisableAsync("sam.session", "test", CancellationToken.None);
        Assert.False(await StillValidAsync("sam.session", signedIn, at: signedIn.AddMinutes(1)));
    }

    [Fact]
    public async Task A_bearer_token_of_the_api_does_not_sign_anyone_in_to_the_console()
    {
        using var http = new HttpClient(new HttpClientHandler { AllowAutoRedirect = false }) { BaseAddress = new Uri(fx.Origin) };
        http.DefaultRequestHeaders.Authorization = new System.Net.Http.Headers.AuthenticationHeaderValue("Bearer", fx.Server.Token);

        var response = await http.GetAsync("/console");

        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal(ConsoleAuth.SignInPath, response.Headers.Location?.AbsolutePath);
    }

    /// <summary>Runs the cookie's per-request check as the server would at <paramref name="at"/>.</summary>
    private async Task<bool> StillValidAsync(string name, DateTimeOffset signedIn, DateTimeOffset at)
    {
        var services = new ServiceCollection()
            .AddSingleton<TimeProvider>(new FixedTime(at))
            .AddSingleton(Options.Create(new ConsoleOptions()))
            .AddSingleton(fx.Server.Service<AccountService>())
            .AddLogging();
        services.AddAuthentication().AddCookie(ConsoleAuth.Scheme);
        await using var provider = services.BuildServiceProvider();
        var http = new DefaultHttpContext { RequestServices = provider };
        var principal = new ClaimsPrincipal(new ClaimsIdentity(
            [new Claim(ClaimTypes.Name, name), new Claim(ConsoleAuth.AuthTimeClaim, signedIn.ToUnixTimeSeconds().ToString(CultureInfo.InvariantCulture))],
            ConsoleAuth.Scheme));
        var scheme = new AuthenticationScheme(ConsoleAuth.Scheme, null, typeof(CookieAuthenticationHandler));
        var context = new CookieValidatePrincipalContext(http, scheme, new CookieAuthenticationOptions(), new AuthenticationTicket(principal, ConsoleAuth.Scheme));

        await ConsoleAuth.ValidateAsync(context);

        return context.Principal is not null;
    }

    private sealed class FixedTime(DateTimeOffset now) : TimeProvider
    {
        public override DateTimeOffset GetUtcNow() => now;
    }
}
