using System.Net;
using System.Text.Json.Nodes;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.Matrix;

/// <summary>
/// Care relations and treating departments grant reads, so who may create them matters: a clinician cannot make a patient
/// theirs by writing an encounter that names them (or their department), and deleting an encounter ends what it granted.
/// </summary>
[Collection(HospitalCollection.Name)]
public sealed class CareGrantTests(HospitalFixture fixture)
{
    private string Nurse => fixture.Accounts["nurse.cardio"].PractitionerId!;

    /// <summary>A patient outside cardiology's care and the nurse's, with no labels or restriction.</summary>
    private OracleFacts PatientHiddenFromNurse() =>
        fixture.World.OfType("Patient").First(p => !p.PatientRestricted && p.Labels.Count == 0 && !p.Departments.Contains("cardiology")
            && !HospitalPolicyOracle.Permits(fixture.Subject("nurse.cardio"), MatrixAction.Read, p));

    /// <summary>A cardiology encounter the nurse may write, moved to <paramref name="patient"/> and naming her.</summary>
    private string EncounterFor(string patient)
    {
        var template = fixture.World.OfType("Encounter").First(e => HospitalPolicyOracle.Permits(fixture.Subject("nurse.cardio"), MatrixAction.Create, e));
        var json = fixture.World.Json("Encounter", template.Id).DeepClone().AsObject();
        json.Remove("id");
        json.Remove("meta");
        json["subject"] = new JsonObject { ["reference"] = "Patient/" + patient };
        json["participant"] = new JsonArray(new JsonObject { ["individual"] = new JsonObject { ["reference"] = "Practitioner/" + Nurse } });
        return json.ToJsonString();
    }

    [Fact]
    public async Task A_nurse_cannot_open_a_patients_chart_by_writing_herself_onto_a_new_encounter()
    {
        var patient = PatientHiddenFromNurse();
        using (var before = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, $"Patient/{patient.Id}"))
            Assert.Equal(HttpStatusCode.NotFound, before.StatusCode);

        using var written = await fixture.SendAsync("nurse.cardio", HttpMethod.Post, "Encounter", EncounterFor(patient.Id));
        using var after = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, $"Patient/{patient.Id}");

        Assert.Equal(HttpStatusCode.Forbidden, written.StatusCode);
        Assert.Contains("only for a patient you may already read", await written.DiagnosticsAsync(), StringComparison.Ordinal);
        Assert.Equal(HttpStatusCode.NotFound, after.StatusCode);
    }

    [Fact]
    public async Task Deleting_the_encounter_that_named_a_clinician_ends_what_it_granted()
    {
        // A tier 1 clinician admits the patient to an encounter naming the nurse: she may now read the patient.
        var patient = PatientHiddenFromNurse();
        using var created = await fixture.SendAsync("cmo.adams", HttpMethod.Post, "Encounter", EncounterFor(patient.Id));
        Assert.Equal(HttpStatusCode.Created, created.StatusCode);
        var id = created.Headers.Location!.ToString().Split('/')[^3];
        using (var granted = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, $"Patient/{patient.Id}"))
            Assert.Equal(HttpStatusCode.OK, granted.StatusCode);

        using (var deleted = await fixture.SendAsync("cmo.adams", HttpMethod.Delete, $"Encounter/{id}"))
            Assert.True(deleted.IsSuccessStatusCode, deleted.StatusCode.ToString());

        // Deleted, the encounter grants nothing: neither the care relation nor cardiology as a treating department.
        using var ended = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, $"Patient/{patient.Id}");
        using var searched = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, $"Patient?_id={patient.Id}");
        Assert.Equal(HttpStatusCode.NotFound, ended.StatusCode);
        Assert.Equal(0, (int)(await searched.ReadJsonAsync())["total"]!);
    }
}
