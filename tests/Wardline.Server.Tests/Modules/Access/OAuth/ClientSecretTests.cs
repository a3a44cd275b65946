using System.Net;
using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Access.OAuth;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Tests.Modules.Access.OAuth;

/// <summary>
/// Client secrets are stored as SHA-256 and compared in constant time; clients registered when they were
/// stored as PBKDF2 password hashes keep working, and are moved to SHA-256 at their next successful use.
/// </summary>
public sealed class ClientSecretTests : IAsyncLifetime
{
    private const string EngineAccount = "svc.secrets";
    private static readonly CancellationToken None = CancellationToken.None;
    private OAuthServer _s = null!;

    public async Task InitializeAsync()
    {
        _s = await OAuthServer.StartAsync();
        await _s.CreateAccountAsync(Account.New(EngineAccount, "Engine") with { Roles = ["integration_engine"] }, null);
    }

    public async Task DisposeAsync() => await _s.DisposeAsync();

    private OAuthClients Clients => _s.Service<OAuthClients>();

    [Fact]
    public async Task A_new_client_secret_is_stored_as_its_sha256_and_authenticates()
    {
        var secret = (await _s.AddClientAsync("new-engine", "client_credentials", ["system/*.rs"], EngineAccount))!;

        var stored = await StoredHashAsync("new-engine");
        Assert.Equal(ClientSecrets.Hash(secret), stored);
        Assert.Matches("^sha256:[0-9a-f]{64}$", stored);
        Assert.DoesNotContain(secret, stored, StringComparison.Ordinal);

        Assert.NotNull(await Clients.AuthenticateAsync("new-engine", secret, None));
        Assert.Null(await Clients.AuthenticateAsync("new-engine", secret + "x", None));
        Assert.Null(await Clients.AuthenticateAsync("new-engine", secret[..^1], None));
        Assert.Null(await Clients.AuthenticateAsync("new-engine", "", None));
        Assert.Null(await Clients.AuthenticateAsync("new-engine", null, None));
        Assert.Equal(HttpStatusCode.OK, (await _s.ClientCredentialsAsync("new-engine", secret, "system/*.rs")).Status);
        var (status, body) = await _s.ClientCredentialsAsync("new-engine", secret + "x", "system/*.rs");
        TokenEndpointTests.AssertOAuthError(status, body, "invalid_client");
    }

    [Fact]
    public async Task A_client_with_a_legacy_pbkdf2_hash_still_authenticates_and_is_moved_to_sha256_at_its_first_success()
    {
        var secret = (await _s.AddClientAsync("old-engine", "client_credentials", ["system/*.rs"], EngineAccount))!;
        // As the server stored it before: ASP.NET Core Identity's v3 password hash.
        var legacy = new PasswordHasher<string>(Options.Create(new PasswordHasherOptions
        {
            CompatibilityMode = PasswordHasherCompatibilityMode.IdentityV3,
            IterationCount = PasswordHashing.Iterations,
        })).HashPassword("old-engine", secret);
        await SetStoredHashAsync("old-engine", legacy);

        Assert.Null(await Clients.AuthenticateAsync("old-engine", secret + "x", None));
        var (status, body) = await _s.ClientCredentialsAsync("old-engine", secret + "x", "system/*.rs");
        TokenEndpointTests.AssertOAuthError(status, body, "invalid_client");
        Assert.Equal(legacy, await StoredHashAsync("old-engine")); // a wrong secret changes nothing

        Assert.Equal(HttpStatusCode.OK, (await _s.ClientCredentialsAsync("old-engine", secret, "system/*.rs")).Status);
        Assert.Equal(ClientSecrets.Hash(secret), await StoredHashAsync("old-engine"));

        Assert.NotNull(await Clients.AuthenticateAsync("old-engine", secret, None));
        Assert.Null(await Clients.AuthenticateAsync("old-engine", secret + "x", None));
    }

    [Fact]
    public async Task A_legacy_hash_of_fewer_iterations_also_still_works()
    {
        var secret = (await _s.AddClientAsync("older-engine", "client_credentials", ["system/*.rs"], EngineAccount))!;
        await SetStoredHashAsync("older-engine", new PasswordHasher<string>().HashPassword("x", secret));

        Assert.Null(await Clients.AuthenticateAsync("older-engine", "wlcs_" + secret, None));
        Assert.NotNull(await Clients.AuthenticateAsync("older-engine", secret, None));
        Assert.StartsWith(ClientSecrets.Prefix, await StoredHashAsync("older-engine"), StringComparison.Ordinal);
    }

    [Fact]
    public async Task An_unknown_client_id_is_refused_after_the_same_secret_check_as_a_known_one()
    {
        var before = Clients.SecretChecks;
        Assert.Null(await Clients.AuthenticateAsync("no-such-client", "wlcs_guess", None));
        Assert.Equal(before + 1, Clients.SecretChecks);
        var (status, body) = await _s.ClientCredentialsAsync("no-such-client", "wlcs_guess", "system/*.rs");
        TokenEndpointTests.AssertOAuthError(status, body, "invalid_client");
    }

    [Theory]
    [InlineData(null)]
    [InlineData("sha256:")]
    [InlineData("sha256:zz")]
    [InlineData("sha256:0000000000000000000000000000000000000000000000000000000000000000")]
    [InlineData("sha256:00000000000000000000000000000000000000000000000000000000000000000000")]
    public void A_missing_or_unreadable_digest_never_matches(string? stored)
    {
        Assert.Equal(ClientSecrets.Verdict.Failed, ClientSecrets.Verify(stored, "wlcs_anything"));
        Assert.Equal(ClientSecrets.Verdict.Failed, ClientSecrets.Verify(stored, ""));
    }

    [Fact]
    public void A_digest_matches_its_own_secret_only()
    {
        var stored = ClientSecrets.Hash("wlcs_right");
        Assert.Equal(ClientSecrets.Verdict.Match, ClientSecrets.Verify(stored, "wlcs_right"));
        Assert.Equal(ClientSecrets.Verdict.Failed, ClientSecrets.Verify(stored, "wlcs_wrong"));
        Assert.Equal(ClientSecrets.Verdict.LegacyMatch, ClientSecrets.Verify(PasswordHashing.Hash("wlcs_right"), "wlcs_right"));
        Assert.Equal(ClientSecrets.Verdict.Failed, ClientSecrets.Verify(PasswordHashing.Hash("wlcs_right"), "wlcs_wrong"));
    }

    private async Task<string?> StoredHashAsync(string clientId)
    {
        await using var c = await _s.Service<SqlDialect>().OpenAsync(None);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT secret_hash FROM oauth_clients WHERE client_id = @id";
        RecordStore.Add(cmd, "@id", clientId);
        return (string?)await cmd.ExecuteScalarAsync(None);
    }

    private async Task SetStoredHashAsync(string clientId, string hash)
    {
        var rows = await _s.Service<GroupCommitter>().RunAsync(async (c, tx, ct) =>
        {
            await using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "UPDATE oauth_clients SET secret_hash = @h WHERE client_id = @id";
            RecordStore.Add(cmd, "@h", hash);
            RecordStore.Add(cmd, "@id", clientId);
            return await cmd.ExecuteNonQueryAsync(ct);
        });
        Assert.Equal(1, rows);
    }
}
