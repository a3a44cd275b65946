using System.Data.Common;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.Matrix;

/// <summary>The purpose-of-use header, and break-glass from declaration to review queue over HTTP.</summary>
[Collection(HospitalCollection.Name)]
public sealed class PurposeAndBreakGlassTests(HospitalFixture fixture)
{
    private OracleFacts VisibleObservation(string account) =>
        fixture.World.OfType("Observation").First(f => f.Departments.Count == 1 && HospitalPolicyOracle.Permits(fixture.Subject(account), MatrixAction.Read, f)
            && !HospitalPolicyOracle.Permits(fixture.Subject(account), MatrixAction.Read, f, "ETREAT"));

    [Theory]
    [InlineData("NONSENSE")]
    [InlineData("TREAT; DROP TABLE")]
    [InlineData("HRESCHX")]
    public async Task An_unknown_purpose_of_use_is_refused_with_400_before_any_record_is_read(string purpose)
    {
        var observation = VisibleObservation("nurse.cardio");

        using var read = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, $"Observation/{observation.Id}", purpose: purpose);
        using var search = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, "Observation?_summary=count", purpose: purpose);

        foreach (var response in new[] { read, search })
        {
            Assert.Equal(400, (int)response.StatusCode);
            var diagnostics = await response.DiagnosticsAsync();
            Assert.Contains(AccessSubjects.PurposeHeader, diagnostics, StringComparison.Ordinal);
            Assert.DoesNotContain(observation.Id, diagnostics, StringComparison.Ordinal);
        }
    }

    [Fact]
    public async Task Emergency_purpose_without_a_break_glass_grant_hides_patient_records_but_not_the_directory()
    {
        var observation = VisibleObservation("nurse.cardio");
        var patient = observation.Patient!;
        var practitioner = fixture.World.OfType("Practitioner").First();

        using var normal = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, $"Observation/{observation.Id}");
        using var read = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, $"Observation/{observation.Id}", purpose: "ETREAT");
        using var patientRead = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, $"Patient/{patient}", purpose: "ETREAT");
        using var search = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, $"Observation?_id={observation.Id}", purpose: "ETREAT");
        using var directory = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, $"Practitioner/{practitioner.Id}", purpose: "ETREAT");

        Assert.Equal(200, (int)normal.StatusCode);
        Assert.Equal(404, (int)read.StatusCode);
        Assert.Equal($"Observation/{observation.Id} is not known.", await read.DiagnosticsAsync());
        Assert.Equal(404, (int)patientRead.StatusCode);
        Assert.Equal(0, (int)(await search.ReadJsonAsync())["total"]!);
        Assert.Equal(200, (int)directory.StatusCode);
        Assert.Contains(("emergency-needs-grant", false), await AccessLogAsync("nurse.cardio", "Observation", observation.Id));
    }

    [Fact]
    public async Task Break_glass_lets_dr_onco_read_one_psychiatry_patient_only_while_declaring_ETREAT_and_is_recorded_for_review()
    {
        var onco = fixture.Subject("dr.onco");
        var psychiatric = fixture.World.OfType("Patient")
            .Where(p => p.Labels.Contains("PSY") && !HospitalPolicyOracle.Permits(onco, MatrixAction.Read, p)).Take(2).ToList();
        Assert.Equal(2, psychiatric.Count);
        var (patient, other) = (psychiatric[0], psychiatric[1]);
        var condition = fixture.World.OfType("Condition").First(c => c.Patient == patient.Id && c.Labels.Contains("PSY"));
        var observations = fixture.World.OfType("Observation").Count(o => o.Patient == patient.Id);

        using (var before = await fixture.SendAsync("dr.onco", HttpMethod.Get, $"Patient/{patient.Id}", purpose: "ETREAT"))
            Assert.Equal(404, (int)before.StatusCode);

        var (outcome, declaration) = await fixture.Service<BreakGlass>().DeclareAsync("dr.onco", approved: true, patient.Id,
            "Unconscious on arrival; psychiatric medication history needed", "127.0.0.1", "matrix-break-glass", CancellationToken.None);
        Assert.Equal(BreakGlassOutcome.Declared, outcome);

        using var patientRead = await fixture.SendAsync("dr.onco", HttpMethod.Get, $"Patient/{patient.Id}", purpose: "ETREAT");
        using var conditionRead = await fixture.SendAsync("dr.onco", HttpMethod.Get, $"Condition/{condition.Id}", purpose: "ETREAT");
        using var search = await fixture.SendAsync("dr.onco", HttpMethod.Get, $"Observation?patient={patient.Id}&_summary=count", purpose: "ETREAT");
        using var otherRead = await fixture.SendAsync("dr.onco", HttpMethod.Get, $"Patient/{other.Id}", purpose: "ETREAT");
        using var withoutPurpose = await fixture.SendAsync("dr.onco", HttpMethod.Get, $"Patient/{patient.Id}");
        using var withoutPurposeCondition = await fixture.SendAsync("dr.onco", HttpMethod.Get, $"Condition/{condition.Id}");

        Assert.Equal(200, (int)patientRead.StatusCode);
        Assert.Equal(200, (int)conditionRead.StatusCode);
        Assert.Equal(observations, (int)(await search.ReadJsonAsync())["total"]!);
        Assert.Equal(404, (int)otherRead.StatusCode);
        Assert.Equal(404, (int)withoutPurpose.StatusCode);
        Assert.Equal(404, (int)withoutPurposeCondition.StatusCode);

        // The grant is for reading in an emergency, not for making the patient his: an encounter naming him is refused.
        var template = fixture.World.OfType("Encounter").First(e => HospitalPolicyOracle.Permits(onco, MatrixAction.Create, e));
        var encounter = fixture.World.Json("Encounter", template.Id).DeepClone().AsObject();
        encounter.Remove("id");
        encounter.Remove("meta");
        encounter["subject"] = new System.Text.Json.Nodes.JsonObject { ["reference"] = "Patient/" + patient.Id };
        encounter["participant"] = new System.Text.Json.Nodes.JsonArray(new System.Text.Json.Nodes.JsonObject
        {
            ["individual"] = new System.Text.Json.Nodes.JsonObject { ["reference"] = "Practitioner/" + fixture.Accounts["dr.onco"].PractitionerId },
        });
        using (var admitted = await fixture.SendAsync("dr.onco", HttpMethod.Post, "Encounter", encounter.ToJsonString(), purpose: "ETREAT"))
        {
            Assert.Equal(403, (int)admitted.StatusCode);
            Assert.Contains("only for a patient you may already read", await admitted.DiagnosticsAsync(), StringComparison.Ordinal);
        }

        Assert.Contains(("break-glass-read", true), await AccessLogAsync("dr.onco", "Patient", patient.Id));
        Assert.Contains(("break-glass-read", true), await AccessLogAsync("dr.onco", "Condition", condition.Id));
        var otherLog = await AccessLogAsync("dr.onco", "Patient", other.Id);
        Assert.DoesNotContain(("break-glass-read", true), otherLog);
        Assert.Contains(otherLog, d => !d.Permitted);

        var open = await fixture.Service<BreakGlass>().ListAsync(openOnly: true, 100, CancellationToken.None);
        var queued = Assert.Single(open, d => d.Id == declaration!.Id);
        Assert.Equal(("dr.onco", patient.Id, "ETREAT", null), (queued.User, queued.Patient, queued.Purpose, queued.ReviewedAt));

        await using var c = await fixture.Service<SqlDialect>().OpenAsync(CancellationToken.None);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT detail FROM security_events WHERE kind = 'BreakGlassDeclared' AND user_name = 'dr.onco' AND outcome = 'granted'";
        var details = new List<string>();
        await using (var r = await cmd.ExecuteReaderAsync())
            while (await r.ReadAsync()) details.Add(r.GetString(0));
        Assert.Contains(details, d => d.Contains(declaration!.Id, StringComparison.Ordinal) && d.Contains($"Patient/{patient.Id}", StringComparison.Ordinal));
    }

    /// <summary>The decisions recorded for one user and resource: (rule, permitted).</summary>
    private async Task<List<(string Rule, bool Permitted)>> AccessLogAsync(string user, string type, string id)
    {
        await using DbConnection c = await fixture.Service<SqlDialect>().OpenAsync(CancellationToken.None);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT rule, permitted FROM access_log WHERE user_name = @u AND res_type = @t AND res_id = @i";
        RecordStore.Add(cmd, "@u", user);
        RecordStore.Add(cmd, "@t", type);
        RecordStore.Add(cmd, "@i", id);
        var list = new List<(string, bool)>();
        await using var r = await cmd.ExecuteReaderAsync();
        while (await r.ReadAsync()) list.Add((r.GetString(0), Convert.ToInt32(r.GetValue(1), System.Globalization.CultureInfo.InvariantCulture) == 1));
        return list;
    }
}
