namespace Wardline.Server.Tests.Modules.Access.Matrix;

/// <summary>Who asks, as the oracle sees them: an account's roles, tier, department codes and labels, with its current care patients and grants.</summary>
public sealed record OracleSubject(
    string Name,
    IReadOnlySet<string> Roles,
    int Tier,
    IReadOnlySet<string> Departments,
    IReadOnlySet<string> Treats,
    IReadOnlySet<string> CarePatients,
    IReadOnlySet<string> BreakGlassPatients);

public enum MatrixAction { Read, Search, Create, Update, Delete }

/// <summary>
/// The intent of the built-in hospital policy (hospital-policy.yaml), written out by hand in plain C#
/// so the server's policy engine is checked against an independent reading of the same rules: a
/// forbid always wins, and nothing is allowed unless a permit says so. Contexts the matrix never uses
/// (tier 3 shifts and networks, researchers, HRESCH, inactive or expired accounts) are left out; every
/// bearer token counts as an MFA sign-in, so writes-need-mfa never fires.
/// </summary>
public static class HospitalPolicyOracle
{
    public static readonly IReadOnlySet<string> Clinical = Set("Patient", "Encounter", "EpisodeOfCare", "CareTeam", "Condition", "Observation",
        "DiagnosticReport", "MedicationRequest", "MedicationStatement", "MedicationAdministration", "AllergyIntolerance", "Procedure",
        "Immunization", "CarePlan", "DocumentReference", "Goal", "ImagingStudy", "ServiceRequest", "Specimen", "Binary", "Consent", "Provenance", "Device");

    private static readonly IReadOnlySet<string> PrescriberWrites = Set("Encounter", "EpisodeOfCare", "CareTeam", "Condition", "Observation",
        "DiagnosticReport", "MedicationRequest", "MedicationStatement", "AllergyIntolerance", "Procedure", "Immunization", "CarePlan",
        "DocumentReference", "Goal", "ServiceRequest", "Specimen", "Binary", "Consent");

    private static readonly IReadOnlySet<string> NurseWrites = Set("Observation", "CarePlan", "Encounter", "DocumentReference",
        "MedicationAdministration", "Procedure", "Immunization", "AllergyIntolerance", "Goal", "Specimen");

    private static readonly IReadOnlySet<string> Financial = Set("Coverage", "Claim", "ExplanationOfBenefit");
    public static readonly IReadOnlySet<string> Directory = Set("Organization", "Practitioner", "PractitionerRole", "Location", "Medication");
    private static readonly IReadOnlySet<string> CareRoles = Set("physician", "nurse", "psychiatrist", "pharmacist", "lab_tech", "social_worker");
    private static readonly IReadOnlySet<string> Prescribers = Set("physician", "psychiatrist");
    private static readonly IReadOnlySet<string> NoChartRoles = Set("administrator", "privacy_officer", "security_officer", "billing_clerk");
    private static readonly IReadOnlySet<string> FinalStatuses = Set("confirmed", "refuted", "completed", "final", "amended", "stopped");

    /// <summary>Whether the policy means <paramref name="s"/> to be allowed <paramref name="action"/> on a resource with these facts.</summary>
    public static bool Permits(OracleSubject s, MatrixAction action, OracleFacts f, string purpose = "TREAT")
    {
        var own = f.Departments.Overlaps(s.Departments);
        var care = f.Patient is not null && s.CarePatients.Contains(f.Patient);
        var breakGlass = purpose == "ETREAT" && f.Patient is not null && s.BreakGlassPatients.Contains(f.Patient);
        return Permitted(s, action, f.Type, own, care, breakGlass, f.Patient is not null, purpose)
            && !Forbidden(s, action, f.Type, own, care, breakGlass, f.Patient is not null, purpose, f.Labels, f.Status, f.PatientRestricted, f.PatientStaffUser);
    }

    /// <summary>
    /// Whether no resource of <paramref name="type"/> could ever be allowed to <paramref name="s"/> for this action
    /// (the server may then answer 403 without looking at any resource): true when no combination of the
    /// resource-dependent conditions this subject can meet permits it.
    /// </summary>
    public static bool NeverAllowed(OracleSubject s, MatrixAction action, string type, string purpose = "TREAT")
    {
        bool[] no = [false], both = [false, true];
        foreach (var own in s.Departments.Count > 0 ? both : no)
        foreach (var care in s.CarePatients.Count > 0 ? both : no)
        foreach (var breakGlass in purpose == "ETREAT" && s.BreakGlassPatients.Count > 0 ? both : no)
        foreach (var hasPatient in both)
        {
            if (breakGlass && !hasPatient) continue;
            if (Permitted(s, action, type, own, care, breakGlass, hasPatient, purpose)
                && !Forbidden(s, action, type, own, care, breakGlass, hasPatient, purpose, new HashSet<string>(), null, false, null))
                return false;
        }
        return true;
    }

    private static bool Permitted(OracleSubject s, MatrixAction a, string kind, bool own, bool care, bool breakGlass, bool hasPatient, string purpose)
    {
        bool Role(params string[] roles) => roles.Any(s.Roles.Contains);
        bool AnyOf(IReadOnlySet<string> roles) => roles.Any(s.Roles.Contains);
        var readOrSearch = a is MatrixAction.Read or MatrixAction.Search;
        var write = a is MatrixAction.Create or MatrixAction.Update;
        var clinical = Clinical.Contains(kind);
        return (readOrSearch && Directory.Contains(kind))                                                     // directory-read
            || (s.Tier == 1 && AnyOf(CareRoles) && clinical && (readOrSearch || write))                        // tier1-full-access
            || (s.Tier == 1 && Role("executive") && readOrSearch)                                              // executive-read-all
            || (Role("physician", "nurse", "psychiatrist") && clinical && own && readOrSearch)                 // department-clinical-read
            || (AnyOf(CareRoles) && clinical && care && readOrSearch)                                          // care-team-read
            || (AnyOf(Prescribers) && PrescriberWrites.Contains(kind) && (own || care) && write)               // prescriber-write-*
            || (Role("nurse") && NurseWrites.Contains(kind) && (own || care) && write)                         // nurse-write, nurse-write-care-team
            || (Role("physician", "nurse", "psychiatrist", "receptionist") && kind == "Patient" && a == MatrixAction.Create) // register-patient
            || (Role("billing_clerk") && Financial.Contains(kind) && (readOrSearch || write))                  // billing-financial
            || (AnyOf(CareRoles) && clinical && breakGlass && readOrSearch)                                    // break-glass-read
            || (s.Tier == 1 && AnyOf(CareRoles) && clinical && a == MatrixAction.Delete);                      // tier1-delete
    }

    private static bool Forbidden(OracleSubject s, MatrixAction a, string kind, bool own, bool care, bool breakGlass, bool hasPatient, string purpose,
        IReadOnlySet<string> labels, string? status, bool restricted, string? staffUser)
    {
        bool Label(params string[] any) => any.Any(labels.Contains);
        bool Treats(params string[] any) => any.Any(s.Treats.Contains);
        var clinical = Clinical.Contains(kind);
        return (NoChartRoles.Any(s.Roles.Contains) && clinical && !CareRoles.Any(s.Roles.Contains))          // no-charts-for-administrative-roles
            || (Label("PSY", "PSYTHPN", "MH") && !(Treats("PSY") || s.Tier == 1 || breakGlass))                // sensitive-psy
            || (Label("HIV") && !(Treats("HIV") || s.Tier == 1 || breakGlass))                                 // sensitive-hiv
            || (Label("ETH", "SUD", "ETHUD", "OPIOIDUD") && !(Treats("ETH") || breakGlass))                    // sensitive-substance-use: tier 1 not exempt
            || (Label("GDIS", "SDV", "STD", "SEX") && !(Treats("GDIS", "SDV", "STD", "SEX") || s.Tier == 1 || breakGlass))
            || (restricted && !(care || s.Tier == 1 || breakGlass))                                            // restricted-patient
            || (staffUser is not null && staffUser == s.Name)                                                  // own-record
            || (purpose == "ETREAT" && hasPatient && !breakGlass)                                              // emergency-needs-grant
            || (purpose == "HRESCH" && !s.Roles.Contains("researcher"))
            || (a == MatrixAction.Update && kind is ("Condition" or "MedicationRequest") && status is not null && FinalStatuses.Contains(status) && !own)
            || (a == MatrixAction.Delete && kind is ("Condition" or "MedicationRequest") && status is not null && FinalStatuses.Contains(status));
    }

    private static HashSet<string> Set(params string[] items) => new(items, StringComparer.Ordinal);
}
