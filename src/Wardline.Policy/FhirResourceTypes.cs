using System.Collections.Frozen;

namespace Wardline.Policy;

/// <summary>
/// The FHIR R4 (4.0.1) resource type names a policy's <c>kind:</c> may name (the same 146 as
/// Hl7.Fhir.R4's ModelInfo.SupportedResources). A misspelt kind would silently never match, which in a
/// <c>forbid</c> rule is a hole, so the parser rejects names outside this list.
/// </summary>
internal static class FhirResourceTypes
{
    private static readonly string[] Names =
    [
        "Account", "ActivityDefinition", "AdverseEvent", "AllergyIntolerance", "Appointment",
        "AppointmentResponse", "AuditEvent", "Basic", "Binary", "BiologicallyDerivedProduct", "BodyStructure",
        "Bundle", "CapabilityStatement", "CarePlan", "CareTeam", "CatalogEntry", "ChargeItem",
        "ChargeItemDefinition", "Claim", "ClaimResponse", "ClinicalImpression", "CodeSystem", "Communication",
        "CommunicationRequest", "CompartmentDefinition", "Composition", "ConceptMap", "Condition", "Consent",
        "Contract", "Coverage", "CoverageEligibilityRequest", "CoverageEligibilityResponse", "DetectedIssue",
        "Device", "DeviceDefinition", "DeviceMetric", "DeviceRequest", "DeviceUseStatement",
        "DiagnosticReport", "DocumentManifest", "DocumentReference", "EffectEvidenceSynthesis", "Encounter",
        "Endpoint", "EnrollmentRequest", "EnrollmentResponse", "EpisodeOfCare", "EventDefinition", "Evidence",
        "EvidenceVariable", "ExampleScenario", "ExplanationOfBenefit", "FamilyMemberHistory", "Flag", "Goal",
        "GraphDefinition", "Group", "GuidanceResponse", "HealthcareService", "ImagingStudy", "Immunization",
        "ImmunizationEvaluation", "ImmunizationRecommendation", "ImplementationGuide", "InsurancePlan",
        "Invoice", "Library", "Linkage", "List", "Location", "Measure", "MeasureReport", "Media",
        "Medication", "MedicationAdministration", "MedicationDispense", "MedicationKnowledge",
        "MedicationRequest", "MedicationStatement", "MedicinalProduct", "MedicinalProductAuthorization",
        "MedicinalProductContraindication", "MedicinalProductIndication", "MedicinalProductIngredient",
        "MedicinalProductInteraction", "MedicinalProductManufactured", "MedicinalProductPackaged",
        "MedicinalProductPharmaceutical", "MedicinalProductUndesirableEffect", "MessageDefinition",
        "MessageHeader", "MolecularSequence", "NamingSystem", "NutritionOrder", "Observation",
        "ObservationDefinition", "OperationDefinition", "OperationOutcome", "Organization",
        "OrganizationAffiliation", "Parameters", "Patient", "PaymentNotice", "PaymentReconciliation",
        "Person", "PlanDefinition", "Practitioner", "PractitionerRole", "Procedure", "Provenance",
        "Questionnaire", "QuestionnaireResponse", "RelatedPerson", "RequestGroup", "ResearchDefinition",
        "ResearchElementDefinition", "ResearchStudy", "ResearchSubject", "RiskAssessment",
        "RiskEvidenceSynthesis", "Schedule", "SearchParameter", "ServiceRequest", "Slot", "Specimen",
        "SpecimenDefinition", "StructureDefinition", "StructureMap", "Subscription", "Substance",
        "SubstanceNucleicAcid", "SubstancePolymer", "SubstanceProtein", "SubstanceReferenceInformation",
        "SubstanceSourceMaterial", "SubstanceSpecification", "SupplyDelivery", "SupplyRequest", "Task",
        "TerminologyCapabilities", "TestReport", "TestScript", "ValueSet", "VerificationResult",
        "VisionPrescription",
    ];

    public static readonly FrozenSet<string> All = Names.ToFrozenSet(StringComparer.Ordinal);

    /// <summary>A fixed number per type (its position in the list), so a resource's kind is looked up once, when its facts are made.</summary>
    public static readonly FrozenDictionary<string, int> Id =
        Names.Select((name, i) => KeyValuePair.Create(name, i)).ToFrozenDictionary(StringComparer.Ordinal);

    public static int Count => Names.Length;
}
