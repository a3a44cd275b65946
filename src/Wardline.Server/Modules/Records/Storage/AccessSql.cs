using System.Text;
using Wardline.Policy;
using Wardline.Server.Modules.Access.Facts;

namespace Wardline.Server.Modules.Records.Storage;

/// <summary>Who is searching, as the SQL translation of a policy residual needs them: identifiers only.</summary>
/// <param name="CareSince">Care relations that ended before this (unix s) no longer count.</param>
/// <remarks>Departments, break-glass patients and the own-record user come in the residual's atoms themselves; care
/// relations are read fresh in the query rather than passed as a (possibly long) list.</remarks>
internal sealed record AccessSqlSubject(string? Practitioner, long CareSince);

/// <summary>A WHERE fragment over the aliases <c>r</c> (resources), <c>f</c> (its access_facts) and <c>p</c> (its patient's access_facts), with its parameters.</summary>
internal sealed record AccessFilter(string Sql, IReadOnlyList<(string Name, object Value)> Parameters)
{
    public const string Joins =
        " LEFT JOIN access_facts f ON f.rid = r.rid" +
        " LEFT JOIN resources pr ON pr.res_type = 'Patient' AND pr.res_id = f.patient" +
        " LEFT JOIN access_facts p ON p.rid = pr.rid ";
}

/// <summary>
/// Turns the policy's residual for a search into SQL, so the policy is applied in the query: pages,
/// totals and counts only ever see permitted resources. Every atom yields TRUE or FALSE, never NULL,
/// so NOT means what it says. Its meaning must match <see cref="Access.Facts.FactsResolver"/>, which
/// builds the same facts for single-resource decisions; the access matrix tests hold both to the
/// same answers.
/// </summary>
internal static class AccessSql
{
    public static AccessFilter Build(Residual residual, AccessSqlSubject subject)
    {
        var parameters = new List<(string, object)>();
        var sb = new StringBuilder();
        Append(sb, residual, subject, parameters);
        return new AccessFilter(sb.ToString(), parameters);
    }

    private static void Append(StringBuilder sb, Residual node, AccessSqlSubject s, List<(string, object)> ps)
    {
        string P(object value)
        {
            var name = "@a" + ps.Count;
            ps.Add((name, value));
            return name;
        }
        string List(IEnumerable<string> values) => string.Join(", ", values.Select(v => P(v)));

        switch (node)
        {
            case Residual.Constant c:
                sb.Append(c.Value ? "1 = 1" : "1 = 0");
                break;
            case Residual.Not n:
                sb.Append("NOT (");
                Append(sb, n.Operand, s, ps);
                sb.Append(')');
                break;
            case Residual.And a:
                Join(sb, a.Operands, " AND ", s, ps);
                break;
            case Residual.Or o:
                Join(sb, o.Operands, " OR ", s, ps);
                break;
            case Residual.Atom atom:
                switch (atom.Kind)
                {
                    case AtomKind.InSubjectDepartment or AtomKind.BreakGlass or AtomKind.OwnRecord or AtomKind.HasLabel or AtomKind.StatusIn when atom.Values.Count == 0:
                        sb.Append("1 = 0");
                        break;
                    case AtomKind.InSubjectDepartment:
                        // Own department; else the encounter's; else (no encounter) any department treating the patient, by
                        // resources that are not deleted (a deleted one keeps its facts, for judging a write that brings it back).
                        var d = List(atom.Values);
                        sb.Append("((f.department IS NOT NULL AND f.department IN (").Append(d).Append("))")
                          .Append(" OR (f.department IS NULL AND f.encounter IS NOT NULL AND EXISTS (SELECT 1 FROM resources er JOIN access_facts ef ON ef.rid = er.rid")
                          .Append(" WHERE er.res_type = 'Encounter' AND er.res_id = f.encounter AND ef.department IN (").Append(d).Append(")))")
                          .Append(" OR (f.department IS NULL AND f.encounter IS NULL AND f.patient IS NOT NULL AND EXISTS (SELECT 1 FROM access_facts pd JOIN resources pdr ON pdr.rid = pd.rid")
                          .Append(" WHERE pdr.deleted = 0 AND pd.patient = f.patient AND pd.department IN (").Append(d).Append("))))");
                        break;
                    case AtomKind.OnCareTeam when s.Practitioner is null:
                        sb.Append("1 = 0");
                        break;
                    case AtomKind.OnCareTeam:
                        // Relations of resources that are not deleted: deleting an encounter or care team ends what it granted.
                        sb.Append("(f.patient IS NOT NULL AND f.patient IN (SELECT cr.patient FROM care_relations cr JOIN resources crr ON crr.rid = cr.rid WHERE crr.deleted = 0 AND cr.practitioner = ")
                          .Append(P(s.Practitioner)).Append(" AND cr.kind IN ").Append(CareRelation.CaringKindsSql)
                          .Append(" AND (cr.until_at IS NULL OR cr.until_at > ").Append(P(s.CareSince)).Append(")))");
                        break;
                    case AtomKind.BreakGlass:
                        sb.Append("(f.patient IS NOT NULL AND f.patient IN (").Append(List(atom.Values)).Append("))");
                        break;
                    case AtomKind.PatientRestricted:
                        sb.Append("(COALESCE(p.restricted, 0) = 1)");
                        break;
                    case AtomKind.ResearchConsent:
                        sb.Append("(COALESCE(p.research_consent, 0) = 1)");
                        break;
                    case AtomKind.OwnRecord:
                        sb.Append("(COALESCE(p.staff_user, '') IN (").Append(List(atom.Values)).Append("))");
                        break;
                    case AtomKind.HasPatient:
                        sb.Append("(f.patient IS NOT NULL)");
                        break;
                    case AtomKind.HasLabel:
                        sb.Append('(').AppendJoin(" OR ", atom.Values.Select(v => "COALESCE(f.labels, '') LIKE " + P("%|" + v + "|%"))).Append(')');
                        break;
                    case AtomKind.StatusIn:
                        sb.Append("(COALESCE(f.status, '') IN (").Append(List(atom.Values)).Append("))");
                        break;
                    default:
                        throw new InvalidOperationException($"No SQL for policy atom {atom.Kind}.");
                }
                break;
            default:
                throw new InvalidOperationException($"Unknown residual node {node.GetType().Name}.");
        }
    }

    private static void Join(StringBuilder sb, IReadOnlyList<Residual> operands, string op, AccessSqlSubject s, List<(string, object)> ps)
    {
        sb.Append('(');
        for (var i = 0; i < operands.Count; i++)
        {
            if (i > 0) sb.Append(op);
            Append(sb, operands[i], s, ps);
        }
        sb.Append(')');
    }
}
