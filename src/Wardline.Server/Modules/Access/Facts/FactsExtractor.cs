using Hl7.Fhir.Model;
using Wardline.Server.Modules.Records.Search;

namespace Wardline.Server.Modules.Access.Facts;

/// <summary>
/// What the access policy may know of one stored resource, as kept in <c>access_facts</c> next to the
/// resource's row. Only identifiers and codes: the department (an Organization id), the encounter and
/// patient it belongs to, its security labels and status, and for a Patient its flags.
/// </summary>
/// <param name="Labels">Security labels as "|R|PSY|" (empty string for none), so one LIKE finds a label in either engine.</param>
internal sealed record FactsRow(
    string? Department,
    string? Encounter,
    string? Patient,
    string Labels,
    string? Status,
    bool Restricted,
    bool ResearchConsent,
    string? StaffUser,
    IReadOnlyList<CareRelation> CareRelations)
{
    public static readonly FactsRow None = new(null, null, null, "", null, false, false, null, []);

    public IEnumerable<string> LabelList => Labels.Split('|', StringSplitOptions.RemoveEmptyEntries);
}

/// <summary>
/// What links a practitioner to a patient, from a time to a time (unix s; unknown start, open end when null). The kind is
/// the explanation name monitoring knows it by. An encounter, care team or episode makes the practitioner one who cares
/// for the patient, which the policy's care-team condition grants access by; a scheduled appointment, a consult order or
/// a referral naming the practitioner only explains an access to monitoring and grants none.
/// </summary>
internal readonly record struct CareRelation(string Practitioner, string Patient, string Kind, long? From, long? Until)
{
    /// <summary>The kinds the policy counts as caring for the patient, as a SQL list.</summary>
    public const string CaringKindsSql = "('encounter', 'care-team', 'episode')";
}

/// <summary>
/// Reads <see cref="FactsRow"/> from a resource's content when it is written. The department is the
/// resource's own (an Encounter's serviceProvider, an EpisodeOfCare's or CareTeam's managing
/// organization, a PractitionerRole's organization); a resource without one belongs to its encounter's
/// department, and failing that to every department treating its patient (resolved when read).
/// </summary>
internal sealed class FactsExtractor(AccessOptions options)
{
    private const string Confidentiality = "http://terminology.hl7.org/CodeSystem/v3-Confidentiality";
    private const string ActCode = "http://terminology.hl7.org/CodeSystem/v3-ActCode";

    public FactsRow Extract(Resource resource, IReadOnlyList<IndexEntry> index, long nowSeconds)
    {
        var type = resource.TypeName;
        string? patient = type == "Patient" ? resource.Id : null;
        string? encounter = null;
        foreach (var e in index)
        {
            if (e.Ref is null) continue;
            if (patient is null && e.Param is "patient" or "subject" or "beneficiary" && e.Ref.StartsWith("Patient/", StringComparison.Ordinal))
                patient = e.Ref["Patient/".Length..];
            else if (encounter is null && e.Param is "encounter" or "context" && e.Ref.StartsWith("Encounter/", StringComparison.Ordinal))
                encounter = e.Ref["Encounter/".Length..];
        }
        // Types whose patient or encounter is not a search parameter here (Coverage.beneficiary,
        // MedicationAdministration.context, Specimen.subject, Device.patient, ...): read the elements.
        patient ??= Referenced(resource, "Patient", "patient", "subject", "beneficiary");
        encounter ??= Referenced(resource, "Encounter", "encounter", "context");
        if (resource is Binary { SecurityContext.Reference: { } context })
        {
            // A Binary (an attachment's content) is protected like what its securityContext names.
            if (patient is null && context.StartsWith("Patient/", StringComparison.Ordinal)) patient = context[8..];
            else if (encounter is null && context.StartsWith("Encounter/", StringComparison.Ordinal)) encounter = context[10..];
        }
        var department = resource switch
        {
            Encounter x => OrgId(x.ServiceProvider),
            EpisodeOfCare x => OrgId(x.ManagingOrganization),
            CareTeam x => x.ManagingOrganization.Select(OrgId).FirstOrDefault(o => o is not null),
            PractitionerRole x => OrgId(x.Organization),
            Location x => OrgId(x.ManagingOrganization),
            Organization x => x.Id,
            _ => null,
        };
        var labels = new SortedSet<string>(StringComparer.Ordinal);
        var restricted = false;
        var consent = false;
        foreach (var c in resource.Meta?.Security ?? [])
        {
            if (c.Code is null || (c.System != Confidentiality && c.System != ActCode)) continue;
            labels.Add(c.Code);
        }
        string? staff = null;
        if (resource is Patient p)
        {
            restricted = labels.Contains("R") || labels.Contains("V");
            foreach (var tag in p.Meta?.Tag ?? [])
            {
                if (tag.System != options.FlagsSystem) continue;
                if (tag.Code == "vip") restricted = true;
                if (tag.Code == "research-consent") consent = true;
            }
            staff = p.Identifier.FirstOrDefault(i => i.System == options.StaffSystem && !string.IsNullOrEmpty(i.Value))?.Value;
        }
        return new FactsRow(department, encounter, patient, labels.Count == 0 ? "" : "|" + string.Join('|', labels) + "|",
            Status(resource), restricted, consent, staff, patient is null ? [] : CareRelations(resource, patient, nowSeconds));
    }

    /// <summary>The id of the first <paramref name="type"/> referenced by one of the named elements (single or repeating).</summary>
    private static string? Referenced(Resource resource, string type, params string[] elements)
    {
        var prefix = type + "/";
        foreach (var name in elements)
        {
            if (!resource.TryGetValue(name, out var value)) continue;
            var refs = value switch
            {
                ResourceReference one => [one],
                IEnumerable<ResourceReference> many => many,
                _ => [],
            };
            foreach (var r in refs)
            {
                if (r.Reference is { } s && s.StartsWith(prefix, StringComparison.Ordinal) && s.IndexOf('/', prefix.Length) < 0) return s[prefix.Length..];
            }
        }
        return null;
    }

    private static string? OrgId(ResourceReference? r) =>
        r?.Reference is { } s && s.StartsWith("Organization/", StringComparison.Ordinal) && s.IndexOf('/', 13) < 0 ? s[13..] : null;

    private const string Snomed = "http://snomed.info/sct";

    /// <summary>A referral rather than a consult: coded as SNOMED CT "Patient referral" (3457005) in its category or code.</summary>
    private static bool IsReferral(ServiceRequest r) =>
        r.Category.Append(r.Code).OfType<CodeableConcept>().SelectMany(c => c.Coding).Any(c => c.System == Snomed && c.Code == "3457005");

    private static string? PractitionerId(ResourceReference? r) =>
        r?.Reference is { } s && s.StartsWith("Practitioner/", StringComparison.Ordinal) && s.IndexOf('/', 13) < 0 ? s[13..] : null;

    /// <summary>The status a write invariant looks at: a Condition's verification status, otherwise the resource's own status.</summary>
    internal static string? Status(Resource resource) => resource switch
    {
        Condition c => c.VerificationStatus?.Coding.FirstOrDefault()?.Code,
        _ => resource.TryGetValue("status", out var v) && v is PrimitiveType prim ? prim.ToString() : null,
    };

    private static List<CareRelation> CareRelations(Resource resource, string patient, long now)
    {
        var list = new List<CareRelation>();
        static long? Seconds(FhirDateTime? t) => t?.ToDateTimeOffset(TimeSpan.Zero).ToUnixTimeSeconds();
        static long? Moment(Instant? t) => t?.Value?.ToUnixTimeSeconds();
        void Add(ResourceReference? who, string kind, Period? period, bool ended)
        {
            if (PractitionerId(who) is not { } practitioner) return;
            list.Add(new CareRelation(practitioner, patient, kind, Seconds(period?.StartElement), Seconds(period?.EndElement) ?? (ended ? now : null)));
        }
        switch (resource)
        {
            case Encounter e:
                var ended = e.Status is Encounter.EncounterStatus.Finished or Encounter.EncounterStatus.Cancelled or Encounter.EncounterStatus.EnteredInError;
                foreach (var p in e.Participant) Add(p.Individual, "encounter", p.Period ?? e.Period, ended);
                break;
            case CareTeam t:
                var inactive = t.Status is CareTeam.CareTeamStatus.Inactive or CareTeam.CareTeamStatus.EnteredInError;
                foreach (var p in t.Participant) Add(p.Member, "care-team", p.Period ?? t.Period, inactive);
                break;
            case EpisodeOfCare ep:
                Add(ep.CareManager, "episode", ep.Period, ep.Status is EpisodeOfCare.EpisodeOfCareStatus.Finished or EpisodeOfCare.EpisodeOfCareStatus.Cancelled);
                break;
            case Appointment a when a.Status is not (Appointment.AppointmentStatus.Cancelled or Appointment.AppointmentStatus.Noshow
                or Appointment.AppointmentStatus.EnteredInError) && Moment(a.StartElement) is { } start:
                // The slot itself: monitoring's grace days add the preparation before and the write-up after.
                var end = Moment(a.EndElement) ?? start;
                foreach (var p in a.Participant.Where(p => p.Status is not ParticipationStatus.Declined))
                {
                    if (PractitionerId(p.Actor) is { } practitioner) list.Add(new CareRelation(practitioner, patient, "appointment", start, end));
                }
                break;
            case ServiceRequest r when r.Status is not (RequestStatus.EnteredInError or RequestStatus.Draft):
                // Asked of the performer from when it was written, until it is done or its occurrence ends.
                var kind = IsReferral(r) ? "referral" : "consult-order";
                var from = Seconds(r.AuthoredOnElement);
                var until = r.Occurrence switch
                {
                    Period o when o.EndElement is not null => Seconds(o.EndElement),
                    FhirDateTime o => Seconds(o),
                    _ => r.Status is RequestStatus.Completed or RequestStatus.Revoked ? now : null,
                };
                foreach (var performer in r.Performer)
                {
                    if (PractitionerId(performer) is { } practitioner) list.Add(new CareRelation(practitioner, patient, kind, from, until));
                }
                break;
        }
        // One relation per practitioner (care_relations' key is the resource, practitioner and patient): a practitioner
        // listed twice (an encounter's admitter and attender, two periods of a care team) holds the span of all of them.
        return [.. list.GroupBy(r => r.Practitioner, StringComparer.Ordinal).Select(g => g.Skip(1).Any()
            ? g.First() with
            {
                From = g.Any(r => r.From is null) ? null : g.Min(r => r.From),
                Until = g.Any(r => r.Until is null) ? null : g.Max(r => r.Until),
            }
            : g.First())];
    }
}
