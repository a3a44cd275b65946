using System.Net;
using Wardline.Server.Hosting;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access;

public sealed class RateLimitTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "wl-rate-" + Guid.NewGuid().ToString("N")[..8]);
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        var options = new WardlineOptions { DataDirectory = _dir };
        options.Access.RateLimits.UserPerMinute = 60; // a burst of 10, then one a second
        options.Access.RateLimits.AnonymousPerMinute = 60;
        _server = await TestServer.StartAsync(options);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task A_user_over_the_limit_gets_429_with_retry_after_and_an_operation_outcome()
    {
        var statuses = new List<HttpResponseMessage>();
        for (var i = 0; i < 30; i++)
        {
            statuses.Add(await _server.Client.GetAsync("Patient?_count=1"));
        }
        var refused = statuses.Where(r => r.StatusCode == HttpStatusCode.TooManyRequests).ToList();
        Assert.NotEmpty(refused);
        Assert.Contains(statuses, r => r.StatusCode == HttpStatusCode.OK);
        var first = refused[0];
        Assert.True(int.Parse(first.Headers.GetValues("Retry-After").Single(), System.Globalization.CultureInfo.InvariantCulture) >= 1);
        Assert.Contains("Too many requests", await first.DiagnosticsAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Callers_without_a_token_are_limited_by_address_and_refused_before_any_work()
    {
        using var anonymous = _server.AnonymousClient();
        var statuses = new List<HttpStatusCode>();
        for (var i = 0; i < 30; i++)
        {
            statuses.Add((await anonymous.GetAsync("Patient/x")).StatusCode);
        }
        Assert.Contains(HttpStatusCode.Unauthorized, statuses);
        Assert.Contains(HttpStatusCode.TooManyRequests, statuses);
    }
}
