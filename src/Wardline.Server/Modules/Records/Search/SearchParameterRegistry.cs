using System.Reflection;
using Hl7.Fhir.Introspection;
using Hl7.Fhir.Model;

namespace Wardline.Server.Modules.Records.Search;

internal enum SearchParamKind
{
    Token,
    String,
    Date,
    Reference,
}

/// <summary>
/// One supported search parameter. <see cref="Extract"/> reads the indexed values straight from
/// the POCO (no FHIRPath at run time), so indexing a resource costs microseconds.
/// </summary>
/// <param name="Blind">Identifying values (names, identifiers, birth date, telecom, address) are
/// indexed only as keyed blind indexes; dates marked blind support equality only.</param>
internal sealed record SearchParameter(
    string ResourceType,
    string Name,
    SearchParamKind Kind,
    string Expression,
    Func<Resource, IEnumerable<Base?>> Extract,
    bool Blind = false,
    string[]? Targets = null);

internal static class SearchParameterRegistry
{
    /// <summary>The types the store accepts; every FHIR R4 resource type in this list can be stored and read.</summary>
    public static readonly IReadOnlySet<string> ResourceTypes = new HashSet<string>(StringComparer.Ordinal)
    {
        "Patient", "Practitioner", "PractitionerRole", "Organization", "Location", "Encounter", "EpisodeOfCare",
        "CareTeam", "Condition", "Observation", "DiagnosticReport", "MedicationRequest", "MedicationStatement",
        "AllergyIntolerance", "Procedure", "Immunization", "CarePlan", "DocumentReference", "Binary", "Consent",
        "Provenance", "Claim", "ExplanationOfBenefit", "Goal", "ImagingStudy", "Medication", "MedicationAdministration",
        "Device", "SupplyDelivery", "Coverage", "ServiceRequest", "Specimen", "Appointment",
    };

    private static readonly Dictionary<string, Dictionary<string, SearchParameter>> ByType = Build();

    /// <summary>The resource types that have search parameters.</summary>
    public static IEnumerable<string> SearchableTypes => ByType.Keys;

    public static IReadOnlyDictionary<string, SearchParameter> For(string resourceType) =>
        ByType.TryGetValue(resourceType, out var map) ? map : EmptyMap;

    private static readonly Dictionary<string, SearchParameter> EmptyMap = [];

    public static SearchParameter? Find(string resourceType, string name) =>
        ByType.TryGetValue(resourceType, out var map) && map.TryGetValue(name, out var p) ? p : null;

    private static Dictionary<string, Dictionary<string, SearchParameter>> Build()
    {
        var all = new List<SearchParameter>();

        void Add<T>(string name, SearchParamKind kind, string expression, Func<T, IEnumerable<Base?>> extract, bool blind = false, params string[] targets)
            where T : Resource
        {
            // The class's [FhirType] name, read directly: ModelInfo.GetFhirTypeNameForType would first build the
            // inspector of every R4 type (0.9 s of CPU), which a CLI command that only opens the store never needs.
            var type = typeof(T).GetCustomAttributes<FhirTypeAttribute>(inherit: false).FirstOrDefault()?.Name ?? typeof(T).Name;
            all.Add(new SearchParameter(type, name, kind, expression, r => extract((T)r), blind, targets.Length == 0 ? null : targets));
        }

        static IEnumerable<Base?> One(Base? b) => b is null ? [] : [b];

        // Patient: every identifying field is blind-indexed.
        Add<Patient>("identifier", SearchParamKind.Token, "Patient.identifier", p => p.Identifier, blind: true);
        Add<Patient>("name", SearchParamKind.String, "Patient.name", p => p.Name, blind: true);
        Add<Patient>("family", SearchParamKind.String, "Patient.name.family", p => p.Name.Select(n => n.FamilyElement), blind: true);
        Add<Patient>("given", SearchParamKind.String, "Patient.name.given", p => p.Name.SelectMany(n => n.GivenElement), blind: true);
        Add<Patient>("birthdate", SearchParamKind.Date, "Patient.birthDate", p => One(p.BirthDateElement), blind: true);
        Add<Patient>("gender", SearchParamKind.Token, "Patient.gender", p => One(p.GenderElement));
        Add<Patient>("telecom", SearchParamKind.Token, "Patient.telecom", p => p.Telecom, blind: true);
        Add<Patient>("address", SearchParamKind.String, "Patient.address", p => p.Address, blind: true);
        Add<Patient>("organization", SearchParamKind.Reference, "Patient.managingOrganization", p => One(p.ManagingOrganization), targets: "Organization");
        Add<Patient>("general-practitioner", SearchParamKind.Reference, "Patient.generalPractitioner", p => p.GeneralPractitioner, targets: ["Practitioner", "Organization", "PractitionerRole"]);

        Add<Practitioner>("identifier", SearchParamKind.Token, "Practitioner.identifier", p => p.Identifier, blind: true);
        Add<Practitioner>("name", SearchParamKind.String, "Practitioner.name", p => p.Name, blind: true);
        Add<Practitioner>("family", SearchParamKind.String, "Practitioner.name.family", p => p.Name.Select(n => n.FamilyElement), blind: true);
        Add<Practitioner>("given", SearchParamKind.String, "Practitioner.name.given", p => p.Name.SelectMany(n => n.GivenElement), blind: true);

        Add<PractitionerRole>("identifier", SearchParamKind.Token, "PractitionerRole.identifier", p => p.Identifier, blind: true);
        Add<PractitionerRole>("practitioner", SearchParamKind.Reference, "PractitionerRole.practitioner", p => One(p.Practitioner), targets: "Practitioner");
        Add<PractitionerRole>("organization", SearchParamKind.Reference, "PractitionerRole.organization", p => One(p.Organization), targets: "Organization");
        Add<PractitionerRole>("role", SearchParamKind.Token, "PractitionerRole.code", p => p.Code);

        Add<Organization>("identifier", SearchParamKind.Token, "Organization.identifier", p => p.Identifier);
        Add<Organization>("name", SearchParamKind.String, "Organization.name", p => One(p.NameElement));
        Add<Organization>("type", SearchParamKind.Token, "Organization.type", p => p.Type);
        Add<Organization>("partof", SearchParamKind.Reference, "Organization.partOf", p => One(p.PartOf), targets: "Organization");

        Add<Location>("identifier", SearchParamKind.Token, "Location.identifier", p => p.Identifier);
        Add<Location>("name", SearchParamKind.String, "Location.name", p => One(p.NameElement));
        Add<Location>("organization", SearchParamKind.Reference, "Location.managingOrganization", p => One(p.ManagingOrganization), targets: "Organization");

        Add<Encounter>("identifier", SearchParamKind.Token, "Encounter.identifier", p => p.Identifier, blind: true);
        Add<Encounter>("patient", SearchParamKind.Reference, "Encounter.subject", p => One(p.Subject), targets: "Patient");
        Add<Encounter>("subject", SearchParamKind.Reference, "Encounter.subject", p => One(p.Subject), targets: ["Patient", "Group"]);
        Add<Encounter>("status", SearchParamKind.Token, "Encounter.status", p => One(p.StatusElement));
        Add<Encounter>("class", SearchParamKind.Token, "Encounter.class", p => One(p.Class));
        Add<Encounter>("type", SearchParamKind.Token, "Encounter.type", p => p.Type);
        Add<Encounter>("date", SearchParamKind.Date, "Encounter.period", p => One(p.Period));
        Add<Encounter>("service-provider", SearchParamKind.Reference, "Encounter.serviceProvider", p => One(p.ServiceProvider), targets: "Organization");
        Add<Encounter>("participant", SearchParamKind.Reference, "Encounter.participant.individual", p => p.Participant.Select(x => x.Individual), targets: ["Practitioner", "PractitionerRole", "RelatedPerson"]);

        Add<EpisodeOfCare>("identifier", SearchParamKind.Token, "EpisodeOfCare.identifier", p => p.Identifier, blind: true);
        Add<EpisodeOfCare>("patient", SearchParamKind.Reference, "EpisodeOfCare.patient", p => One(p.Patient), targets: "Patient");
        Add<EpisodeOfCare>("status", SearchParamKind.Token, "EpisodeOfCare.status", p => One(p.StatusElement));
        Add<EpisodeOfCare>("date", SearchParamKind.Date, "EpisodeOfCare.period", p => One(p.Period));
        Add<EpisodeOfCare>("organization", SearchParamKind.Reference, "EpisodeOfCare.managingOrganization", p => One(p.ManagingOrganization), targets: "Organization");

        Add<CareTeam>("identifier", SearchParamKind.Token, "CareTeam.identifier", p => p.Identifier, blind: true);
        Add<CareTeam>("patient", SearchParamKind.Reference, "CareTeam.subject", p => One(p.Subject), targets: "Patient");
        Add<CareTeam>("subject", SearchParamKind.Reference, "CareTeam.subject", p => One(p.Subject), targets: ["Patient", "Group"]);
        Add<CareTeam>("status", SearchParamKind.Token, "CareTeam.status", p => One(p.StatusElement));
        Add<CareTeam>("category", SearchParamKind.Token, "CareTeam.category", p => p.Category);
        Add<CareTeam>("encounter", SearchParamKind.Reference, "CareTeam.encounter", p => One(p.Encounter), targets: "Encounter");
        Add<CareTeam>("date", SearchParamKind.Date, "CareTeam.period", p => One(p.Period));
        Add<CareTeam>("participant", SearchParamKind.Reference, "CareTeam.participant.member", p => p.Participant.Select(x => x.Member), targets: ["Practitioner", "PractitionerRole", "Organization", "Patient", "RelatedPerson", "CareTeam"]);

        Add<Condition>("identifier", SearchParamKind.Token, "Condition.identifier", p => p.Identifier, blind: true);
        Add<Condition>("patient", SearchParamKind.Reference, "Condition.subject", p => One(p.Subject), targets: "Patient");
        Add<Condition>("subject", SearchParamKind.Reference, "Condition.subject", p => One(p.Subject), targets: ["Patient", "Group"]);
        Add<Condition>("code", SearchParamKind.Token, "Condition.code", p => One(p.Code));
        Add<Condition>("category", SearchParamKind.Token, "Condition.category", p => p.Category);
        Add<Condition>("clinical-status", SearchParamKind.Token, "Condition.clinicalStatus", p => One(p.ClinicalStatus));
        Add<Condition>("verification-status", SearchParamKind.Token, "Condition.verificationStatus", p => One(p.VerificationStatus));
        Add<Condition>("encounter", SearchParamKind.Reference, "Condition.encounter", p => One(p.Encounter), targets: "Encounter");
        Add<Condition>("onset-date", SearchParamKind.Date, "Condition.onset", p => One(p.Onset));
        Add<Condition>("recorded-date", SearchParamKind.Date, "Condition.recordedDate", p => One(p.RecordedDateElement));

        Add<Observation>("identifier", SearchParamKind.Token, "Observation.identifier", p => p.Identifier, blind: true);
        Add<Observation>("patient", SearchParamKind.Reference, "Observation.subject", p => One(p.Subject), targets: "Patient");
        Add<Observation>("subject", SearchParamKind.Reference, "Observation.subject", p => One(p.Subject), targets: ["Patient", "Group", "Device", "Location"]);
        Add<Observation>("code", SearchParamKind.Token, "Observation.code", p => One(p.Code));
        Add<Observation>("category", SearchParamKind.Token, "Observation.category", p => p.Category);
        Add<Observation>("status", SearchParamKind.Token, "Observation.status", p => One(p.StatusElement));
        Add<Observation>("date", SearchParamKind.Date, "Observation.effective", p => One(p.Effective));
        Add<Observation>("encounter", SearchParamKind.Reference, "Observation.encounter", p => One(p.Encounter), targets: "Encounter");

        Add<DiagnosticReport>("identifier", SearchParamKind.Token, "DiagnosticReport.identifier", p => p.Identifier, blind: true);
        Add<DiagnosticReport>("patient", SearchParamKind.Reference, "DiagnosticReport.subject", p => One(p.Subject), targets: "Patient");
        Add<DiagnosticReport>("subject", SearchParamKind.Reference, "DiagnosticReport.subject", p => One(p.Subject), targets: ["Patient", "Group", "Device", "Location"]);
        Add<DiagnosticReport>("code", SearchParamKind.Token, "DiagnosticReport.code", p => One(p.Code));
        Add<DiagnosticReport>("category", SearchParamKind.Token, "DiagnosticReport.category", p => p.Category);
        Add<DiagnosticReport>("status", SearchParamKind.Token, "DiagnosticReport.status", p => One(p.StatusElement));
        Add<DiagnosticReport>("date", SearchParamKind.Date, "DiagnosticReport.effective", p => One(p.Effective));
        Add<DiagnosticReport>("encounter", SearchParamKind.Reference, "DiagnosticReport.encounter", p => One(p.Encounter), targets: "Encounter");

        Add<MedicationRequest>("identifier", SearchParamKind.Token, "MedicationRequest.identifier", p => p.Identifier, blind: true);
        Add<MedicationRequest>("patient", SearchParamKind.Reference, "MedicationRequest.subject", p => One(p.Subject), targets: "Patient");
        Add<MedicationRequest>("subject", SearchParamKind.Reference, "MedicationRequest.subject", p => One(p.Subject), targets: ["Patient", "Group"]);
        Add<MedicationRequest>("code", SearchParamKind.Token, "MedicationRequest.medication.as(CodeableConcept)", p => One(p.Medication as CodeableConcept));
        Add<MedicationRequest>("status", SearchParamKind.Token, "MedicationRequest.status", p => One(p.StatusElement));
        Add<MedicationRequest>("intent", SearchParamKind.Token, "MedicationRequest.intent", p => One(p.IntentElement));
        Add<MedicationRequest>("category", SearchParamKind.Token, "MedicationRequest.category", p => p.Category);
        Add<MedicationRequest>("authoredon", SearchParamKind.Date, "MedicationRequest.authoredOn", p => One(p.AuthoredOnElement));
        Add<MedicationRequest>("encounter", SearchParamKind.Reference, "MedicationRequest.encounter", p => One(p.Encounter), targets: "Encounter");
        Add<MedicationRequest>("requester", SearchParamKind.Reference, "MedicationRequest.requester", p => One(p.Requester), targets: ["Practitioner", "PractitionerRole", "Organization", "Patient", "RelatedPerson", "Device"]);

        Add<MedicationStatement>("identifier", SearchParamKind.Token, "MedicationStatement.identifier", p => p.Identifier, blind: true);
        Add<MedicationStatement>("patient", SearchParamKind.Reference, "MedicationStatement.subject", p => One(p.Subject), targets: "Patient");
        Add<MedicationStatement>("subject", SearchParamKind.Reference, "MedicationStatement.subject", p => One(p.Subject), targets: ["Patient", "Group"]);
        Add<MedicationStatement>("code", SearchParamKind.Token, "MedicationStatement.medication.as(CodeableConcept)", p => One(p.Medication as CodeableConcept));
        Add<MedicationStatement>("status", SearchParamKind.Token, "MedicationStatement.status", p => One(p.StatusElement));
        Add<MedicationStatement>("effective", SearchParamKind.Date, "MedicationStatement.effective", p => One(p.Effective));

        Add<AllergyIntolerance>("identifier", SearchParamKind.Token, "AllergyIntolerance.identifier", p => p.Identifier, blind: true);
        Add<AllergyIntolerance>("patient", SearchParamKind.Reference, "AllergyIntolerance.patient", p => One(p.Patient), targets: "Patient");
        Add<AllergyIntolerance>("code", SearchParamKind.Token, "AllergyIntolerance.code", p => One(p.Code));
        Add<AllergyIntolerance>("clinical-status", SearchParamKind.Token, "AllergyIntolerance.clinicalStatus", p => One(p.ClinicalStatus));
        Add<AllergyIntolerance>("category", SearchParamKind.Token, "AllergyIntolerance.category", p => p.CategoryElement);
        Add<AllergyIntolerance>("date", SearchParamKind.Date, "AllergyIntolerance.recordedDate", p => One(p.RecordedDateElement));
        Add<AllergyIntolerance>("encounter", SearchParamKind.Reference, "AllergyIntolerance.encounter", p => One(p.Encounter), targets: "Encounter");

        Add<Procedure>("identifier", SearchParamKind.Token, "Procedure.identifier", p => p.Identifier, blind: true);
        Add<Procedure>("patient", SearchParamKind.Reference, "Procedure.subject", p => One(p.Subject), targets: "Patient");
        Add<Procedure>("subject", SearchParamKind.Reference, "Procedure.subject", p => One(p.Subject), targets: ["Patient", "Group"]);
        Add<Procedure>("code", SearchParamKind.Token, "Procedure.code", p => One(p.Code));
        Add<Procedure>("category", SearchParamKind.Token, "Procedure.category", p => One(p.Category));
        Add<Procedure>("status", SearchParamKind.Token, "Procedure.status", p => One(p.StatusElement));
        Add<Procedure>("date", SearchParamKind.Date, "Procedure.performed", p => One(p.Performed));
        Add<Procedure>("encounter", SearchParamKind.Reference, "Procedure.encounter", p => One(p.Encounter), targets: "Encounter");

        Add<Immunization>("identifier", SearchParamKind.Token, "Immunization.identifier", p => p.Identifier, blind: true);
        Add<Immunization>("patient", SearchParamKind.Reference, "Immunization.patient", p => One(p.Patient), targets: "Patient");
        Add<Immunization>("vaccine-code", SearchParamKind.Token, "Immunization.vaccineCode", p => One(p.VaccineCode));
        Add<Immunization>("status", SearchParamKind.Token, "Immunization.status", p => One(p.StatusElement));
        Add<Immunization>("date", SearchParamKind.Date, "Immunization.occurrence", p => One(p.Occurrence));
        Add<Immunization>("encounter", SearchParamKind.Reference, "Immunization.encounter", p => One(p.Encounter), targets: "Encounter");

        Add<CarePlan>("identifier", SearchParamKind.Token, "CarePlan.identifier", p => p.Identifier, blind: true);
        Add<CarePlan>("patient", SearchParamKind.Reference, "CarePlan.subject", p => One(p.Subject), targets: "Patient");
        Add<CarePlan>("subject", SearchParamKind.Reference, "CarePlan.subject", p => One(p.Subject), targets: ["Patient", "Group"]);
        Add<CarePlan>("category", SearchParamKind.Token, "CarePlan.category", p => p.Category);
        Add<CarePlan>("status", SearchParamKind.Token, "CarePlan.status", p => One(p.StatusElement));
        Add<CarePlan>("date", SearchParamKind.Date, "CarePlan.period", p => One(p.Period));
        Add<CarePlan>("encounter", SearchParamKind.Reference, "CarePlan.encounter", p => One(p.Encounter), targets: "Encounter");

        Add<DocumentReference>("identifier", SearchParamKind.Token, "DocumentReference.identifier", p => p.Identifier, blind: true);
        Add<DocumentReference>("patient", SearchParamKind.Reference, "DocumentReference.subject", p => One(p.Subject), targets: "Patient");
        Add<DocumentReference>("subject", SearchParamKind.Reference, "DocumentReference.subject", p => One(p.Subject), targets: ["Patient", "Group", "Practitioner", "Device"]);
        Add<DocumentReference>("type", SearchParamKind.Token, "DocumentReference.type", p => One(p.Type));
        Add<DocumentReference>("category", SearchParamKind.Token, "DocumentReference.category", p => p.Category);
        Add<DocumentReference>("status", SearchParamKind.Token, "DocumentReference.status", p => One(p.StatusElement));
        Add<DocumentReference>("date", SearchParamKind.Date, "DocumentReference.date", p => One(p.DateElement));
        Add<DocumentReference>("encounter", SearchParamKind.Reference, "DocumentReference.context.encounter", p => p.Context?.Encounter ?? [], targets: "Encounter");

        Add<Consent>("identifier", SearchParamKind.Token, "Consent.identifier", p => p.Identifier, blind: true);
        Add<Consent>("patient", SearchParamKind.Reference, "Consent.patient", p => One(p.Patient), targets: "Patient");
        Add<Consent>("status", SearchParamKind.Token, "Consent.status", p => One(p.StatusElement));
        Add<Consent>("category", SearchParamKind.Token, "Consent.category", p => p.Category);
        Add<Consent>("date", SearchParamKind.Date, "Consent.dateTime", p => One(p.DateTimeElement));

        Add<Provenance>("patient", SearchParamKind.Reference, "Provenance.target", p => p.Target, targets: "Patient");
        Add<Provenance>("target", SearchParamKind.Reference, "Provenance.target", p => p.Target);
        Add<Provenance>("recorded", SearchParamKind.Date, "Provenance.recorded", p => One(p.RecordedElement));
        Add<Provenance>("agent", SearchParamKind.Reference, "Provenance.agent.who", p => p.Agent.Select(a => a.Who), targets: ["Practitioner", "PractitionerRole", "Organization", "Patient", "Device", "RelatedPerson"]);

        Add<Claim>("identifier", SearchParamKind.Token, "Claim.identifier", p => p.Identifier, blind: true);
        Add<Claim>("patient", SearchParamKind.Reference, "Claim.patient", p => One(p.Patient), targets: "Patient");
        Add<Claim>("status", SearchParamKind.Token, "Claim.status", p => One(p.StatusElement));
        Add<Claim>("encounter", SearchParamKind.Reference, "Claim.item.encounter", p => p.Item.SelectMany(i => i.Encounter), targets: "Encounter");

        Add<ExplanationOfBenefit>("identifier", SearchParamKind.Token, "ExplanationOfBenefit.identifier", p => p.Identifier, blind: true);
        Add<ExplanationOfBenefit>("patient", SearchParamKind.Reference, "ExplanationOfBenefit.patient", p => One(p.Patient), targets: "Patient");
        Add<ExplanationOfBenefit>("status", SearchParamKind.Token, "ExplanationOfBenefit.status", p => One(p.StatusElement));

        Add<Goal>("patient", SearchParamKind.Reference, "Goal.subject", p => One(p.Subject), targets: "Patient");
        Add<Goal>("subject", SearchParamKind.Reference, "Goal.subject", p => One(p.Subject), targets: ["Patient", "Group", "Organization"]);
        Add<Goal>("lifecycle-status", SearchParamKind.Token, "Goal.lifecycleStatus", p => One(p.LifecycleStatusElement));

        Add<ImagingStudy>("identifier", SearchParamKind.Token, "ImagingStudy.identifier", p => p.Identifier, blind: true);
        Add<ImagingStudy>("patient", SearchParamKind.Reference, "ImagingStudy.subject", p => One(p.Subject), targets: "Patient");
        Add<ImagingStudy>("subject", SearchParamKind.Reference, "ImagingStudy.subject", p => One(p.Subject), targets: ["Patient", "Group", "Device"]);
        Add<ImagingStudy>("status", SearchParamKind.Token, "ImagingStudy.status", p => One(p.StatusElement));
        Add<ImagingStudy>("started", SearchParamKind.Date, "ImagingStudy.started", p => One(p.StartedElement));
        Add<ImagingStudy>("encounter", SearchParamKind.Reference, "ImagingStudy.encounter", p => One(p.Encounter), targets: "Encounter");

        // Orders and appointments: monitoring reads their performers and participants as explanations of an access.
        static IEnumerable<ResourceReference> Of(IEnumerable<ResourceReference?> refs, string type) =>
            refs.OfType<ResourceReference>().Where(r => r.Reference?.StartsWith(type + "/", StringComparison.Ordinal) == true);
        Add<ServiceRequest>("identifier", SearchParamKind.Token, "ServiceRequest.identifier", p => p.Identifier, blind: true);
        Add<ServiceRequest>("patient", SearchParamKind.Reference, "ServiceRequest.subject", p => One(p.Subject), targets: "Patient");
        Add<ServiceRequest>("subject", SearchParamKind.Reference, "ServiceRequest.subject", p => One(p.Subject), targets: ["Patient", "Group", "Location", "Device"]);
        Add<ServiceRequest>("status", SearchParamKind.Token, "ServiceRequest.status", p => One(p.StatusElement));
        Add<ServiceRequest>("intent", SearchParamKind.Token, "ServiceRequest.intent", p => One(p.IntentElement));
        Add<ServiceRequest>("category", SearchParamKind.Token, "ServiceRequest.category", p => p.Category);
        Add<ServiceRequest>("code", SearchParamKind.Token, "ServiceRequest.code", p => One(p.Code));
        Add<ServiceRequest>("authored", SearchParamKind.Date, "ServiceRequest.authoredOn", p => One(p.AuthoredOnElement));
        Add<ServiceRequest>("occurrence", SearchParamKind.Date, "ServiceRequest.occurrence", p => One(p.Occurrence));
        Add<ServiceRequest>("encounter", SearchParamKind.Reference, "ServiceRequest.encounter", p => One(p.Encounter), targets: "Encounter");
        Add<ServiceRequest>("requester", SearchParamKind.Reference, "ServiceRequest.requester", p => One(p.Requester), targets: ["Practitioner", "PractitionerRole", "Organization", "Patient", "RelatedPerson", "Device"]);
        Add<ServiceRequest>("performer", SearchParamKind.Reference, "ServiceRequest.performer", p => p.Performer, targets: ["Practitioner", "PractitionerRole", "Organization", "CareTeam", "HealthcareService", "Patient", "Device", "RelatedPerson"]);

        Add<Appointment>("identifier", SearchParamKind.Token, "Appointment.identifier", p => p.Identifier, blind: true);
        Add<Appointment>("patient", SearchParamKind.Reference, "Appointment.participant.actor.where(resolve() is Patient)", p => Of(p.Participant.Select(x => x.Actor), "Patient"), targets: "Patient");
        Add<Appointment>("practitioner", SearchParamKind.Reference, "Appointment.participant.actor.where(resolve() is Practitioner)", p => Of(p.Participant.Select(x => x.Actor), "Practitioner"), targets: "Practitioner");
        Add<Appointment>("actor", SearchParamKind.Reference, "Appointment.participant.actor", p => p.Participant.Select(x => x.Actor), targets: ["Patient", "Practitioner", "PractitionerRole", "RelatedPerson", "Device", "HealthcareService", "Location"]);
        Add<Appointment>("status", SearchParamKind.Token, "Appointment.status", p => One(p.StatusElement));
        Add<Appointment>("date", SearchParamKind.Date, "Appointment.start", p => One(p.StartElement));
        Add<Appointment>("service-type", SearchParamKind.Token, "Appointment.serviceType", p => p.ServiceType);
        Add<Appointment>("appointment-type", SearchParamKind.Token, "Appointment.appointmentType", p => One(p.AppointmentType));

        var result = new Dictionary<string, Dictionary<string, SearchParameter>>(StringComparer.Ordinal);
        foreach (var p in all)
        {
            if (!result.TryGetValue(p.ResourceType, out var map))
            {
                result[p.ResourceType] = map = new Dictionary<string, SearchParameter>(StringComparer.Ordinal);
            }
            map.Add(p.Name, p);
        }
        return result;
    }
}
