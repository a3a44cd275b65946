using Hl7.Fhir.Model;
using Wardline.Ledger;

namespace Wardline.Server.Modules.Ledger;

/// <summary>
/// Turns ledger entries into FHIR R4 AuditEvent and Provenance resources shaped after IHE Basic Audit
/// Log Patterns (BALP): one AuditEvent per request and patient (its decisions become entities), a
/// break-glass declaration as a Security Alert "Emergency Override Started", writes as create/update/delete.
/// Ids are "ledger-&lt;first entry index&gt;", so the same entries always make the same resource.
/// </summary>
internal static class AuditEventBuilder
{
    public const string IdPrefix = "ledger-";
    public const string AccountSystem = "https://wardline.example/account";
    public const string ClientSystem = "https://wardline.example/client";
    public const string RoleSystem = "https://wardline.example/role";
    public const string RuleSystem = "https://wardline.example/policy-rule";
    public const string SecurityEventSystem = "https://wardline.example/security-event";
    public const string LedgerIndexExtension = "https://wardline.example/fhir/StructureDefinition/ledger-index";
    public const string LedgerSha256Extension = "https://wardline.example/fhir/StructureDefinition/ledger-sha256";
    public const string LedgerIndexSystem = "https://wardline.example/ledger-index";

    private const string Dcm = "http://dicom.nema.org/resources/ontology/DCM";

    /// <summary>Security entries shown as DCM 110114 User Authentication; the others are 110113 Security Alert.</summary>
    internal static readonly string[] AuthenticationEvents = ["SignIn", "SignInFailed", "SignOut", "SessionExpired", "MfaFailed", "Lockout"];

    /// <summary>
    /// The AuditEvent.type codes this builder emits, as SQL over ledger_entries (<c>type</c>, <c>event</c>), so a search by
    /// type finds exactly the events that carry it. Keep in step with <see cref="Access"/>, <see cref="Write"/> and
    /// <see cref="Security"/>.
    /// </summary>
    internal static readonly IReadOnlyDictionary<string, string> TypeCodeFilters = new Dictionary<string, string>(StringComparer.Ordinal)
    {
        [EventTypes + "|rest"] = "((type = 'access' AND event IN ('decision', 'request')) OR type = 'write')",
        [Dcm + "|110110"] = "(type = 'access' AND event NOT IN ('decision', 'request'))",
        [Dcm + "|110114"] = $"(type = 'security' AND event IN ({string.Join(", ", AuthenticationEvents.Select(a => $"'{a}'"))}))",
        [Dcm + "|110113"] = $"(type = 'security' AND event NOT IN ({string.Join(", ", AuthenticationEvents.Select(a => $"'{a}'"))}))",
        [Dcm + "|110100"] = "(type NOT IN ('access', 'write', 'security'))",
    };
    private const string EventTypes = "http://terminology.hl7.org/CodeSystem/audit-event-type";
    private const string Interactions = "http://hl7.org/fhir/restful-interaction";
    private const string EntityTypes = "http://terminology.hl7.org/CodeSystem/audit-entity-type";
    private const string ObjectRoles = "http://terminology.hl7.org/CodeSystem/object-role";
    private const string SourceTypes = "http://terminology.hl7.org/CodeSystem/security-source-type";
    private const string ParticipationTypes = "http://terminology.hl7.org/CodeSystem/v3-ParticipationType";
    private const string ActReason = "http://terminology.hl7.org/CodeSystem/v3-ActReason";
    private const string Balp = "https://profiles.ihe.net/ITI/BALP/StructureDefinition/IHE.BasicAudit.";

    public static string Id(long index) => IdPrefix + index.ToString(System.Globalization.CultureInfo.InvariantCulture);

    public static AuditEvent Build(AuditGroup group, string serverUrl)
    {
        var e = group.First;
        var ae = new AuditEvent
        {
            Id = Id(group.Id),
            Recorded = e.At,
            Source = new AuditEvent.SourceComponent
            {
                Site = "Wardline",
                Observer = new ResourceReference { Display = "Wardline", Identifier = new Identifier("urn:ietf:rfc:3986", serverUrl) },
                Type = [new Coding(SourceTypes, "4", "Application Server")],
            },
            Extension = [new Extension(LedgerIndexExtension, IndexValue(group.Id))],
        };
        switch (e.Type)
        {
            case "access":
                Access(ae, group, serverUrl);
                break;
            case "write":
                Write(ae, e, serverUrl);
                break;
            case "security":
                Security(ae, e);
                break;
            default:
                ae.Type = new Coding(Dcm, "110100", "Application Activity");
                ae.Subtype = [new Coding(SecurityEventSystem, e.Event ?? "system")];
                ae.Action = AuditEvent.AuditEventAction.E;
                ae.Outcome = Success(e.Outcome) ? AuditEvent.AuditEventOutcome.N0 : AuditEvent.AuditEventOutcome.N4;
                ae.OutcomeDesc = e.Detail;
                ae.Agent.Add(Person(e.Actor ?? e.User ?? "system", null, true));
                break;
        }
        return ae;
    }

    private static void Access(AuditEvent ae, AuditGroup group, string serverUrl)
    {
        var e = group.First;
        var entries = group.Items.Select(i => i.Entry).ToList();
        var denied = entries.Where(x => x.Permitted == false).ToList();
        var rest = e.Event is "decision" or "request";
        if (rest)
        {
            ae.Type = new Coding(EventTypes, "rest", "Restful Operation");
            ae.Subtype = [Interaction(e.Action)];
        }
        else
        {
            // A review, an explanation or a read of the audit trail: patient record use outside the FHIR API.
            ae.Type = new Coding(Dcm, "110110", "Patient Record");
            ae.Subtype = [new Coding(SecurityEventSystem, e.Event ?? "access")];
        }
        ae.Action = e.Action switch
        {
            "Create" => AuditEvent.AuditEventAction.C,
            "Update" => AuditEvent.AuditEventAction.U,
            "Delete" => AuditEvent.AuditEventAction.D,
            "Search" or "Bundle" => AuditEvent.AuditEventAction.E,
            _ => AuditEvent.AuditEventAction.R,
        };
        ae.Outcome = denied.Count == 0 ? AuditEvent.AuditEventOutcome.N0 : AuditEvent.AuditEventOutcome.N4;
        if (denied.Count > 0) ae.OutcomeDesc = string.Join("; ", denied.Select(d => d.Reason ?? d.Rule ?? "refused").Distinct(StringComparer.Ordinal));
        if (rest && denied.Count == 0 && e.Patient is not null)
        {
            var profile = e.Action switch
            {
                "Read" or "VRead" or "History" => "PatientRead",
                "Search" => "PatientQuery",
                "Create" => "PatientCreate",
                "Update" => "PatientUpdate",
                "Delete" => "PatientDelete",
                _ => null,
            };
            if (profile is not null) ae.Meta = new Meta { Profile = [Balp + profile] };
        }
        var purposes = entries.Select(x => x.Purpose).OfType<string>().Distinct(StringComparer.Ordinal).ToList();
        ae.PurposeOfEvent = [.. purposes.Select(p => new CodeableConcept(ActReason, p))];
        if (purposes.Contains("ETREAT"))
        {
            // A break-glass access: flagged as an emergency override so reviewers can find it.
            ae.Subtype.Add(new Coding(Dcm, "110127", "Emergency Override"));
            ae.PurposeOfEvent[purposes.IndexOf("ETREAT")].Coding.Add(new Coding(Dcm, "110127", "Emergency Override"));
        }

        var user = Person(e.User ?? "anonymous", e.Roles, true);
        user.PurposeOfUse = [.. purposes.Select(p => new CodeableConcept(ActReason, p))];
        if (e.Source is not null)
        {
            user.Network = new AuditEvent.NetworkComponent { Address = e.Source, Type = AuditEvent.AuditEventAgentNetworkType.N2 };
        }
        ae.Agent.Add(user);
        AddApplicationAndServer(ae, e.Client, serverUrl);

        if (AuditTrail.PatientOf(e) is { } patient) ae.Entity.Add(PatientEntity(patient));
        foreach (var x in entries)
        {
            if (x.Resource is null) continue;
            var entity = new AuditEvent.EntityComponent
            {
                What = new ResourceReference(x.Resource),
                Type = new Coding(EntityTypes, "2", "System Object"),
                Role = new Coding(ObjectRoles, "4", "Domain Resource"),
            };
            if (x.Rule is not null)
            {
                entity.Detail.Add(new AuditEvent.DetailComponent { Type = "rule", Value = new FhirString(x.Rule) });
            }
            if (x.Permitted == false)
            {
                entity.Description = "refused: " + (x.Reason ?? x.Rule ?? "no reason");
                entity.Detail.Add(new AuditEvent.DetailComponent { Type = "permitted", Value = new FhirString("false") });
            }
            ae.Entity.Add(entity);
        }
    }

    /// <summary>The client application (when the request came through one) and this server, as BALP's source and destination agents.</summary>
    private static void AddApplicationAndServer(AuditEvent ae, string? client, string serverUrl)
    {
        if (client is not null)
        {
            ae.Agent.Add(new AuditEvent.AgentComponent
            {
                Type = new CodeableConcept(Dcm, "110153", "Source Role ID"),
                Who = new ResourceReference { Identifier = new Identifier(ClientSystem, client), Display = client },
                Requestor = false,
            });
        }
        ae.Agent.Add(Server(serverUrl));
    }

    private static void Write(AuditEvent ae, LedgerEntry e, string serverUrl)
    {
        ae.Type = new Coding(EventTypes, "rest", "Restful Operation");
        ae.Subtype = [Interaction(e.Event switch { "create" => "Create", "delete" => "Delete", _ => "Update" })];
        ae.Action = e.Event switch
        {
            "create" => AuditEvent.AuditEventAction.C,
            "delete" => AuditEvent.AuditEventAction.D,
            _ => AuditEvent.AuditEventAction.U,
        };
        ae.Outcome = AuditEvent.AuditEventOutcome.N0;
        ae.Agent.Add(Person(e.User ?? "operator", null, true));
        AddApplicationAndServer(ae, e.Client, serverUrl);
        if (AuditTrail.PatientOf(e) is { } patient) ae.Entity.Add(PatientEntity(patient));
        if (e.Resource is not null)
        {
            var entity = new AuditEvent.EntityComponent
            {
                What = new ResourceReference(e.Resource),
                Type = new Coding(EntityTypes, "2", "System Object"),
                Role = new Coding(ObjectRoles, "4", "Domain Resource"),
            };
            if (e.Sha256 is not null) entity.Detail.Add(new AuditEvent.DetailComponent { Type = "sha256", Value = new FhirString(e.Sha256) });
            ae.Entity.Add(entity);
        }
    }

    private static void Security(AuditEvent ae, LedgerEntry e)
    {
        var ok = Success(e.Outcome);
        if (e.Event == AuditTrail.BreakGlassEvent)
        {
            ae.Type = new Coding(Dcm, "110113", "Security Alert");
            ae.Subtype = [new Coding(Dcm, "110127", "Emergency Override Started")];
            ae.PurposeOfEvent = [new CodeableConcept(ActReason, "ETREAT")];
        }
        else if (AuthenticationEvents.Contains(e.Event))
        {
            ae.Type = new Coding(Dcm, "110114", "User Authentication");
            ae.Subtype = [e.Event is "SignOut" or "SessionExpired" ? new Coding(Dcm, "110123", "Logout") : new Coding(Dcm, "110122", "Login")];
        }
        else
        {
            ae.Type = new Coding(Dcm, "110113", "Security Alert");
            ae.Subtype = [new Coding(SecurityEventSystem, e.Event ?? "security")];
        }
        ae.Subtype.Add(new Coding(SecurityEventSystem, e.Event ?? "security"));
        ae.Action = AuditEvent.AuditEventAction.E;
        ae.Outcome = ok ? AuditEvent.AuditEventOutcome.N0 : AuditEvent.AuditEventOutcome.N4;
        ae.OutcomeDesc = e.Detail;
        var who = Person(e.User ?? e.Actor ?? "unknown", null, e.Actor is null || e.Actor == e.User);
        if (e.Source is not null) who.Network = new AuditEvent.NetworkComponent { Address = e.Source, Type = AuditEvent.AuditEventAgentNetworkType.N2 };
        ae.Agent.Add(who);
        if (e.Actor is not null && e.Actor != e.User) ae.Agent.Add(Person(e.Actor, null, true));
        if (AuditTrail.PatientOf(e) is { } patient) ae.Entity.Add(PatientEntity(patient));
    }

    /// <summary>A Provenance for one write entry: the version written, by whom and through which application, with the ledger index and the content's SHA-256.</summary>
    public static Provenance Provenance(AuditItem item)
    {
        var e = item.Entry;
        var p = new Provenance
        {
            Id = Id(item.Index),
            Recorded = e.At,
            Target = [new ResourceReference(e.Resource)],
            Activity = new CodeableConcept("http://terminology.hl7.org/CodeSystem/v3-DataOperation", e.Event switch
            {
                "create" => "CREATE",
                "delete" => "DELETE",
                _ => "UPDATE",
            }),
            Extension = [new Extension(LedgerIndexExtension, IndexValue(item.Index))],
        };
        if (e.Sha256 is not null) p.Extension.Add(new Extension(LedgerSha256Extension, new FhirString(e.Sha256)));
        p.Agent.Add(new Provenance.AgentComponent
        {
            Type = new CodeableConcept("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "author", "Author"),
            Who = new ResourceReference { Identifier = new Identifier(AccountSystem, e.User ?? "operator"), Display = e.User ?? "operator" },
        });
        if (e.Client is not null)
        {
            p.Agent.Add(new Provenance.AgentComponent
            {
                Type = new CodeableConcept("http://terminology.hl7.org/CodeSystem/provenance-participant-type", "assembler", "Assembler"),
                Who = new ResourceReference { Identifier = new Identifier(ClientSystem, e.Client), Display = e.Client },
            });
        }
        return p;
    }

    private static AuditEvent.AgentComponent Person(string user, IReadOnlyList<string>? roles, bool requestor) => new()
    {
        Type = new CodeableConcept(ParticipationTypes, "IRCP", "information recipient"),
        Who = new ResourceReference { Identifier = new Identifier(AccountSystem, user), Display = user },
        AltId = user,
        Requestor = requestor,
        Role = [.. (roles ?? []).Select(r => new CodeableConcept(RoleSystem, r))],
    };

    private static AuditEvent.AgentComponent Server(string serverUrl) => new()
    {
        Type = new CodeableConcept(Dcm, "110152", "Destination Role ID"),
        Who = new ResourceReference { Identifier = new Identifier("urn:ietf:rfc:3986", serverUrl), Display = "Wardline" },
        Requestor = false,
        Network = new AuditEvent.NetworkComponent { Address = serverUrl, Type = AuditEvent.AuditEventAgentNetworkType.N5 },
    };

    private static AuditEvent.EntityComponent PatientEntity(string patient) => new()
    {
        What = new ResourceReference("Patient/" + patient),
        Type = new Coding(EntityTypes, "1", "Person"),
        Role = new Coding(ObjectRoles, "1", "Patient"),
    };

    private static Coding Interaction(string? action) => action switch
    {
        "Read" => new Coding(Interactions, "read", "read"),
        "VRead" => new Coding(Interactions, "vread", "vread"),
        "Search" => new Coding(Interactions, "search-type", "search-type"),
        "History" => new Coding(Interactions, "history-instance", "history-instance"),
        "Create" => new Coding(Interactions, "create", "create"),
        "Update" => new Coding(Interactions, "update", "update"),
        "Delete" => new Coding(Interactions, "delete", "delete"),
        "Bundle" => new Coding(Interactions, "batch", "batch"),
        _ => new Coding(Interactions, "operation", "operation"),
    };

    /// <summary>An index as an R4 value: unsignedInt while it fits, else its digits.</summary>
    public static DataType IndexValue(long index) =>
        index <= int.MaxValue ? new UnsignedInt((int)index) : new FhirString(index.ToString(System.Globalization.CultureInfo.InvariantCulture));

    private static bool Success(string? outcome) => outcome is null or "success" or "succeeded" or "granted" or "ok";
}
