using System.Globalization;
using Hl7.Fhir.Model;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records.Search;

namespace Wardline.Server.Modules.Records.Api;

/// <summary>Builds /metadata from the same registry the server searches with, so it states exactly what is supported.</summary>
internal static class CapabilityStatementBuilder
{
    public static byte[] Build(string baseUrl, string version)
    {
        var cs = new CapabilityStatement
        {
            Status = PublicationStatus.Active,
            Date = DateTimeOffset.UtcNow.ToString("yyyy-MM-dd", System.Globalization.CultureInfo.InvariantCulture),
            Kind = CapabilityStatementKind.Instance,
            FhirVersion = FHIRVersion.N4_0_1,
            Format = ["application/fhir+json", "json"],
            Software = new CapabilityStatement.SoftwareComponent { Name = "Wardline", Version = version },
            Implementation = new CapabilityStatement.ImplementationComponent { Description = "Wardline protected record store", Url = baseUrl },
        };
        var rest = new CapabilityStatement.RestComponent
        {
            Mode = CapabilityStatement.RestfulCapabilityMode.Server,
            Security = new CapabilityStatement.SecurityComponent
            {
                Description = "Every request needs a bearer token (Authorization: Bearer ...). Resource bodies are encrypted at rest; " +
                    "identifying search values are kept only as keyed blind indexes, so string parameters support prefix and :exact matching but not :contains, " +
                    "and identifying dates (birthdate) support equality only.",
            },
            Documentation = Limits,
            Interaction =
            [
                new CapabilityStatement.SystemInteractionComponent { Code = CapabilityStatement.SystemRestfulInteraction.Transaction },
                new CapabilityStatement.SystemInteractionComponent { Code = CapabilityStatement.SystemRestfulInteraction.Batch },
            ],
        };
        foreach (var type in SearchParameterRegistry.ResourceTypes.Order(StringComparer.Ordinal))
        {
            // Read-only views of the audit ledger, described below, not stored types.
            if (type is "AuditEvent" or "Provenance") continue;
            var r = new CapabilityStatement.ResourceComponent
            {
                Type = type,
                Versioning = CapabilityStatement.ResourceVersionPolicy.VersionedUpdate,
                ReadHistory = true,
                UpdateCreate = true,
                ConditionalCreate = true,
                ConditionalRead = CapabilityStatement.ConditionalReadStatus.NotSupported,
                ConditionalUpdate = false,
                ConditionalDelete = CapabilityStatement.ConditionalDeleteStatus.NotSupported,
                Interaction =
                [
                    .. new[]
                    {
                        CapabilityStatement.TypeRestfulInteraction.Read, CapabilityStatement.TypeRestfulInteraction.Vread,
                        CapabilityStatement.TypeRestfulInteraction.Update, CapabilityStatement.TypeRestfulInteraction.Delete,
                        CapabilityStatement.TypeRestfulInteraction.HistoryInstance, CapabilityStatement.TypeRestfulInteraction.HistoryType,
                        CapabilityStatement.TypeRestfulInteraction.Create, CapabilityStatement.TypeRestfulInteraction.SearchType,
                    }.Select(code => new CapabilityStatement.ResourceInteractionComponent { Code = code }),
                ],
            };
            var ps = SearchParameterRegistry.For(type).Values.OrderBy(p => p.Name, StringComparer.Ordinal).ToList();
            r.SearchParam.Add(Param("_id", SearchParamType.Token, "Logical id"));
            r.SearchParam.Add(Param("_lastUpdated", SearchParamType.Date, "When the current version was stored; sortable"));
            r.SearchParam.Add(Param("_count", SearchParamType.Number,
                $"Page size: {SearchPlan.DefaultCount} by default, at most {SearchPlan.MaxCount} (a larger value is reduced to {SearchPlan.MaxCount}; the next link pages on); 0 answers the total only"));
            foreach (var p in ps)
            {
                var doc = p.Kind switch
                {
                    SearchParamKind.String => "Prefix match, accent- and case-insensitive; :exact supported",
                    SearchParamKind.Token => "system|code, code or |code; :not supported",
                    SearchParamKind.Date when p.Blind => "Equality only (YYYY, YYYY-MM, YYYY-MM-DD): stored as a keyed blind index",
                    SearchParamKind.Date => "Prefixes eq, ne, lt, gt, le, ge, sa, eb; sortable",
                    _ => "Type/id or id; a target type modifier is supported",
                };
                r.SearchParam.Add(Param(p.Name, p.Kind switch
                {
                    SearchParamKind.String => SearchParamType.String,
                    SearchParamKind.Token => SearchParamType.Token,
                    SearchParamKind.Date => SearchParamType.Date,
                    _ => SearchParamType.Reference,
                }, doc));
                if (p.Kind == SearchParamKind.Reference && p.Name is "patient" or "subject" or "encounter")
                {
                    r.SearchIncludeElement.Add(new FhirString($"{type}:{p.Name}"));
                }
            }
            foreach (var other in SearchParameterRegistry.ResourceTypes.Order(StringComparer.Ordinal))
            {
                foreach (var p in SearchParameterRegistry.For(other).Values)
                {
                    if (p.Kind == SearchParamKind.Reference && p.Name is "patient" or "subject" or "encounter" && (p.Targets?.Contains(type) ?? false))
                    {
                        r.SearchRevIncludeElement.Add(new FhirString($"{other}:{p.Name}"));
                    }
                }
            }
            rest.Resource.Add(r);
        }
        rest.Resource.Add(LedgerView("AuditEvent", "IHE BALP-shaped views of the audit ledger, one per request and patient; for privacy and security officers",
            ("patient", SearchParamType.Reference), ("agent", SearchParamType.Token), ("entity", SearchParamType.Reference), ("date", SearchParamType.Date),
            ("outcome", SearchParamType.Token), ("action", SearchParamType.Token), ("type", SearchParamType.Token)));
        rest.Resource.Add(LedgerView("Provenance", "Views of the ledger's write entries (version, who, the stored content's SHA-256); for privacy and security officers",
            ("target", SearchParamType.Reference), ("patient", SearchParamType.Reference)));
        cs.Rest.Add(rest);
        return FhirJson.Serialize(cs);
    }

    /// <summary>A read-only type served from the audit ledger: read and search, nothing that changes it.</summary>
    private static CapabilityStatement.ResourceComponent LedgerView(string type, string doc, params (string Name, SearchParamType Type)[] parameters)
    {
        var r = new CapabilityStatement.ResourceComponent
        {
            Type = type,
            Documentation = new Markdown(doc),
            Versioning = CapabilityStatement.ResourceVersionPolicy.NoVersion,
            ReadHistory = false,
            UpdateCreate = false,
            Interaction =
            [
                new CapabilityStatement.ResourceInteractionComponent { Code = CapabilityStatement.TypeRestfulInteraction.Read },
                new CapabilityStatement.ResourceInteractionComponent { Code = CapabilityStatement.TypeRestfulInteraction.SearchType },
            ],
        };
        foreach (var (name, kind) in parameters) r.SearchParam.Add(Param(name, kind, null));
        r.SearchParam.Add(Param("_count", SearchParamType.Number, $"Page size: at most {AuditTrail.MaxCount} (a larger value is refused with 400)"));
        return r;
    }

    /// <summary>
    /// The bounds of a search of the stored types (<see cref="SearchPlan"/>): no standard element states them, so the REST
    /// documentation does, and each type's _count parameter its own.
    /// </summary>
    private static string Limits => string.Create(CultureInfo.InvariantCulture,
        $"Searches of the stored resource types are bounded, so that none reaches the database's own limits: one search parameter may list at most " +
        $"{SearchPlan.MaxValuesPerParameter} values (`a,b,c`), and a search at most {SearchPlan.MaxValues} values over all its parameters. " +
        $"Beyond either, the search is refused with 400 and an OperationOutcome that names the limit (in a batch, that entry alone; in a transaction, the whole transaction). " +
        $"`_count` is {SearchPlan.DefaultCount} by default and at most {SearchPlan.MaxCount}: a larger value is reduced to {SearchPlan.MaxCount}, and the `next` link pages on. " +
        $"A history (`_history`) takes `_count` (the same bounds), `_offset` and `_since`.");

    // FHIR has no empty strings: a parameter without documentation leaves the element out.
    private static CapabilityStatement.SearchParamComponent Param(string name, SearchParamType type, string? doc) =>
        new() { Name = name, Type = type, Documentation = string.IsNullOrEmpty(doc) ? null : doc };
}
