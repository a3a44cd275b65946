using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.Matrix;

/// <summary>Counts never reveal hidden records: totals and _summary=count count only what the policy permits.</summary>
[Collection(HospitalCollection.Name)]
public sealed class CountsTests(HospitalFixture fixture)
{
    [Fact]
    public async Task Nurse_cardio_counts_exactly_the_observations_the_policy_permits_her()
    {
        var world = await fixture.LoadWorldAsync();
        var s = fixture.Subject("nurse.cardio", world);
        var permitted = world.OfType("Observation").Where(f => HospitalPolicyOracle.Permits(s, MatrixAction.Search, f)).Select(f => f.Id).ToHashSet();
        var all = world.OfType("Observation").Count();

        using var summary = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, "Observation?_summary=count");
        using var zero = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, "Observation?_count=0");
        using var page = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, "Observation?_count=1000");

        Assert.InRange(permitted.Count, 1, all - 1);
        var summaryBody = await summary.ReadJsonAsync();
        Assert.Equal(permitted.Count, (int)summaryBody["total"]!);
        Assert.Empty(summaryBody.Entries());
        Assert.Equal(permitted.Count, (int)(await zero.ReadJsonAsync())["total"]!);
        var pageBody = await page.ReadJsonAsync();
        Assert.Equal(permitted.Count, (int)pageBody["total"]!);
        Assert.Equal(permitted.Order(StringComparer.Ordinal), pageBody.Resources().Select(r => (string)r["id"]!).Order(StringComparer.Ordinal));
    }

    [Theory]
    [InlineData("cmo.adams", "Observation")]
    [InlineData("cmo.adams", "Condition")]
    [InlineData("nurse.cardio", "Condition")]
    [InlineData("nurse.cardio", "Patient")]
    [InlineData("dr.onco", "Observation")]
    [InlineData("dr.onco", "Patient")]
    [InlineData("dr.psych", "Condition")]
    [InlineData("dr.psych", "Encounter")]
    public async Task A_clinicians_total_counts_only_the_records_the_policy_permits(string account, string type)
    {
        var world = await fixture.LoadWorldAsync();
        var s = fixture.Subject(account, world);
        var expected = world.OfType(type).Count(f => HospitalPolicyOracle.Permits(s, MatrixAction.Search, f));

        using var response = await fixture.SendAsync(account, HttpMethod.Get, $"{type}?_summary=count");

        Assert.Equal(200, (int)response.StatusCode);
        Assert.Equal(expected, (int)(await response.ReadJsonAsync())["total"]!);
        Assert.True(expected > 0, $"{account} may see no {type} at all: the case proves nothing");
    }

    [Theory]
    [InlineData("clerk.billing")]
    [InlineData("privacy.officer")]
    [InlineData("admin")]
    public async Task Administrative_roles_cannot_even_count_observations(string account)
    {
        using var response = await fixture.SendAsync(account, HttpMethod.Get, "Observation?_summary=count");

        Assert.Equal(403, (int)response.StatusCode);
        Assert.Equal("OperationOutcome", (string?)(await response.ReadJsonAsync())["resourceType"]);
    }
}
