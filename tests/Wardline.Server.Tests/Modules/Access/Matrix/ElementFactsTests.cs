using System.Net;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Records;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access.Matrix;

/// <summary>
/// Resources whose patient or encounter no search parameter names (Coverage.beneficiary,
/// MedicationAdministration.context) are protected like the patient and encounter they name.
/// </summary>
[Collection(HospitalCollection.Name)]
public sealed class ElementFactsTests(HospitalFixture fixture)
{
    private async Task<string> CreateAsOperatorAsync(string type, string json)
    {
        var r = await fixture.Service<RecordService>().CreateAsync(type, System.Text.Encoding.UTF8.GetBytes(json), null, "http://operator/fhir", AccessScope.Operator, CancellationToken.None);
        Assert.Equal(201, r.Status);
        return System.Text.Json.Nodes.JsonNode.Parse(r.Json)!["id"]!.GetValue<string>();
    }

    [Fact]
    public async Task A_restricted_patients_coverage_is_hidden_from_the_billing_clerk_and_a_plain_patients_is_not()
    {
        var restricted = fixture.World.OfType("Patient").First(p => p.PatientRestricted && p.PatientStaffUser is null).Id;
        var plain = fixture.World.OfType("Patient").First(p => !p.PatientRestricted && p.Labels.Count == 0 && p.PatientStaffUser is null).Id;
        string Coverage(string patient) => $$"""{"resourceType":"Coverage","status":"active","beneficiary":{"reference":"Patient/{{patient}}"},"payor":[{"display":"Acme Health"}]}""";
        var hidden = await CreateAsOperatorAsync("Coverage", Coverage(restricted));
        var visible = await CreateAsOperatorAsync("Coverage", Coverage(plain));

        using var denied = await fixture.SendAsync("clerk.billing", HttpMethod.Get, $"Coverage/{hidden}");
        using var allowed = await fixture.SendAsync("clerk.billing", HttpMethod.Get, $"Coverage/{visible}");

        Assert.Equal(HttpStatusCode.NotFound, denied.StatusCode);
        Assert.Equal($"Coverage/{hidden} is not known.", await denied.DiagnosticsAsync());
        Assert.Equal(HttpStatusCode.OK, allowed.StatusCode);
    }

    [Fact]
    public async Task A_medication_administration_in_a_cardiology_encounter_is_visible_to_the_cardiology_nurse_only()
    {
        var encounter = fixture.World.OfType("Encounter").First(e => e.Departments.SetEquals(["cardiology"]) && !e.PatientRestricted && e.Labels.Count == 0 && e.PatientLabels.Count == 0 && e.PatientStaffUser is null);
        var id = await CreateAsOperatorAsync("MedicationAdministration", $$"""
            {"resourceType":"MedicationAdministration","status":"completed","medicationCodeableConcept":{"text":"aspirin"},
             "subject":{"reference":"Patient/{{encounter.Patient}}"},"context":{"reference":"Encounter/{{encounter.Id}}"},"effectiveDateTime":"2026-10-01T10:00:00Z"}
            """);

        using var nurse = await fixture.SendAsync("nurse.cardio", HttpMethod.Get, $"MedicationAdministration/{id}");
        using var oncologist = await fixture.SendAsync("dr.onco", HttpMethod.Get, $"MedicationAdministration/{id}");

        Assert.Equal(HttpStatusCode.OK, nurse.StatusCode);
        Assert.Equal(HttpStatusCode.NotFound, oncologist.StatusCode);
    }
}
