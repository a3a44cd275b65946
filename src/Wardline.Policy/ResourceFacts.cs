namespace Wardline.Policy;

/// <summary>What the policy may know of one resource.</summary>
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
    }

    /// <summary>The FHIR resource type.</summary>
    public string Kind { get; }

    public string? Id { get; }

    public IReadOnlyList<string> Departments { get; }

    public IReadOnlyList<string> Labels { get; }

    public string? Status { get; }

    public PatientFacts? Patient { get; }
}
