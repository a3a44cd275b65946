using Wardline.Server.Modules.Monitoring;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Monitoring.MonitoringServerKit;

namespace Wardline.Server.Tests.Modules.Monitoring;

/// <summary>
/// The organisation model loaded from a small store written through the FHIR API: a practitioner's account finds its
/// encounter and care-team relationships, the patient's department stay, a staff patient, a VIP flag, a labelled
/// resource, and surname and address keys that match between a member of staff and a patient without holding either.
/// </summary>
public abstract class DirectoryLoaderConformance(StoreKind kind) : MonitoringServerTest(kind)
{
    [Fact]
    public async Task A_loaded_directory_finds_relationships_stays_flags_labels_and_matching_keys()
    {
        var client = Server.Client;
        var cardio = await client.CreateAsync("Organization", """{"resourceType":"Organization","name":"Cardiology"}""");
        var practitioner = await client.CreateAsync("Practitioner",
            """{"resourceType":"Practitioner","name":[{"family":"Mbeki","given":["Thandi"]}],"address":[{"line":["12 Harbour Road"],"postalCode":"CT1 2AB"}]}""");
        await StaffAsync(Server, "dr.mbeki", "Thandi Mbeki", practitioner, cardio);
        await StaffAsync(Server, "nurse.lowe", "Kim Lowe", null, cardio);
        var patient = await client.CreateAsync("Patient",
            """{"resourceType":"Patient","name":[{"family":"MBEKI","given":["Jo"]}],"address":[{"line":["12  harbour road"],"postalCode":"CT1 2AB"}],"contact":[{"name":{"family":"Lowe","given":["Kim"]}}]}""");
        var vip = await client.CreateAsync("Patient",
            """{"resourceType":"Patient","meta":{"tag":[{"system":"https://wardline.example/flags","code":"vip"}]},"name":[{"family":"Star","given":["Al"]}]}""");
        var own = await client.CreateAsync("Patient", StaffPatient("nurse.lowe", "Lowe"));
        await client.CreateAsync("Encounter", $$$"""
            {"resourceType":"Encounter","status":"in-progress","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},
             "subject":{"reference":"Patient/{{{patient}}}"},"serviceProvider":{"reference":"Organization/{{{cardio}}}"},
             "participant":[{"individual":{"reference":"Practitioner/{{{practitioner}}}"}}],"period":{"start":"2026-11-01T08:00:00Z"}}
            """);
        await client.CreateAsync("CareTeam", $$$"""
            {"resourceType":"CareTeam","status":"active","subject":{"reference":"Patient/{{{vip}}}"},"participant":[{"member":{"reference":"Practitioner/{{{practitioner}}}"}}]}
            """);
        var note = await client.CreateAsync("Condition", FhirTest.Condition(patient).Replace("\"resourceType\":\"Condition\"",
            "\"resourceType\":\"Condition\",\"meta\":{\"security\":[{\"system\":\"http://terminology.hl7.org/CodeSystem/v3-ActCode\",\"code\":\"PSY\"}]}", StringComparison.Ordinal));

        var directory = await Server.Service<DirectoryLoader>().LoadAsync(CancellationToken.None);

        Assert.Contains(directory.RelationshipsOf("dr.mbeki", patient), r => r.Kind == "encounter" && r.UntilMs is null);
        Assert.Contains(directory.RelationshipsOf("dr.mbeki", vip), r => r.Kind == "care-team");
        Assert.Empty(directory.RelationshipsOf("nurse.lowe", patient));
        var profile = directory.FindPatient(patient)!;
        var stay = Assert.Single(profile.DepartmentStays);
        Assert.Equal(cardio, stay.Department);
        Assert.Null(stay.ToMs);
        Assert.True(directory.FindPatient(vip)!.Vip);
        Assert.Equal("nurse.lowe", directory.FindPatient(own)!.StaffUser);
        Assert.Equal(own, directory.FindStaff("nurse.lowe")!.OwnPatientId);
        Assert.Contains("PSY", directory.LabelsOf("Condition", note));
        var doctor = directory.FindStaff("dr.mbeki")!;
        Assert.Equal([cardio], doctor.Departments);
        Assert.NotNull(profile.SurnameKey);
        Assert.Equal(doctor.SurnameKey, profile.SurnameKey);
        Assert.Equal(doctor.AddressKey, profile.AddressKey);
        Assert.NotEqual(directory.FindStaff("nurse.lowe")!.SurnameKey, profile.SurnameKey);
        Assert.Contains(directory.FindStaff("nurse.lowe")!.FullNameKey, profile.Contacts);
        Assert.DoesNotContain("mbeki", profile.SurnameKey, StringComparison.OrdinalIgnoreCase);
    }
}

public sealed class DirectoryLoaderOnSqlite() : DirectoryLoaderConformance(StoreKind.Sqlite);

public sealed class DirectoryLoaderOnPostgres() : DirectoryLoaderConformance(StoreKind.Postgres);
