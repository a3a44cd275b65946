using System.Net;
using System.Text.Json.Nodes;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Access.OAuth;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.OAuth;

/// <summary>One server with an officer, an administrator, a physician's record and a client registered for the monitoring API.</summary>
public sealed class ApiScopeFixture : IAsyncLifetime
{
    public const string Officer = "po.scopes";
    public const string Admin = "admin.scopes";
    public const string SiemClient = "siem-puller";
    public const string SiemAccount = "svc.siem";
    public const string FhirClient = "fhir-only";

    public OAuthServer Server { get; private set; } = null!;

    public string SiemSecret { get; private set; } = null!;

    public string FhirSecret { get; private set; } = null!;

    public string Patient { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await OAuthServer.StartAsync();
        await Server.CreatePhysicianAsync("dr.scopes");
        await Server.CreateAccountAsync(Account.New(Officer, Officer) with { Roles = ["privacy_officer"] });
        await Server.CreateAccountAsync(Account.New(Admin, Admin) with { Roles = ["administrator"] });
        await Server.CreateAccountAsync(Account.New(SiemAccount, "SIEM") with { Roles = ["security_officer"] }, null);
        SiemSecret = (await Server.AddClientAsync(SiemClient, "client_credentials", [ApiScopes.Monitor], SiemAccount))!;
        FhirSecret = (await Server.AddClientAsync(FhirClient, "client_credentials", ["system/*.rs"], SiemAccount))!;
        using var doctor = Server.Client(await TokenAsync("dr.scopes"));
        Patient = await doctor.CreateAsync("Patient", FhirTest.Patient("Scope"));
    }

    public async Task<string> TokenAsync(string user, string? scope = null) =>
        (await Server.Service<AccessTokens>().IssueAsync(user, TimeSpan.FromMinutes(30), scope, CancellationToken.None))!;

    public async Task DisposeAsync() => await Server.DisposeAsync();
}

/// <summary>
/// Wardline's own APIs (/monitor, /backup, /ledger) need their API scope on a narrowed token, so that an app a
/// privacy officer or administrator authorized for clinical scopes cannot reach the alert queue or the backups;
/// and a token narrowed to an API scope reaches no FHIR data (ASVS 8.2.1, 8.3.1: access checked on every API, least privilege).
/// </summary>
public sealed class ApiScopeTests(ApiScopeFixture f) : IClassFixture<ApiScopeFixture>
{
    private OAuthServer S => f.Server;

    private HttpClient Api(string token)
    {
        var client = S.Client(token);
        client.BaseAddress = new Uri(S.Origin + "/");
        return client;
    }

    [Theory]
    [InlineData("monitor/alerts")]
    [InlineData("monitor/status")]
    [InlineData("monitor/notifications")]
    public async Task An_officers_token_narrowed_to_clinical_scopes_cannot_read_the_monitoring_api(string path)
    {
        using var narrowed = Api(await f.TokenAsync(ApiScopeFixture.Officer, "user/Observation.rs"));
        using var whole = Api(await f.TokenAsync(ApiScopeFixture.Officer));
        using var withScope = Api(await f.TokenAsync(ApiScopeFixture.Officer, "user/Observation.rs wardline/monitor"));

        var refused = await narrowed.GetAsync(path);
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("wardline/monitor", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.OK, (await whole.GetAsync(path)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await withScope.GetAsync(path)).StatusCode);
    }

    [Fact]
    public async Task A_narrowed_token_cannot_change_an_alert_either()
    {
        using var narrowed = Api(await f.TokenAsync(ApiScopeFixture.Officer, "user/*.cruds"));

        var change = await narrowed.PostAsync("monitor/alerts/1/comments", new StringContent("""{"note":"x"}""", System.Text.Encoding.UTF8, "application/json"));
        var replay = await narrowed.PostAsync("monitor/replay", new StringContent("{}", System.Text.Encoding.UTF8, "application/json"));

        Assert.Equal(HttpStatusCode.Forbidden, change.StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, replay.StatusCode);
    }

    [Fact]
    public async Task A_token_narrowed_to_an_api_scope_reaches_no_fhir_data()
    {
        using var monitorOnly = S.Client(await f.TokenAsync("dr.scopes", ApiScopes.Monitor));
        using var whole = S.Client(await f.TokenAsync("dr.scopes"));

        Assert.Equal(HttpStatusCode.OK, (await whole.GetAsync($"Patient/{f.Patient}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await monitorOnly.GetAsync($"Patient/{f.Patient}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await monitorOnly.GetAsync("Patient")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await monitorOnly.PostJsonAsync("Patient", FhirTest.Patient("Nobody"))).StatusCode);
        using var officer = S.Client(await f.TokenAsync(ApiScopeFixture.Officer, ApiScopes.Monitor));
        Assert.Equal(HttpStatusCode.Forbidden, (await officer.GetAsync($"AuditEvent?patient={f.Patient}")).StatusCode);
    }

    [Fact]
    public async Task Backups_need_the_backup_scope_on_a_narrowed_token()
    {
        using var narrowed = Api(await f.TokenAsync(ApiScopeFixture.Admin, "user/*.rs wardline/monitor"));
        using var withScope = Api(await f.TokenAsync(ApiScopeFixture.Admin, ApiScopes.Backup));

        var refused = await narrowed.GetAsync("backup/status");
        Assert.Equal(HttpStatusCode.Forbidden, refused.StatusCode);
        Assert.Contains("wardline/backup", await refused.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.Forbidden, (await narrowed.PostAsync("backup/run", null)).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await withScope.GetAsync("backup/status")).StatusCode);
        // The scope does not stand in for the role: an officer is not a backup operator.
        using var officer = Api(await f.TokenAsync(ApiScopeFixture.Officer, ApiScopes.Backup));
        Assert.Equal(HttpStatusCode.Forbidden, (await officer.GetAsync("backup/status")).StatusCode);
    }

    [Fact]
    public async Task Ledger_entries_and_signing_need_the_ledger_scope_on_a_narrowed_token()
    {
        using var narrowed = Api(await f.TokenAsync(ApiScopeFixture.Officer, "user/*.rs"));
        using var withScope = Api(await f.TokenAsync(ApiScopeFixture.Officer, ApiScopes.Ledger));

        Assert.Equal(HttpStatusCode.Forbidden, (await narrowed.PostAsync("ledger/head", null)).StatusCode);
        var signed = await withScope.PostAsync("ledger/head", null);
        Assert.Equal(HttpStatusCode.OK, signed.StatusCode);
        var size = (long)(await signed.ReadJsonAsync())["treeSize"]!;

        // Entry 1 onwards are the physician's writes: an auditor sees them beside the proof only with the scope.
        var hashesOnly = (await narrowed.GetAsync($"ledger/proof/inclusion?index=1&size={size}"));
        var withEntry = (await withScope.GetAsync($"ledger/proof/inclusion?index=1&size={size}"));
        Assert.Equal(HttpStatusCode.OK, hashesOnly.StatusCode);
        Assert.Null((await hashesOnly.ReadJsonAsync())["entry"]);
        Assert.NotNull((await withEntry.ReadJsonAsync())["entry"]);
    }

    [Fact]
    public async Task A_client_registered_for_the_monitoring_api_gets_a_token_for_it_and_nothing_more()
    {
        var (status, body) = await S.ClientCredentialsAsync(ApiScopeFixture.SiemClient, f.SiemSecret, ApiScopes.Monitor);
        Assert.Equal(HttpStatusCode.OK, status);
        using var siem = Api((string)body["access_token"]!);

        Assert.Equal(HttpStatusCode.OK, (await siem.GetAsync("monitor/alerts")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await siem.GetAsync("backup/status")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await siem.GetAsync($"fhir/Patient/{f.Patient}")).StatusCode);
    }

    [Fact]
    public async Task A_client_cannot_get_an_api_scope_it_was_not_registered_with()
    {
        var (status, body) = await S.ClientCredentialsAsync(ApiScopeFixture.FhirClient, f.FhirSecret, "system/*.rs wardline/monitor");
        var (other, _) = await S.ClientCredentialsAsync(ApiScopeFixture.SiemClient, f.SiemSecret, "wardline/backup");

        Assert.Equal(HttpStatusCode.BadRequest, status);
        Assert.Equal("invalid_scope", (string?)body["error"]);
        Assert.Equal(HttpStatusCode.BadRequest, other);
    }

    [Fact]
    public async Task The_smart_configuration_lists_the_api_scopes()
    {
        using var anonymous = new HttpClient();
        var config = JsonNode.Parse(await anonymous.GetStringAsync(S.Origin + "/fhir/.well-known/smart-configuration"))!;

        var supported = config["scopes_supported"]!.AsArray().Select(s => (string)s!).ToList();
        Assert.Contains(ApiScopes.Monitor, supported);
        Assert.Contains(ApiScopes.Backup, supported);
        Assert.Contains(ApiScopes.Ledger, supported);
    }

    [Theory]
    [InlineData("wardline/monitor", true)]
    [InlineData("wardline/backup", true)]
    [InlineData("wardline/ledger", true)]
    [InlineData("wardline/admin", false)]
    [InlineData("wardline/*", false)]
    [InlineData("Wardline/monitor", false)]
    public void Only_the_three_api_scopes_are_valid(string scope, bool valid) =>
        Assert.Equal(valid, OAuthScopes.IsValid(scope));
}
