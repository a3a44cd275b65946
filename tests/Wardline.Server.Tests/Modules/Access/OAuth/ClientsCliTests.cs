using System.Net;
using System.Text.Json;
using System.Text.RegularExpressions;
using Wardline.Server.Modules.Access.OAuth;
using Wardline.Server.Tests.EndToEnd;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.OAuth;

/// <summary>`wardline clients` and `wardline token` against the store of a running server.</summary>
public sealed partial class ClientsCliTests : IAsyncLifetime
{
    private OAuthServer _server = null!;

    private string Data => _server.Store.Options.DataDirectory!;

    public async Task InitializeAsync()
    {
        _server = await OAuthServer.StartAsync();
        await _server.CreatePhysicianAsync("dr.cli");
    }

    public async Task DisposeAsync() => await _server.DisposeAsync();

    [Fact]
    public async Task A_system_registered_on_the_command_line_gets_tokens_for_its_new_service_account_until_it_is_removed()
    {
        var added = await CliAsync("clients", "add", "lab-engine", "--grant", "client_credentials", "--account", "svc.lab", "--scope", "system/*.rs");
        Assert.True(added.ExitCode == 0, added.Output);
        var secret = Secret().Match(added.Output).Value;
        Assert.NotEmpty(secret);

        var (status, body) = await _server.ClientCredentialsAsync("lab-engine", secret, "system/*.rs");
        Assert.Equal(HttpStatusCode.OK, status);
        Assert.Equal("svc.lab", (string?)OAuthServer.Payload((string)body["access_token"]!)["sub"]);
        using (var engine = _server.Client((string)body["access_token"]!))
        {
            Assert.Equal(HttpStatusCode.OK, (await engine.GetAsync("Observation")).StatusCode);
        }

        var list = await CliAsync("clients", "list", "--json");
        Assert.Equal(0, list.ExitCode);
        var listed = JsonDocument.Parse(list.Output).RootElement.EnumerateArray().Single(c => c.GetProperty("clientId").GetString() == "lab-engine");
        Assert.Equal("svc.lab", listed.GetProperty("account").GetString());
        Assert.DoesNotContain(secret, list.Output, StringComparison.Ordinal);
        Assert.DoesNotContain("hash", list.Output, StringComparison.OrdinalIgnoreCase);

        Assert.Equal(0, (await CliAsync("clients", "remove", "lab-engine")).ExitCode);
        var (refused, error) = await _server.ClientCredentialsAsync("lab-engine", secret, "system/*.rs");
        TokenEndpointTests.AssertOAuthError(refused, error, "invalid_client");
        // The token it already holds stops within the client cache time (the removal was made by another process).
        await Task.Delay(OAuthClients.CacheFor + TimeSpan.FromSeconds(1));
        using var stale = _server.Client((string)body["access_token"]!);
        Assert.Equal(HttpStatusCode.Unauthorized, (await stale.GetAsync("Observation")).StatusCode);
    }

    [Fact]
    public async Task A_public_app_is_registered_without_a_secret()
    {
        var added = await CliAsync("clients", "add", "chart-app", "--grant", "authorization_code", "--redirect-uri", "https://app.example/cb",
            "--scope", "patient/*.rs", "--scope", "launch/patient", "--public");

        Assert.True(added.ExitCode == 0, added.Output);
        Assert.DoesNotMatch(Secret(), added.Output);
        var client = await _server.Service<OAuthClients>().FindAsync("chart-app", CancellationToken.None);
        Assert.NotNull(client);
        Assert.False(client.Confidential);
        Assert.Equal(["https://app.example/cb"], client.RedirectUris);
    }

    [Theory]
    [InlineData("clients", "add", "bad-1", "--grant", "client_credentials", "--account", "svc.x", "--scope", "user/*.rs")]
    [InlineData("clients", "add", "bad-2", "--grant", "client_credentials", "--scope", "system/*.rs")]
    [InlineData("clients", "add", "bad-3", "--grant", "authorization_code", "--redirect-uri", "http://app.example/cb", "--scope", "patient/*.rs")]
    [InlineData("clients", "add", "bad-4", "--grant", "authorization_code", "--redirect-uri", "https://app.example/cb#x", "--scope", "patient/*.rs")]
    [InlineData("clients", "add", "bad-5", "--grant", "password", "--scope", "user/*.rs")]
    [InlineData("clients", "add", "bad 6", "--grant", "client_credentials", "--account", "svc.x", "--scope", "system/*.rs")]
    [InlineData("clients", "add", "bad-7", "--grant", "client_credentials", "--account", "svc.x", "--scope", "system/*.rs?x=1")]
    [InlineData("clients", "add", "bad-8", "--grant", "client_credentials", "--account", "dr.cli", "--scope", "system/*.rs")]
    [InlineData("token", "--user", "dr.cli", "--scope", "user/*.everything")]
    [InlineData("token", "--user", "dr.cli", "--scope", "launch/patient")]
    [InlineData("token", "--user", "nobody.at.all")]
    public async Task Refused_commands_write_nothing_and_exit_with_2(params string[] args)
    {
        var before = (await _server.Service<OAuthClients>().ListAsync(CancellationToken.None)).Count;

        var result = await CliAsync(args);

        Assert.True(result.ExitCode == 2, result.Output);
        Assert.Equal(before, (await _server.Service<OAuthClients>().ListAsync(CancellationToken.None)).Count);
    }

    [Fact]
    public async Task A_token_from_the_command_line_is_accepted_by_the_running_server_and_narrowed_by_its_scope()
    {
        var token = await CliAsync("token", "--user", "dr.cli", "--scope", "user/Condition.rs", "--minutes", "5");
        Assert.True(token.ExitCode == 0, token.Output);
        var jwt = token.Output.Trim();
        var claims = OAuthServer.Payload(jwt);
        // The command knows the store but not the server's address: the store-local issuer, which the server accepts.
        Assert.Equal(TokenSettings.LocalIssuer, (string?)claims["iss"]);
        Assert.Equal("user/Condition.rs", (string?)claims["scope"]);

        using var client = _server.Client(jwt);
        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync("Condition")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await client.GetAsync("Observation")).StatusCode);
    }

    private Task<CliResult> CliAsync(params string[] args) => WardlineCli.RunAsync([.. args, "--data", Data]);

    [GeneratedRegex("wlcs_[A-Za-z0-9_-]{40,}")]
    private static partial Regex Secret();
}
