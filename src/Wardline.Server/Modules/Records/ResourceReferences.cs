using Hl7.Fhir.Model;
using Wardline.Server.Modules.Records.Search;

namespace Wardline.Server.Modules.Records;

internal static class ResourceReferences
{
    /// <summary>Every ResourceReference anywhere in the resource, contained resources included.</summary>
    public static IEnumerable<ResourceReference> All(Base root)
    {
        var stack = new Stack<Base>();
        stack.Push(root);
        while (stack.Count > 0)
        {
            var node = stack.Pop();
            if (node is ResourceReference rr)
            {
                yield return rr;
            }
            foreach (var (_, value) in node.EnumerateElements())
            {
                switch (value)
                {
                    case Base b:
                        stack.Push(b);
                        break;
                    case IEnumerable<Base> list:
                        foreach (var item in list) stack.Push(item);
                        break;
                }
            }
        }
    }

    /// <summary>
    /// Checks every literal reference's form. Returns the local targets (Type/id) to check for
    /// existence, and problems for malformed or unresolvable ones. <paramref name="allowUrn"/>
    /// is false outside a Bundle: a urn: reference there can never resolve.
    /// </summary>
    public static (HashSet<(string Type, string Id)> Local, List<string> Problems) Check(Resource resource, bool allowUrn)
    {
        var local = new HashSet<(string, string)>();
        var problems = new List<string>();
        foreach (var rr in All(resource))
        {
            var r = rr.Reference;
            if (string.IsNullOrEmpty(r) || r[0] == '#')
            {
                continue;
            }
            if (r.StartsWith("urn:uuid:", StringComparison.Ordinal) || r.StartsWith("urn:oid:", StringComparison.Ordinal))
            {
                if (!allowUrn) problems.Add($"{resource.TypeName}: a urn: reference can only be resolved inside a transaction or batch Bundle.");
                continue;
            }
            if (r.StartsWith("http://", StringComparison.OrdinalIgnoreCase) || r.StartsWith("https://", StringComparison.OrdinalIgnoreCase))
            {
                if (!Uri.TryCreate(r, UriKind.Absolute, out _)) problems.Add($"{resource.TypeName}: an absolute reference is not a valid URL.");
                continue;
            }
            var parts = r.Split('/');
            var ok = (parts.Length == 2 || parts.Length == 4 && parts[2] == "_history" && FhirIds.IsValid(parts[3]))
                && SearchParameterRegistry.ResourceTypes.Contains(parts[0]) && FhirIds.IsValid(parts[1]);
            if (!ok)
            {
                problems.Add($"{resource.TypeName}: a reference is not of the form Type/id (with a supported type and a valid id).");
                continue;
            }
            local.Add((parts[0], parts[1]));
        }
        return (local, problems);
    }
}
