namespace Wardline.Policy;

/// <summary>
/// What the policy may know of one resource. Immutable: the lists passed in must not change afterwards
/// (the constructor derives what decisions read from them: the kind's number, label bits, patient facts).
/// </summary>
public sealed class ResourceFacts
{
    /// <param name="kind">The FHIR resource type.</param>
    /// <param name="departments">Departments the resource belongs to (may be several or none).</param>
    /// <param name="labels">Security label codes (confidentiality and sensitivity, e.g. R, PSY).</param>
    /// <param name="status">The resource's status code, or null.</param>
    /// <param name="patient">Its patient (the Patient itself for a Patient resource), or null.</param>
    public ResourceFacts(string kind, string? id, IReadOnlyList<string> departments, IReadOnlyList<string> labels, string? status, PatientFacts? patient)
    {
        ArgumentNullException.ThrowIfNull(kind);
        ArgumentNullException.ThrowIfNull(departments);
        ArgumentNullException.ThrowIfNull(labels);
        Kind = kind;
        Id = id;
        Departments = departments;
        Labels = labels;
        Status = status;
        Patient = patient;
        // What a decision reads, gathered here once so that it reads one object: the kind's number,
        // the labels as bits, the departments as an array and the patient's facts.
        KindId = FhirResourceTypes.Id.TryGetValue(kind, out var kindId) ? kindId : -1;
        LabelMask = SecurityLabels.MaskOf(labels);
        DepartmentArray = departments as string[] ?? [.. departments];
        PatientId = patient?.Id;
        PatientRestricted = patient?.Restricted ?? false;
        PatientResearchConsent = patient?.ResearchConsent ?? false;
        PatientStaffUserId = patient?.StaffUserId;
    }

    /// <summary>The FHIR resource type.</summary>
    public string Kind { get; }

    public string? Id { get; }

    public IReadOnlyList<string> Departments { get; }

    public IReadOnlyList<string> Labels { get; }

    public string? Status { get; }

    public PatientFacts? Patient { get; }

    /// <summary>The kind's number in <see cref="FhirResourceTypes"/>, or -1 for a name that is not a FHIR R4 type.</summary>
    internal int KindId { get; }

    /// <summary>The known security labels (<see cref="SecurityLabels"/>) as bits; other codes are left out (no rule can name them).</summary>
    internal ulong LabelMask { get; }

    internal string[] DepartmentArray { get; }

    internal string? PatientId { get; }

    internal bool PatientRestricted { get; }

    internal bool PatientResearchConsent { get; }

    internal string? PatientStaffUserId { get; }
}
