using System.Net;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.OAuth;

/// <summary>SMART scopes in Wardline's tokens only ever narrow what the policy allows the user.</summary>
public sealed class SmartScopeTests(OAuthFixture f) : IClassFixture<OAuthFixture>
{
    private OAuthServer S => f.Server;

    [Fact]
    public async Task User_condition_read_scope_cannot_read_observations()
    {
        using var client = S.Client(await f.OperatorTokenAsync(OAuthFixture.Physician, "user/Condition.rs"));

        Assert.Equal(HttpStatusCode.OK, (await client.GetAsync($"Condition/{f.ConditionA}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await client.GetAsync("Observation")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await client.PostJsonAsync("Condition", FhirTest.Condition(f.PatientA))).StatusCode);
    }

    [Fact]
    public async Task A_billing_clerk_with_every_user_scope_still_cannot_read_a_condition()
    {
        using var client = S.Client(await f.OperatorTokenAsync(OAuthFixture.Clerk, "user/*.cruds"));

        Assert.Equal(HttpStatusCode.Forbidden, (await client.GetAsync($"Condition/{f.ConditionA}")).StatusCode);
        Assert.Equal(HttpStatusCode.Forbidden, (await client.GetAsync($"Observation?patient={f.PatientA}")).StatusCode);
    }

    [Fact]
    public async Task Patient_scopes_without_a_launch_patient_grant_nothing()
    {
        using var client = S.Client(await f.OperatorTokenAsync(OAuthFixture.Physician, "patient/*.rs"));

        Assert.Equal(HttpStatusCode.Forbidden, (await client.GetAsync("Observation")).StatusCode);
    }

    [Fact]
    public async Task The_integration_engine_role_cannot_open_a_restricted_patient()
    {
        var (_, body) = await S.ClientCredentialsAsync(OAuthFixture.EngineClient, f.EngineSecret, "system/*.cruds");
        using var engine = S.Client((string)body["access_token"]!);
        using var doctor = S.Client(await f.OperatorTokenAsync(OAuthFixture.Physician));
        var vip = await doctor.CreateAsync("Patient", """
            {"resourceType":"Patient","meta":{"tag":[{"system":"https://wardline.example/flags","code":"vip"}]},"name":[{"family":"Vip"}]}
            """);

        Assert.Equal(HttpStatusCode.OK, (await doctor.GetAsync($"Patient/{vip}")).StatusCode);
        Assert.NotEqual(HttpStatusCode.OK, (await engine.GetAsync($"Patient/{vip}")).StatusCode);
        Assert.Equal(HttpStatusCode.OK, (await engine.GetAsync($"Patient/{f.PatientA}")).StatusCode);
    }
}
