using System.Net;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.OAuth;
using Wardline.Server.Modules.Records;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.OAuth;

/// <summary>Tokens of an external OpenID Connect provider, mapped to Wardline users.</summary>
public sealed class ExternalOidcTests : IAsyncLifetime
{
    private const string Audience = "wardline-api";
    private TestOidcProvider _idp = null!;
    private OAuthServer _server = null!;
    private string _patient = null!;

    public async Task InitializeAsync()
    {
        _idp = await TestOidcProvider.StartAsync();
        _server = await OAuthServer.StartAsync(o =>
        {
            var external = new ExternalOidcOptions { Authority = _idp.Issuer, Audience = Audience, RoleClaim = "groups", DepartmentClaim = "dept" };
            external.RoleMap["doctors"] = "physician";
            external.DepartmentMap["CARD"] = "cardiology";
            o.Access.ExternalOidc = external;
        });
        await _server.CreatePhysicianAsync("dr.local");
        // The department the provider's "CARD" maps to.
        var cardiology = new Hl7.Fhir.Model.Organization { Name = "Cardiology", Identifier = [new Hl7.Fhir.Model.Identifier("https://wardline.example/department", "cardiology")] };
        Assert.Empty((await _server.Service<RecordImporter>().ImportResourceAsync(cardiology, "oauth-test", CancellationToken.None)).Problems);
        var token = await _server.Service<AccessTokens>().IssueAsync("dr.local", TimeSpan.FromMinutes(10), CancellationToken.None);
        using var doctor = _server.Client(token);
        _patient = await doctor.CreateAsync("Patient", FhirTest.Patient("External"));
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _idp.DisposeAsync();
    }

    [Fact]
    public async Task A_provider_token_for_a_local_account_acts_as_that_account()
    {
        var token = _idp.Mint(Audience, new Dictionary<string, object> { ["sub"] = "ext-123", ["preferred_username"] = "dr.local" });
        using var client = _server.Client(token);

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"Patient/{_patient}")).StatusCode);
    }

    [Fact]
    public async Task A_provider_user_without_a_local_account_gets_the_mapped_roles_and_no_more()
    {
        var doctor = _idp.Mint(Audience, new Dictionary<string, object>
        {
            ["preferred_username"] = "ext.doctor", ["groups"] = new[] { "doctors", "golfers" }, ["dept"] = "CARD",
        });
        var nobody = _idp.Mint(Audience, new Dictionary<string, object> { ["preferred_username"] = "ext.nobody", ["groups"] = new[] { "admins" } });
        using var asDoctor = _server.Client(doctor);
        using var asNobody = _server.Client(nobody);

        // A tier-2 cardiologist may search observations (the policy filters them); an unmapped role may not at all.
        Assert.Equal(HttpStatusCode.OK, (await asDoctor.GetAsync("Observation")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await asNobody.GetAsync("Observation")).StatusCode);
    }

    [Fact]
    public async Task A_provider_token_for_another_audience_is_refused()
    {
        var token = _idp.Mint("some-other-api", new Dictionary<string, object> { ["preferred_username"] = "dr.local" });
        using var client = _server.Client(token);

        var response = await client.GetAsync($"Patient/{_patient}");
        Assert.Equal(HttpStatusCode.Unauthorized, response.StatusCode);
        Assert.Equal("Bearer", response.Headers.WwwAuthenticate.ToString());
        Assert.Equal("Authentication is required.", await response.DiagnosticsAsync());
    }

    [Fact]
    public async Task A_local_account_is_bound_to_the_first_provider_user_and_a_namesake_is_refused_until_an_administrator_unlinks_it()
    {
        var first = _idp.Mint(Audience, new Dictionary<string, object> { ["sub"] = "ext-123", ["preferred_username"] = "dr.local" });
        using (var client = _server.Client(first))
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"Patient/{_patient}")).StatusCode);
        }
        var accounts = _server.Service<Wardline.Server.Modules.Access.Identity.AccountStore>();
        Assert.Equal(_idp.Issuer.TrimEnd('/') + "|ext-123", (await accounts.FindAsync("dr.local", CancellationToken.None))!.ExternalSubject);

        // Another provider user now carries the name (renamed, or made by the provider's administrators): refused, and recorded.
        var namesake = _idp.Mint(Audience, new Dictionary<string, object> { ["sub"] = "ext-666", ["preferred_username"] = "dr.local" });
        using (var client = _server.Client(namesake))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync($"Patient/{_patient}")).StatusCode);
        }
        using (var client = _server.Client(first))
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"Patient/{_patient}")).StatusCode);
        }
        // A token without a subject cannot be bound, so it cannot act as a local account.
        var anonymous = _idp.Mint(Audience, new Dictionary<string, object> { ["preferred_username"] = "dr.local" });
        using (var client = _server.Client(anonymous))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync($"Patient/{_patient}")).StatusCode);
        }

        // The person's provider account was re-created: an administrator unlinks, and the next sign-in binds the new one.
        Assert.IsType<Wardline.Server.Modules.Access.Identity.AccountResult.Done>(
            await _server.Service<Wardline.Server.Modules.Access.Identity.AccountService>().UnlinkExternalAsync("dr.local", "test", CancellationToken.None));
        using (var client = _server.Client(namesake))
        {
            Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"Patient/{_patient}")).StatusCode);
        }
        using (var client = _server.Client(first))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync($"Patient/{_patient}")).StatusCode);
        }
    }

    [Fact]
    public async Task A_provider_token_from_before_its_local_account_was_disabled_stays_refused_after_it_is_enabled()
    {
        var token = _idp.Mint(Audience, new Dictionary<string, object> { ["sub"] = "ext-123", ["preferred_username"] = "dr.local" });
        var accounts = _server.Service<Wardline.Server.Modules.Access.Identity.AccountService>();
        // The provider's "iat" has whole seconds: the change comes in a later second than the token.
        await Task.Delay(TimeSpan.FromMilliseconds(1100));
        Assert.IsType<Wardline.Server.Modules.Access.Identity.AccountResult.Done>(await accounts.DisableAsync("dr.local", "test", CancellationToken.None));
        Assert.IsType<Wardline.Server.Modules.Access.Identity.AccountResult.Done>(await accounts.EnableAsync("dr.local", "test", CancellationToken.None));

        using (var client = _server.Client(token))
        {
            Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync($"Patient/{_patient}")).StatusCode);
        }
        using var again = _server.Client(_idp.Mint(Audience, new Dictionary<string, object> { ["sub"] = "ext-123", ["preferred_username"] = "dr.local" }));
        Assert.Equal(HttpStatusCode.OK, (await again.GetAsync($"Patient/{_patient}")).StatusCode);
    }

    [Fact]
    public async Task A_provider_token_of_a_disabled_local_account_is_refused()
    {
        await _server.CreatePhysicianAsync("dr.gone");
        await _server.Service<Wardline.Server.Modules.Access.Identity.AccountService>().DisableAsync("dr.gone", "test", CancellationToken.None);
        var token = _idp.Mint(Audience, new Dictionary<string, object> { ["preferred_username"] = "dr.gone" });
        using var client = _server.Client(token);

        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync($"Patient/{_patient}")).StatusCode);
    }

    [Fact]
    public async Task A_token_claiming_the_provider_but_signed_by_another_key_is_refused()
    {
        await using var impostor = await TestOidcProvider.StartAsync();
        var forged = new Microsoft.IdentityModel.JsonWebTokens.JsonWebTokenHandler().CreateToken(new Microsoft.IdentityModel.Tokens.SecurityTokenDescriptor
        {
            Issuer = _idp.Issuer,
            Audience = Audience,
            Expires = DateTime.UtcNow.AddMinutes(5),
            Claims = new Dictionary<string, object> { ["preferred_username"] = "dr.local" },
            SigningCredentials = new Microsoft.IdentityModel.Tokens.SigningCredentials(impostor.Key, Microsoft.IdentityModel.Tokens.SecurityAlgorithms.RsaSha256),
        });
        using var client = _server.Client(forged);

        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync($"Patient/{_patient}")).StatusCode);
    }
    [Fact]
    public async Task A_provider_user_carrying_a_service_accounts_name_is_refused()
    {
        // A token-only account (an integration's service account) is a machine's: a provider user of that name does not become it.
        await _server.CreateAccountAsync(Wardline.Server.Modules.Access.Identity.Account.New("svc.feed", "Feed") with { Roles = ["integration_engine"] }, null);
        var token = _idp.Mint(Audience, new Dictionary<string, object> { ["sub"] = "ext-999", ["preferred_username"] = "svc.feed" });
        using var client = _server.Client(token);

        Assert.Equal(HttpStatusCode.Unauthorized, (await client.GetAsync($"Patient/{_patient}")).StatusCode);
    }

    [Theory]
    [InlineData(false)]
    [InlineData(true)]
    public async Task The_providers_mfa_claim_is_believed_only_when_configured(bool trust)
    {
        var options = new ExternalOidcOptions { Authority = _idp.Issuer, Audience = Audience, TrustProviderMfa = trust };
        var principal = new System.Security.Claims.ClaimsPrincipal(new System.Security.Claims.ClaimsIdentity(
            [new("iss", _idp.Issuer), new("sub", "ext-123"), new("preferred_username", "dr.local"), new("amr", "mfa"), new("amr", "pwd")], "test"));

        var identity = await ExternalOidc.MapAsync(principal, options, _server.App.Services, CancellationToken.None);

        Assert.NotNull(identity);
        Assert.Equal(trust, identity.FindAll("amr").Any(c => c.Value == "mfa"));
    }

    [Fact]
    public void A_role_or_department_claim_without_its_map_is_refused_at_start()
    {
        var roles = new ExternalOidcOptions { Authority = _idp.Issuer, Audience = Audience, RoleClaim = "groups" };
        var departments = new ExternalOidcOptions { Authority = _idp.Issuer, Audience = Audience, DepartmentClaim = "dept" };
        var mapped = new ExternalOidcOptions { Authority = _idp.Issuer, Audience = Audience, RoleClaim = "groups" };
        mapped.RoleMap["doctors"] = "physician";

        Assert.Contains(roles.Validate(), p => p.Contains("RoleMap is required", StringComparison.Ordinal));
        Assert.Contains(departments.Validate(), p => p.Contains("DepartmentMap is required", StringComparison.Ordinal));
        Assert.Empty(mapped.Validate());
    }
}
