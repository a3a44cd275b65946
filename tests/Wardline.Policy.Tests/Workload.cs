using System.IO.Compression;
using System.Security.Cryptography;
using System.Text.Json;

namespace Wardline.Policy.Tests;

/// <summary>One request of the workload with the reference engine's answer.</summary>
internal sealed record WorkloadRequest(int Index, string UserId, Subject Subject, PolicyAction Action, ResourceFacts Resource, RequestContext Context, bool Expected);

/// <summary>
/// The policy-workload benchmark (TestData/policy-workload): users become <see cref="Subject"/>s, records
/// <see cref="ResourceFacts"/>, and each request carries its own subject when it holds a break-glass grant
/// (the record's patient until bgExpires). Loaded once per test run.
/// </summary>
internal sealed class Workload
{
    private static readonly Lazy<Workload> Shared = new(Load);

    private Workload(Policy policy, IReadOnlyList<WorkloadRequest> requests)
    {
        Policy = policy;
        Requests = requests;
    }

    public static Workload Instance => Shared.Value;

    public static string DataDirectory => Path.Combine(AppContext.BaseDirectory, "TestData", "policy-workload");

    public Policy Policy { get; }

    public IReadOnlyList<WorkloadRequest> Requests { get; }

    private static Workload Load()
    {
        var policy = Policy.Load(Path.Combine(DataDirectory, "workload-policy.yaml"));
        byte[] json;
        using (var gz = new GZipStream(File.OpenRead(Path.Combine(DataDirectory, "workload.json.gz")), CompressionMode.Decompress))
        using (var buffer = new MemoryStream())
        {
            gz.CopyTo(buffer);
            json = buffer.ToArray();
        }
        if (Convert.ToHexStringLower(SHA256.HashData(json)) != "6910e4307f8249db749add8d5ae87ea17bdc41a87b1bb49ccca79b8de318e7a7")
        {
            throw new InvalidDataException("workload.json.gz does not hold the workload named in SOURCES.md");
        }
        using var doc = JsonDocument.Parse(json);
        var root = doc.RootElement;

        var users = new Dictionary<string, Subject>(StringComparer.Ordinal);
        var patients = new Dictionary<string, PatientFacts>(StringComparer.Ordinal);
        var records = new Dictionary<string, ResourceFacts>(StringComparer.Ordinal);
        var entities = root.GetProperty("entities").EnumerateArray().ToList();
        foreach (var e in entities.Where(e => Type(e) == "User"))
        {
            var a = e.GetProperty("attrs");
            var parents = e.GetProperty("parents").EnumerateArray().ToList();
            users.Add(Id(e), new Subject(
                Id(e),
                [a.GetProperty("role").GetString()!],
                a.GetProperty("tier").GetInt32(),
                [.. parents.Where(p => p.GetProperty("type").GetString() == "Department").Select(p => p.GetProperty("id").GetString()!)],
                [.. a.GetProperty("treats").EnumerateArray().Select(t => t.GetString()!)],
                a.GetProperty("active").GetBoolean(),
                a.GetProperty("accountExpires").GetInt64(),
                new ShiftWindow(a.GetProperty("shiftStart").GetInt32(), a.GetProperty("shiftEnd").GetInt32()),
                parents.Where(p => p.GetProperty("type").GetString() == "CareTeam").Select(p => p.GetProperty("id").GetString()!).ToHashSet(StringComparer.Ordinal),
                new Dictionary<string, long>()));
        }
        foreach (var e in entities.Where(e => Type(e) == "Patient"))
        {
            var a = e.GetProperty("attrs");
            var staff = a.TryGetProperty("staffAccount", out var s) ? s.GetProperty("__entity").GetProperty("id").GetString() : null;
            patients.Add(Id(e), new PatientFacts(Id(e), a.GetProperty("restricted").GetBoolean(), a.GetProperty("researchConsent").GetBoolean(), staff));
        }
        foreach (var e in entities.Where(e => Type(e) == "Record"))
        {
            var a = e.GetProperty("attrs");
            records.Add(Id(e), new ResourceFacts(
                a.GetProperty("kind").GetString()!,
                Id(e),
                [a.GetProperty("department").GetProperty("__entity").GetProperty("id").GetString()!],
                [.. a.GetProperty("labels").EnumerateArray().Select(l => l.GetString()!)],
                null,
                patients[a.GetProperty("patient").GetProperty("__entity").GetProperty("id").GetString()!]));
        }

        var requests = new List<WorkloadRequest>();
        var index = 0;
        foreach (var r in root.GetProperty("requests").EnumerateArray())
        {
            var userId = r[0].GetString()!;
            var user = users[userId];
            var resource = records[r[2].GetString()!];
            var bgExpires = r[7].GetInt64();
            var subject = bgExpires > 0 ? WithGrant(user, resource.Patient!.Id, bgExpires) : user;
            var action = r[1].GetString() switch
            {
                "read" => PolicyAction.Read,
                "search" => PolicyAction.Search,
                "update" => PolicyAction.Update,
                var other => throw new InvalidDataException($"unknown action {other}"),
            };
            var context = new RequestContext(r[3].GetString()!, r[6].GetInt64(), r[4].GetInt32(), r[5].GetInt32(), r[8].GetBoolean(), r[9].GetString()!);
            requests.Add(new WorkloadRequest(index++, userId, subject, action, resource, context, r[10].GetString() == "allow"));
        }
        return new Workload(policy, requests);
    }

    private static Subject WithGrant(Subject user, string patientId, long until) =>
        new(user.Id, user.Roles, user.Tier, user.Departments, user.Treats, user.Active, user.AccountExpires, user.Shift,
            user.CareTeamPatients, new Dictionary<string, long>(StringComparer.Ordinal) { [patientId] = until });

    private static string Type(JsonElement e) => e.GetProperty("uid").GetProperty("type").GetString()!;

    private static string Id(JsonElement e) => e.GetProperty("uid").GetProperty("id").GetString()!;
}
