using System.Net;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.Matrix;

/// <summary>An update to a guessed id tells nothing: hidden and unknown ids answer alike, in a plain PUT and in a transaction.</summary>
[Collection(HospitalCollection.Name)]
public sealed class UpdateCreateTests(HospitalFixture fixture)
{
    private const string Unknown = "6f0e1d2c-0000-4000-8000-00000000beef";

    private OracleFacts HiddenFromNurse() =>
        fixture.World.OfType("Observation").First(f => !HospitalPolicyOracle.Permits(fixture.Subject("nurse.cardio"), MatrixAction.Read, f));

    [Fact]
    public async Task A_put_to_a_hidden_id_and_to_an_unknown_id_answer_the_same_404()
    {
        var hidden = HiddenFromNurse();
        var body = fixture.World.Json("Observation", hidden.Id).ToJsonString();

        using var guessed = await fixture.SendAsync("nurse.cardio", HttpMethod.Put, $"Observation/{hidden.Id}", body);
        using var unknown = await fixture.SendAsync("nurse.cardio", HttpMethod.Put, $"Observation/{Unknown}", body.Replace(hidden.Id, Unknown, StringComparison.Ordinal));

        Assert.Equal(HttpStatusCode.NotFound, guessed.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal((await guessed.DiagnosticsAsync()).Replace(hidden.Id, "ID", StringComparison.Ordinal), (await unknown.DiagnosticsAsync()).Replace(Unknown, "ID", StringComparison.Ordinal));
        using var after = await fixture.SendAsync("cmo.adams", HttpMethod.Get, $"Observation/{Unknown}");
        Assert.Equal(HttpStatusCode.NotFound, after.StatusCode);
    }

    [Fact]
    public async Task A_deleted_resource_hidden_from_a_user_cannot_be_written_again_by_them_to_read_its_earlier_versions()
    {
        // A tier 1 clinician files an observation the nurse may not read, then deletes it; it keeps its history.
        var hidden = HiddenFromNurse();
        using var created = await fixture.SendAsync("cmo.adams", HttpMethod.Post, "Observation", fixture.World.Json("Observation", hidden.Id).ToJsonString());
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = created.Headers.Location!.ToString().Split('/')[^3];
        using (var deleted = await fixture.SendAsync("cmo.adams", HttpMethod.Delete, $"Observation/{id}")) Assert.True(deleted.IsSuccessStatusCode, deleted.StatusCode.ToString());

        // The nurse writes content they may create under that id: it would make the resource theirs, history and all.
        var own = fixture.World.OfType("Observation").First(f => HospitalPolicyOracle.Permits(fixture.Subject("nurse.cardio"), MatrixAction.Create, f));
        var body = fixture.World.Json("Observation", own.Id).ToJsonString().Replace(own.Id, id, StringComparison.Ordinal);
        using var rewritten = await fixture.SendAsync("nurse.cardio", HttpMethod.Put, $"Observation/{id}", body);
        using var history = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, $"Observation/{id}/_history/1");

        Assert.Equal(HttpStatusCode.NotFound, rewritten.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, history.StatusCode);
        using var still = await fixture.SendAsync("cmo.adams", HttpMethod.Get, $"Observation/{id}");
        Assert.Equal(HttpStatusCode.Gone, still.StatusCode);
    }

    [Fact]
    public async Task A_transaction_put_with_a_stale_if_match_to_a_hidden_id_answers_404_not_its_version()
    {
        var hidden = HiddenFromNurse();
        var json = fixture.World.Json("Observation", hidden.Id).ToJsonString();
        var transaction = $$$"""{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{{{json}}},"request":{"method":"PUT","url":"Observation/{{{hidden.Id}}}","ifMatch":"W/\"999\""}}]}""";

        using var guessed = await fixture.SendAsync("nurse.cardio", HttpMethod.Post, "", transaction);

        Assert.Equal(HttpStatusCode.NotFound, guessed.StatusCode);
        Assert.DoesNotContain("version", await guessed.DiagnosticsAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_transaction_put_to_a_hidden_id_and_to_an_unknown_id_answer_the_same_404()
    {
        var hidden = HiddenFromNurse();
        var json = fixture.World.Json("Observation", hidden.Id).ToJsonString();
        string Transaction(string id) =>
            $$$"""{"resourceType":"Bundle","type":"transaction","entry":[{"resource":{{{json.Replace(hidden.Id, id, StringComparison.Ordinal)}}},"request":{"method":"PUT","url":"Observation/{{{id}}}"}}]}""";

        using var guessed = await fixture.SendAsync("nurse.cardio", HttpMethod.Post, "", Transaction(hidden.Id));
        using var unknown = await fixture.SendAsync("nurse.cardio", HttpMethod.Post, "", Transaction(Unknown));

        Assert.Equal(HttpStatusCode.NotFound, guessed.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, unknown.StatusCode);
        Assert.Equal((await guessed.DiagnosticsAsync()).Replace(hidden.Id, "ID", StringComparison.Ordinal), (await unknown.DiagnosticsAsync()).Replace(Unknown, "ID", StringComparison.Ordinal));
    }
}
