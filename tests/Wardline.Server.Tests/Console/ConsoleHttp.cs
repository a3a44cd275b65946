using System.Net;
using System.Text.RegularExpressions;
using Wardline.Server.Modules.Console;

namespace Wardline.Server.Tests.Console;

/// <summary>The console driven over plain HTTP, as a browser without scripts would: a cookie jar, no automatic redirects.</summary>
internal static partial class ConsoleHttp
{
    public static HttpClient Browser(string origin, CookieContainer cookies) =>
        new(new HttpClientHandler { CookieContainer = cookies, AllowAutoRedirect = false, UseCookies = true })
        {
            BaseAddress = new Uri(origin),
            Timeout = TimeSpan.FromSeconds(60),
        };

    /// <summary>The console's home page opens (for <paramref name="user"/>, when given).</summary>
    public static async Task AssertSignedInAsync(HttpClient browser, string? user = null)
    {
        var response = await browser.GetAsync("/console");
        Assert.Equal(HttpStatusCode.OK, response.StatusCode);
        if (user is not null) Assert.Contains($"<td>{user}</td>", await response.Content.ReadAsStringAsync(), StringComparison.Ordinal);
    }

    /// <summary>The console sends the browser to its sign-in page, and that page opens.</summary>
    public static async Task AssertSentToSignInAsync(HttpClient browser)
    {
        var response = await browser.GetAsync("/console");
        Assert.Equal(HttpStatusCode.Redirect, response.StatusCode);
        Assert.Equal(ConsoleAuth.SignInPath, response.Headers.Location?.AbsolutePath ?? response.Headers.Location?.OriginalString);
        var signIn = await browser.GetAsync(response.Headers.Location);
        Assert.Equal(HttpStatusCode.OK, signIn.StatusCode);
    }

    public static async Task<string> AntiforgeryTokenAsync(HttpClient browser, string path)
    {
        var page = await (await browser.GetAsync(path)).Content.ReadAsStringAsync();
        var field = AntiforgeryField().Match(page);
        Assert.True(field.Success, "the page has no anti-forgery token");
        return WebUtility.HtmlDecode(field.Groups[1].Value);
    }

    [GeneratedRegex("name=\"__RequestVerificationToken\"[^>]*value=\"([^\"]+)\"")]
    private static partial Regex AntiforgeryField();
}
