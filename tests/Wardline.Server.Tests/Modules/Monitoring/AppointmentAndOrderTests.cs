using System.Net;
using Wardline.Server.Modules.Monitoring;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;
using static Wardline.Server.Tests.Modules.Monitoring.MonitoringServerKit;

namespace Wardline.Server.Tests.Modules.Monitoring;

/// <summary>
/// Scheduled appointments, consult orders and referrals are stored (Appointment and ServiceRequest, searchable by
/// patient, practitioner, performer and date) and become monitoring's explanations of an access: a doctor who opens
/// the chart of a patient they are booked to see, or were asked to see, is not an alert; one with no such reason is.
/// They grant no access: the policy's care-team condition still counts encounters, care teams and episodes only.
/// </summary>
public abstract class AppointmentAndOrderConformance(StoreKind kind) : MonitoringServerTest(kind)
{
    private static string At(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-ddTHH:mm:ssZ", System.Globalization.CultureInfo.InvariantCulture);

    private Task<string> PractitionerAsync() => Server.Client.CreateAsync("Practitioner", """{"resourceType":"Practitioner","name":[{"family":"Doe","given":["Sam"]}]}""");

    private Task<string> AppointmentAsync(string patient, string practitioner, string status, DateTimeOffset start) => Server.Client.CreateAsync("Appointment", $$"""
        {"resourceType":"Appointment","status":"{{status}}","start":"{{At(start)}}","end":"{{At(start.AddMinutes(30))}}",
         "participant":[{"actor":{"reference":"Patient/{{patient}}"},"status":"accepted"},{"actor":{"reference":"Practitioner/{{practitioner}}"},"status":"accepted"}]}
        """);

    private Task<string> OrderAsync(string patient, string practitioner, string status, DateTimeOffset authored, bool referral = false) => Server.Client.CreateAsync("ServiceRequest", $$"""
        {"resourceType":"ServiceRequest","status":"{{status}}","intent":"order","subject":{"reference":"Patient/{{patient}}"},
         "authoredOn":"{{At(authored)}}","performer":[{"reference":"Practitioner/{{practitioner}}"}]
         {{(referral ? ""","category":[{"coding":[{"system":"http://snomed.info/sct","code":"3457005"}]}]""" : "")}}}
        """);

    [Fact]
    public async Task Appointments_and_orders_are_loaded_as_relationships_of_their_kind_and_period_and_cancelled_ones_are_not()
    {
        var now = DateTimeOffset.UtcNow;
        var patient = await Server.Client.CreateAsync("Patient", """{"resourceType":"Patient","name":[{"family":"Ng","given":["Li"]}]}""");
        string booked = await PractitionerAsync(), cancelled = await PractitionerAsync(), consultant = await PractitionerAsync(), referred = await PractitionerAsync(), done = await PractitionerAsync();
        foreach (var (name, practitioner) in new[] { ("dr.booked", booked), ("dr.cancelled", cancelled), ("dr.consult", consultant), ("dr.referred", referred), ("dr.done", done) })
            await StaffAsync(Server, name, name, practitioner);
        var start = now.AddHours(3);
        await AppointmentAsync(patient, booked, "booked", start);
        await AppointmentAsync(patient, cancelled, "cancelled", start);
        await OrderAsync(patient, consultant, "active", now.AddHours(-2));
        await OrderAsync(patient, referred, "active", now.AddDays(-3), referral: true);
        await OrderAsync(patient, done, "completed", now.AddDays(-5));

        var directory = await Server.Service<DirectoryLoader>().LoadAsync(CancellationToken.None);
        var appointment = Assert.Single(directory.RelationshipsOf("dr.booked", patient));
        var consult = Assert.Single(directory.RelationshipsOf("dr.consult", patient));
        var referral = Assert.Single(directory.RelationshipsOf("dr.referred", patient));
        var completed = Assert.Single(directory.RelationshipsOf("dr.done", patient));
        var search = await Server.Client.GetAsync($"Appointment?patient={patient}&practitioner={booked}");
        var orders = await Server.Client.GetAsync($"ServiceRequest?performer=Practitioner/{consultant}&patient={patient}");

        Assert.Equal(("appointment", start.ToUnixTimeSeconds() * 1000, (long?)start.AddMinutes(30).ToUnixTimeSeconds() * 1000), (appointment.Kind, appointment.FromMs, appointment.UntilMs));
        Assert.Empty(directory.RelationshipsOf("dr.cancelled", patient));
        Assert.Equal(("consult-order", now.AddHours(-2).ToUnixTimeSeconds() * 1000, (long?)null), (consult.Kind, consult.FromMs, consult.UntilMs));
        Assert.Equal("referral", referral.Kind);
        Assert.Equal("consult-order", completed.Kind);
        Assert.NotNull(completed.UntilMs);
        Assert.Equal(1, (int)(await JsonAsync(search))["total"]!);
        Assert.Equal(1, (int)(await JsonAsync(orders))["total"]!);
    }

    [Fact]
    public async Task A_replay_alerts_the_doctor_with_no_reason_and_not_those_booked_or_asked_to_see_the_patient()
    {
        var now = DateTimeOffset.UtcNow;
        var patient = await Server.Client.CreateAsync("Patient", """{"resourceType":"Patient","name":[{"family":"Ng","given":["Li"]}]}""");
        string booked = await PractitionerAsync(), consultant = await PractitionerAsync(), referred = await PractitionerAsync(), nobody = await PractitionerAsync();
        await AppointmentAsync(patient, booked, "booked", now.AddHours(2));
        await OrderAsync(patient, consultant, "active", now.AddHours(-1));
        await OrderAsync(patient, referred, "active", now.AddDays(-2), referral: true);
        foreach (var (name, practitioner) in new[] { ("dr.booked", booked), ("dr.consult", consultant), ("dr.referred", referred), ("dr.nobody", nobody) })
        {
            await StaffAsync(Server, name, name, practitioner);
            using var doctor = await ClientAsync(Server, name, "tester");
            Assert.Equal(HttpStatusCode.OK, (await doctor.GetAsync(new Uri(Server.BaseUri, "/fhir/Patient/" + patient))).StatusCode);
        }
        using var officer = await ClientAsync(Server, "privacy.olu", "privacy_officer");

        var replay = await PostJsonAsync(officer, Monitor(Server, "replay"), new { from = At(now.AddHours(-1)), to = At(now.AddMinutes(5)) });
        var alerts = await JsonAsync(await officer.GetAsync(Monitor(Server, "alerts?detection=no-care-relationship")));

        Assert.Equal(HttpStatusCode.OK, replay.StatusCode);
        var users = alerts["alerts"]!.AsArray().Select(a => (string?)a!["user"]).ToList();
        Assert.Contains("dr.nobody", users);
        Assert.DoesNotContain("dr.booked", users);
        Assert.DoesNotContain("dr.consult", users);
        Assert.DoesNotContain("dr.referred", users);
    }

    [Fact]
    public async Task An_appointment_or_order_grants_no_access_only_care_relations_do()
    {
        var patient = await Server.Client.CreateAsync("Patient", """{"resourceType":"Patient","name":[{"family":"Ng","given":["Li"]}]}""");
        var other = await Server.Client.CreateAsync("Patient", """{"resourceType":"Patient","name":[{"family":"Ode","given":["Ay"]}]}""");
        var practitioner = await PractitionerAsync();
        await AppointmentAsync(patient, practitioner, "booked", DateTimeOffset.UtcNow.AddHours(1));
        await OrderAsync(patient, practitioner, "active", DateTimeOffset.UtcNow);
        await Server.Client.CreateAsync("CareTeam", $$$"""
            {"resourceType":"CareTeam","status":"active","subject":{"reference":"Patient/{{{other}}}"},"participant":[{"member":{"reference":"Practitioner/{{{practitioner}}}"}}]}
            """);

        var caring = await Server.Service<RecordStore>().CarePatientsAsync(practitioner, 0, CancellationToken.None);

        Assert.Equal([other], caring);
    }

    [Fact]
    public async Task Bad_appointments_and_orders_are_refused_and_write_nothing()
    {
        var before = await CountAsync(Store.Options, "SELECT COUNT(*) FROM resources");

        var noStart = await Server.Client.PostAsync("Appointment", FhirTest.Json("""{"resourceType":"Appointment","status":"not-a-status","participant":[]}"""));
        var noSubject = await Server.Client.PostAsync("ServiceRequest", FhirTest.Json("""{"resourceType":"ServiceRequest","status":"active","intent":"order","authoredOn":"yesterday"}"""));

        Assert.Equal(HttpStatusCode.BadRequest, noStart.StatusCode);
        Assert.Equal(HttpStatusCode.BadRequest, noSubject.StatusCode);
        Assert.Equal(before, await CountAsync(Store.Options, "SELECT COUNT(*) FROM resources"));
    }

    [Fact]
    public async Task An_encounter_naming_a_practitioner_twice_is_stored_and_relates_them_for_the_span_of_both_periods()
    {
        var patient = await Server.Client.CreateAsync("Patient", """{"resourceType":"Patient","name":[{"family":"Ng","given":["Li"]}]}""");
        var doctor = await PractitionerAsync();
        await StaffAsync(Server, "dr.twice", "dr.twice", doctor);
        var (admitted, handedOver, discharged) = (new DateTimeOffset(2026, 11, 2, 8, 0, 0, TimeSpan.Zero), new DateTimeOffset(2026, 11, 3, 8, 0, 0, TimeSpan.Zero), new DateTimeOffset(2026, 11, 5, 8, 0, 0, TimeSpan.Zero));

        // Admitting and then attending physician of one stay: the same practitioner in two participant entries.
        await Server.Client.CreateAsync("Encounter", $$$"""
            {"resourceType":"Encounter","status":"finished","class":{"system":"http://terminology.hl7.org/CodeSystem/v3-ActCode","code":"IMP"},
             "subject":{"reference":"Patient/{{{patient}}}"},
             "participant":[{"individual":{"reference":"Practitioner/{{{doctor}}}"},"period":{"start":"{{{At(admitted)}}}","end":"{{{At(handedOver)}}}"}},
                            {"individual":{"reference":"Practitioner/{{{doctor}}}"},"period":{"start":"{{{At(handedOver)}}}","end":"{{{At(discharged)}}}"}}]}
            """);
        var directory = await Server.Service<DirectoryLoader>().LoadAsync(CancellationToken.None);

        var stay = Assert.Single(directory.RelationshipsOf("dr.twice", patient));
        Assert.Equal(("encounter", admitted.ToUnixTimeMilliseconds(), (long?)discharged.ToUnixTimeMilliseconds()), (stay.Kind, stay.FromMs, stay.UntilMs));
    }
}

public sealed class AppointmentAndOrderOnSqlite() : AppointmentAndOrderConformance(StoreKind.Sqlite);

public sealed class AppointmentAndOrderOnPostgres() : AppointmentAndOrderConformance(StoreKind.Postgres);
