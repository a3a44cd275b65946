using System.Net;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Hosting;

/// <summary>
/// An unknown address answers in the language of its route: an OperationOutcome under /fhir, a page a browser can show
/// under /console, ProblemDetails on the admin API and elsewhere (they used to get FHIR JSON too).
/// </summary>
public sealed class StatusPageTests : IAsyncLifetime
{
    private TestStore _store = null!;
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(StoreKind.Sqlite);
        var options = _store.SharedOptions();
        options.Monitoring.Enabled = false;
        _server = await TestServer.StartAsync(options);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _store.DisposeAsync();
    }

    [Theory]
    [InlineData("/fhir/Patient/a/b/c/d", "application/fhir+json", "No such FHIR endpoint.")]
    [InlineData("/console/no-such-page", "text/html", "<!DOCTYPE html>")]
    [InlineData("/monitor/no-such-thing", "application/problem+json", "\"title\":\"Not found\"")]
    [InlineData("/no-such-route", "application/problem+json", "\"status\":404")]
    public async Task An_unknown_address_is_a_404_in_the_language_of_its_route(string path, string mediaType, string expected)
    {
        using var anonymous = new HttpClient { BaseAddress = _server.BaseUri };

        var response = await anonymous.GetAsync(path);
        var body = await response.Content.ReadAsStringAsync();

        Assert.Equal(HttpStatusCode.NotFound, response.StatusCode);
        Assert.Equal(mediaType, response.Content.Headers.ContentType?.MediaType);
        Assert.Contains(expected, body, StringComparison.Ordinal);
    }
}
