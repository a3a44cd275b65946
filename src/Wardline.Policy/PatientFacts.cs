namespace Wardline.Policy;

/// <summary>What the policy may know of a patient.</summary>
public sealed class PatientFacts
{
    /// <param name="staffUserId">The user id of the staff member who is this patient, or null.</param>
    public PatientFacts(string id, bool restricted, bool researchConsent, string? staffUserId)
    {
        ArgumentNullException.ThrowIfNull(id);
        Id = id;
        Restricted = restricted;
        ResearchConsent = researchConsent;
        StaffUserId = staffUserId;
    }

    public string Id { get; }

    /// <summary>Restricted (VIP) patient.</summary>
    public bool Restricted { get; }

    public bool ResearchConsent { get; }

    /// <summary>The user id of the staff member who is this patient, or null.</summary>
    public string? StaffUserId { get; }
}
