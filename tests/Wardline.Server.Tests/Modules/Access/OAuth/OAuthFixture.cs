using System.Net.Http.Headers;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.OAuth;

/// <summary>
/// One server for the token tests: a tier-1 physician who wrote two patients' records, a tier-2
/// physician, a billing clerk, an integration engine (client credentials) and a public SMART app.
/// </summary>
public sealed class OAuthFixture : IAsyncLifetime
{
    public const string Physician = "dr.oauth";
    public const string JuniorPhysician = "dr.junior";
    public const string Clerk = "clerk.oauth";
    public const string EngineClient = "ehr-engine";
    public const string EngineAccount = "svc.engine";
    public const string App = "smart-app";
    public const string RedirectUri = "http://127.0.0.1:9/callback";

    public OAuthServer Server { get; private set; } = null!;

    public string EngineSecret { get; private set; } = null!;

    public string PatientA { get; private set; } = null!;

    public string PatientB { get; private set; } = null!;

    public string ConditionA { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Server = await OAuthServer.StartAsync();
        await Server.CreatePhysicianAsync(Physician);
        await Server.CreatePhysicianAsync(JuniorPhysician, tier: 2);
        await Server.CreateAccountAsync(Account.New(Clerk, Clerk) with { Roles = ["billing_clerk"] });
        await Server.CreateAccountAsync(Account.New(EngineAccount, "Engine") with { Roles = ["integration_engine"] }, null);
        EngineSecret = (await Server.AddClientAsync(EngineClient, "client_credentials", ["system/*.cruds", "system/Observation.rs"], EngineAccount))!;
        await Server.AddClientAsync(App, "authorization_code",
            ["patient/Observation.rs", "patient/*.rs", "user/Condition.rs", "user/*.cruds", "launch/patient"], redirects: [RedirectUri], confidential: false);

        using var doctor = Server.Client(await OperatorTokenAsync(Physician));
        PatientA = await doctor.CreateAsync("Patient", FhirTest.Patient("Avery"));
        PatientB = await doctor.CreateAsync("Patient", FhirTest.Patient("Blake"));
        await doctor.CreateAsync("Observation", FhirTest.Observation(PatientA, value: 71));
        await doctor.CreateAsync("Observation", FhirTest.Observation(PatientA, value: 72));
        await doctor.CreateAsync("Observation", FhirTest.Observation(PatientB, value: 90));
        ConditionA = await doctor.CreateAsync("Condition", FhirTest.Condition(PatientA));
    }

    public async Task<string> OperatorTokenAsync(string user, string? scope = null) =>
        (await Server.Service<AccessTokens>().IssueAsync(user, TimeSpan.FromMinutes(30), scope, CancellationToken.None))!;

    public async Task DisposeAsync() => await Server.DisposeAsync();

    public static AuthenticationHeaderValue Bearer(string token) => new("Bearer", token);
}
