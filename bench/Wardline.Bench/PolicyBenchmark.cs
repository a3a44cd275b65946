using System.Diagnostics;
using System.Globalization;
using System.IO.Compression;
using System.Runtime;
using System.Text.Json;
using Wardline.Policy;

namespace Wardline.Bench;

/// <summary>
/// The policy-workload benchmark (issue 3): the 51 workload rules in Wardline's format
/// (tests/Wardline.Policy.Tests/TestData/policy-workload/workload-policy.yaml) decide the workload's
/// 100,000 requests on one thread. Entities and per-request subjects are built before timing; 10,000
/// warm-up decisions; then each decision is timed alone with <see cref="Stopwatch.GetTimestamp"/>.
///
///   Wardline.Bench policy [WORKLOAD.json[.gz]] [--policy POLICY.yaml] [--rounds N]
/// </summary>
internal static class PolicyBenchmark
{
    private const string DefaultWorkload = "/work/shared/data/policy-workload/workload.json";
    private const int WarmUp = 10_000;

    private sealed record Request(Subject Subject, PolicyAction Action, ResourceFacts Resource, RequestContext Context, bool Expected);

    public static int Run(string[] args)
    {
        var workloadPath = DefaultWorkload;
        string? policyPath = null;
        var rounds = 3;
        for (var i = 0; i < args.Length; i++)
        {
            if (args[i] == "--policy") policyPath = args[++i];
            else if (args[i] == "--rounds") rounds = int.Parse(args[++i], CultureInfo.InvariantCulture);
            else workloadPath = args[i];
        }
        policyPath ??= Path.Combine(RepositoryRoot(), "tests", "Wardline.Policy.Tests", "TestData", "policy-workload", "workload-policy.yaml");

        var loadStarted = Stopwatch.GetTimestamp();
        var policy = Policy.Policy.Load(policyPath);
        var requests = LoadRequests(workloadPath);
        Console.WriteLine($"policy {policyPath} ({policy.Rules.Count} rules, digest {policy.Digest[..12]}), workload {workloadPath}: {requests.Length:N0} requests, loaded in {Stopwatch.GetElapsedTime(loadStarted).TotalSeconds:F1} s");

        var overhead = TimerOverhead();
        Console.WriteLine($"runtime {Environment.Version}, {Environment.ProcessorCount} cores, server GC {GCSettings.IsServerGC}; Stopwatch {Stopwatch.Frequency:N0} ticks/s, an empty timed interval measures {Micro(overhead.Median):F3} us (median; included below)");

        for (var i = 0; i < WarmUp; i++)
        {
            var r = requests[i % requests.Length];
            policy.Decide(r.Subject, r.Action, r.Resource, r.Context);
        }

        var ticks = new long[requests.Length];
        for (var round = 1; round <= rounds; round++)
        {
            var agree = 0;
            var allocated = GC.GetAllocatedBytesForCurrentThread();
            for (var i = 0; i < requests.Length; i++)
            {
                var r = requests[i];
                var start = Stopwatch.GetTimestamp();
                var decision = policy.Decide(r.Subject, r.Action, r.Resource, r.Context);
                ticks[i] = Stopwatch.GetTimestamp() - start;
                if (decision.Permitted == r.Expected) agree++;
            }
            allocated = GC.GetAllocatedBytesForCurrentThread() - allocated;

            // Throughput without the per-call timer: the same 100,000 decisions back to back.
            var bulkStart = Stopwatch.GetTimestamp();
            var permitted = 0;
            foreach (var r in requests)
            {
                if (policy.Decide(r.Subject, r.Action, r.Resource, r.Context).Permitted) permitted++;
            }
            var bulk = Stopwatch.GetElapsedTime(bulkStart);

            Array.Sort(ticks);
            Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
                $"round {round}{(round == 1 ? " (after 10,000 warm-up calls)" : "")}: median {Micro(ticks[ticks.Length / 2]):F3} us, p90 {Micro(Percentile(ticks, 0.90)):F3} us, p99 {Micro(Percentile(ticks, 0.99)):F3} us, p99.9 {Micro(Percentile(ticks, 0.999)):F3} us, max {Micro(ticks[^1]):F1} us; " +
                $"timed loop {requests.Length / (ticks.Sum() / (double)Stopwatch.Frequency):N0} decisions/s, untimed loop {requests.Length / bulk.TotalSeconds:N0} decisions/s; " +
                $"agreement {agree:N0}/{requests.Length:N0} ({100.0 * agree / requests.Length:F3}%); allocated {allocated:N0} bytes; permitted {permitted:N0}"));
        }

        // The same decisions over a working set of 64 requests, which stays in the CPU's caches: the
        // difference to the rounds above is the cost of fetching a request's objects from memory.
        for (var i = 0; i < requests.Length; i++)
        {
            var r = requests[i % 64];
            var start = Stopwatch.GetTimestamp();
            policy.Decide(r.Subject, r.Action, r.Resource, r.Context);
            ticks[i] = Stopwatch.GetTimestamp() - start;
        }
        Array.Sort(ticks);
        Console.WriteLine(string.Create(CultureInfo.InvariantCulture,
            $"cache-hot (64 requests cycled): median {Micro(ticks[ticks.Length / 2]):F3} us, p99 {Micro(Percentile(ticks, 0.99)):F3} us"));
        return 0;
    }

    private static List<Request> ParseRequests(JsonElement root)
    {
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
                [.. ParentIds(parents, "Department")],
                [.. a.GetProperty("treats").EnumerateArray().Select(t => t.GetString()!)],
                a.GetProperty("active").GetBoolean(),
                a.GetProperty("accountExpires").GetInt64(),
                new ShiftWindow(a.GetProperty("shiftStart").GetInt32(), a.GetProperty("shiftEnd").GetInt32()),
                ParentIds(parents, "CareTeam").ToHashSet(StringComparer.Ordinal),
                new Dictionary<string, long>(StringComparer.Ordinal)));
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

        var requests = new List<Request>();
        foreach (var r in root.GetProperty("requests").EnumerateArray())
        {
            var user = users[r[0].GetString()!];
            var resource = records[r[2].GetString()!];
            var bgExpires = r[7].GetInt64();
            // A break-glass grant belongs to one request: {record's patient -> bgExpires}.
            var subject = bgExpires > 0
                ? new Subject(user.Id, user.Roles, user.Tier, user.Departments, user.Treats, user.Active, user.AccountExpires, user.Shift,
                    user.CareTeamPatients, new Dictionary<string, long>(StringComparer.Ordinal) { [resource.Patient!.Id] = bgExpires })
                : user;
            var action = r[1].GetString() switch
            {
                "read" => PolicyAction.Read,
                "search" => PolicyAction.Search,
                "update" => PolicyAction.Update,
                var other => throw new InvalidDataException($"unknown action {other}"),
            };
            var context = new RequestContext(r[3].GetString()!, r[6].GetInt64(), r[4].GetInt32(), r[5].GetInt32(), r[8].GetBoolean(), r[9].GetString()!);
            requests.Add(new Request(subject, action, resource, context, r[10].GetString() == "allow"));
        }
        return requests;
    }

    private static Request[] LoadRequests(string path)
    {
        using var file = File.OpenRead(path);
        using Stream stream = path.EndsWith(".gz", StringComparison.Ordinal) ? new GZipStream(file, CompressionMode.Decompress) : file;
        using var doc = JsonDocument.Parse(stream);
        return [.. ParseRequests(doc.RootElement)];
    }

    private static IEnumerable<string> ParentIds(List<JsonElement> parents, string type) =>
        parents.Where(p => p.GetProperty("type").GetString() == type).Select(p => p.GetProperty("id").GetString()!);

    private static string Type(JsonElement e) => e.GetProperty("uid").GetProperty("type").GetString()!;

    private static string Id(JsonElement e) => e.GetProperty("uid").GetProperty("id").GetString()!;

    /// <summary>What the timer itself adds to one timed interval.</summary>
    private static (long Median, long P99) TimerOverhead()
    {
        var empty = new long[100_000];
        for (var i = 0; i < empty.Length; i++)
        {
            var start = Stopwatch.GetTimestamp();
            empty[i] = Stopwatch.GetTimestamp() - start;
        }
        Array.Sort(empty);
        return (empty[empty.Length / 2], Percentile(empty, 0.99));
    }

    private static long Percentile(long[] sorted, double p) => sorted[Math.Min(sorted.Length - 1, (int)(sorted.Length * p))];

    private static double Micro(long ticks) => ticks * 1_000_000.0 / Stopwatch.Frequency;

    private static string RepositoryRoot()
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            if (File.Exists(Path.Combine(dir.FullName, "Wardline.slnx"))) return dir.FullName;
        }
        return Directory.GetCurrentDirectory();
    }
}
