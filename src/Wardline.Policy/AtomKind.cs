namespace Wardline.Policy;

/// <summary>A resource-dependent fact in a <see cref="Residual"/>; see each member for its values.</summary>
public enum AtomKind
{
    /// <summary>The resource belongs to one of Values (the subject's departments).</summary>
    InSubjectDepartment,

    /// <summary>The resource's patient id is one of Values (the subject's care-team patients).</summary>
    OnCareTeam,

    /// <summary>The resource's patient id is one of Values (patients with an unexpired grant; only when the purpose is ETREAT).</summary>
    BreakGlass,

    /// <summary>The resource's patient is restricted (no values).</summary>
    PatientRestricted,

    /// <summary>The resource's patient consented to research (no values).</summary>
    ResearchConsent,

    /// <summary>The resource's patient's staff user id is Values[0] (the subject's id).</summary>
    OwnRecord,

    /// <summary>The resource has any of the labels in Values.</summary>
    HasLabel,

    /// <summary>The resource's status is one of Values.</summary>
    StatusIn,

    /// <summary>The resource has a patient (no values).</summary>
    HasPatient,
}
