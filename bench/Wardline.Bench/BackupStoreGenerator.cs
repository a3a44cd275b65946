using System.Diagnostics;
using System.Globalization;
using System.Text;
using System.Text.Json.Nodes;
using Hl7.Fhir.Model;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Bench;

/// <summary>
/// The store for the backup benchmark (issue 5, item 8; bench/backup.sh), written through the server's real write path:
/// <see cref="RecordService.Prepare"/> (serialize, index, access facts, per-resource data key, AES-GCM) and
/// <see cref="RecordStore.WriteAsync"/> (versions, index, facts, one ledger entry per version, group commit).
///
///   Wardline.Bench backup generate --data DIR --resources N [--synthea DIR] [--batch 2000]
///       clones the Patients, Encounters, Observations and Conditions of every Synthea bundle in --synthea with new
///       ids (references rewritten to the clones; the bundles' Practitioners and Organizations are written once and
///       shared) until the store holds N resources; writes DIR/bench-ids.txt (type/id per line) when done, and
///       skips the work if that file already lists N resources.
///   Wardline.Bench backup update --data DIR --count N [--seed S]
///       a new version of N distinct resources chosen at random from bench-ids.txt (Observations become "amended",
///       every resource gets a meta tag), written through the same path in batches; publishes a signed tree head.
/// </summary>
internal static class BackupStoreGenerator
{
    private static readonly string[] Cloned = ["Patient", "Encounter", "Observation", "Condition"];
    private static readonly string[] Shared = ["Practitioner", "Organization"];
    private const string Marker = "@@@@@@@@";

    public static async Task<int> RunAsync(string[] args)
    {
        string? Get(string name)
        {
            var i = Array.IndexOf(args, name);
            return i >= 0 && i + 1 < args.Length ? args[i + 1] : null;
        }
        int Int(string name, int fallback) => Get(name) is { } v ? int.Parse(v, CultureInfo.InvariantCulture) : fallback;
        var data = Get("--data");
        if (args.Length == 0 || data is null)
        {
            Console.Error.WriteLine("usage: Wardline.Bench backup generate --data DIR --resources N [--synthea DIR] | update --data DIR --count N [--seed S] | profile-backup|profile-run --data DIR --target URI [--full] | profile-restore --data DIR --from URI --to DIR");
            return 2;
        }
        switch (args[0])
        {
            case "profile-backup" or "profile-restore" or "profile-run":
                return await BackupProfile.RunAsync(args);
            case "generate":
                await GenerateAsync(data, Int("--resources", 1_000_000), Get("--synthea") ?? "/work/shared/data/synthea", Int("--batch", 2000));
                return 0;
            case "update":
                await UpdateAsync(data, Int("--count", 10_000), Int("--seed", 1), Int("--batch", 2000));
                return 0;
            default:
                Console.Error.WriteLine($"unknown step '{args[0]}'");
                return 2;
        }
    }

    private static ServiceProvider Open(string data)
    {
        var options = new WardlineOptions { DataDirectory = data };
        return new ServiceCollection().AddLogging().AddSingleton(Options.Create(options)).AddStores(options).BuildServiceProvider();
    }

    private static readonly LedgerActor Actor = new("bench-generator", null, null, "bench");

    /// <summary>One resource of a bundle as a JSON template: references point at stored ids, and the first 8
    /// characters of every cloned id (its own and those it references) are <see cref="Marker"/>.</summary>
    private sealed record Template(string Type, string Id, string Json);

    private static async System.Threading.Tasks.Task GenerateAsync(string data, int target, string synthea, int batchSize)
    {
        var idsFile = Path.Combine(data, "bench-ids.txt");
        if (File.Exists(idsFile) && File.ReadLines(idsFile).Count() >= target)
        {
            Console.WriteLine($"store in {data} already holds {target:N0} generated resources (bench-ids.txt); nothing to do");
            return;
        }
        if (File.Exists(Path.Combine(data, "wardline.db")))
            throw new InvalidOperationException($"{data} holds a store without a complete bench-ids.txt (an interrupted run?); delete the folder and run again");
        var (bundles, shared) = LoadTemplates(synthea);
        Console.WriteLine($"templates: {bundles.Count} bundles, {bundles.Sum(b => b.Count):N0} resources to clone per round, {shared.Count} shared Practitioners/Organizations");

        await using var sp = Open(data);
        var store = sp.GetRequiredService<RecordStore>();
        await store.MigrateAsync(default);
        var records = sp.GetRequiredService<RecordService>();
        var clock = Stopwatch.StartNew();
        long prepareTicks = 0, writeTicks = 0;
        var written = 0;
        var counts = new Dictionary<string, int>(StringComparer.Ordinal);
        await using var ids = new StreamWriter(idsFile + ".partial", false, new UTF8Encoding(false));

        // The resources in write order: shared ones first, then round k of every bundle's clones.
        IEnumerable<(string Type, string Id, string Json)> Source()
        {
            foreach (var s in shared) yield return (s.Type, s.Id, s.Json);
            for (var k = 1; ; k++)
            {
                var prefix = k.ToString("x8", CultureInfo.InvariantCulture);
                foreach (var bundle in bundles)
                    foreach (var t in bundle)
                        yield return (t.Type, prefix + t.Id[Marker.Length..], t.Json.Replace(Marker, prefix, StringComparison.Ordinal));
            }
        }

        System.Threading.Tasks.Task? pending = null;
        foreach (var chunk in Source().Take(target).Chunk(batchSize))
        {
            var t0 = Stopwatch.GetTimestamp();
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var writes = new PendingWrite[chunk.Length];
            // Serialize, index and encrypt on both cores while the previous batch commits.
            Parallel.For(0, chunk.Length, i =>
            {
                var (type, id, json) = chunk[i];
                var resource = FhirJson.Parse(Encoding.UTF8.GetBytes(json)).Resource
                    ?? throw new InvalidOperationException($"template {type}/{id} does not parse");
                writes[i] = records.Prepare(type, id, resource, null, now).Pending;
            });
            prepareTicks += Stopwatch.GetTimestamp() - t0;
            var t1 = Stopwatch.GetTimestamp();
            if (pending is not null) await pending;
            writeTicks += Stopwatch.GetTimestamp() - t1;
            pending = WriteAsync(store, writes);
            foreach (var (type, id, _) in chunk)
            {
                await ids.WriteLineAsync($"{type}/{id}");
                counts[type] = counts.GetValueOrDefault(type) + 1;
            }
            written += chunk.Length;
            if (written % 50_000 < batchSize)
                Console.WriteLine($"  {written:N0} resources, {clock.Elapsed.TotalSeconds:F0} s ({written / clock.Elapsed.TotalSeconds:F0}/s)");
        }
        var t2 = Stopwatch.GetTimestamp();
        if (pending is not null) await pending;
        writeTicks += Stopwatch.GetTimestamp() - t2;
        await ids.FlushAsync();
        var head = await sp.GetRequiredService<TreeHeads>().PublishAsync(force: false, default);
        await ids.DisposeAsync();
        File.Move(idsFile + ".partial", idsFile, overwrite: true);
        var s = clock.Elapsed.TotalSeconds;
        Console.WriteLine($"generated {written:N0} resources ({string.Join(", ", counts.OrderByDescending(c => c.Value).Select(c => $"{c.Key} {c.Value:N0}"))}) in {s:F1} s = {written / s:F0}/s");
        Console.WriteLine(FormattableString.Invariant(
            $"  prepare (parse+serialize+index+facts+encrypt, 2 threads) {prepareTicks * 1.0 / Stopwatch.Frequency:F1} s, waiting for the writer {writeTicks * 1.0 / Stopwatch.Frequency:F1} s; signed head at {head?.Size.ToString(CultureInfo.InvariantCulture) ?? "(unchanged)"}"));
        Console.WriteLine(FormattableString.Invariant($"WL generate.resources={written} generate.seconds={s:F1}"));
    }

    private static async System.Threading.Tasks.Task WriteAsync(RecordStore store, PendingWrite[] writes)
    {
        var result = await store.WriteAsync(writes, Actor, default);
        if (result.Status != WriteStatus.Committed) throw new InvalidOperationException("a generated batch conflicted with the store (ids reused?)");
    }

    /// <summary>Every bundle's resources of the cloned types, as templates, and the shared resources, once each.</summary>
    private static (List<List<Template>> Bundles, List<Template> Shared) LoadTemplates(string synthea)
    {
        var bundles = new List<List<Template>>();
        var shared = new Dictionary<string, Template>(StringComparer.Ordinal);
        foreach (var file in Directory.GetFiles(synthea, "*.json").Order(StringComparer.Ordinal))
        {
            var bundle = JsonNode.Parse(File.ReadAllBytes(file))!.AsObject();
            var entries = bundle["entry"]!.AsArray().Select(e => e!["resource"]!.AsObject()).ToList();
            var typeOf = entries.ToDictionary(r => (string)r["id"]!, r => (string)r["resourceType"]!, StringComparer.Ordinal);
            var cloned = typeOf.Where(p => Cloned.Contains(p.Value)).Select(p => p.Key).ToHashSet(StringComparer.Ordinal);
            var kept = new HashSet<string>(cloned.Concat(typeOf.Where(p => Shared.Contains(p.Value)).Select(p => p.Key)), StringComparer.Ordinal);
            var list = new List<Template>();
            foreach (var r in entries)
            {
                var type = (string)r["resourceType"]!;
                if (!Cloned.Contains(type) && !Shared.Contains(type)) continue;
                var id = (string)r["id"]!;
                if (!RewriteReferences(r, typeOf, kept)) continue;
                var json = r.ToJsonString();
                if (Shared.Contains(type))
                {
                    shared.TryAdd(type + "/" + id, new Template(type, id, json));
                    continue;
                }
                foreach (var c in cloned) json = json.Replace(c, Marker + c[Marker.Length..], StringComparison.Ordinal);
                list.Add(new Template(type, Marker + id[Marker.Length..], json));
            }
            bundles.Add(list);
        }
        return (bundles, [.. shared.Values]);
    }

    /// <summary>Turns <c>urn:uuid:X</c> into <c>Type/X</c>; drops a reference to a resource that is not written
    /// (a Claim, say). False if the resource itself cannot keep its meaning (never, for the kept types).</summary>
    private static bool RewriteReferences(JsonNode node, Dictionary<string, string> typeOf, HashSet<string> kept)
    {
        switch (node)
        {
            case JsonObject o:
                if (o["reference"] is JsonValue v && v.TryGetValue<string>(out var reference) && reference.StartsWith("urn:uuid:", StringComparison.Ordinal))
                {
                    var id = reference["urn:uuid:".Length..];
                    if (kept.Contains(id)) o["reference"] = typeOf[id] + "/" + id;
                    else o.Remove("reference");
                }
                foreach (var (_, child) in o.ToList())
                    if (child is not null) RewriteReferences(child, typeOf, kept);
                return true;
            case JsonArray a:
                foreach (var child in a.ToList())
                    if (child is not null) RewriteReferences(child, typeOf, kept);
                return true;
            default:
                return true;
        }
    }

    private static async System.Threading.Tasks.Task UpdateAsync(string data, int count, int seed, int batchSize)
    {
        var idsFile = Path.Combine(data, "bench-ids.txt");
        if (!File.Exists(idsFile)) throw new InvalidOperationException($"{idsFile} is missing: run `backup generate` first");
        var all = File.ReadAllLines(idsFile).Where(l => l.StartsWith("Patient/", StringComparison.Ordinal) || l.StartsWith("Encounter/", StringComparison.Ordinal)
            || l.StartsWith("Observation/", StringComparison.Ordinal) || l.StartsWith("Condition/", StringComparison.Ordinal)).ToArray();
        var random = new Random(seed);
        var chosen = new HashSet<string>(StringComparer.Ordinal);
        while (chosen.Count < Math.Min(count, all.Length)) chosen.Add(all[random.Next(all.Length)]);
        var keys = chosen.Select(k => (k[..k.IndexOf('/', StringComparison.Ordinal)], k[(k.IndexOf('/', StringComparison.Ordinal) + 1)..])).ToList();

        await using var sp = Open(data);
        var store = sp.GetRequiredService<RecordStore>();
        await store.MigrateAsync(default);
        var records = sp.GetRequiredService<RecordService>();
        var recordKeys = sp.GetRequiredService<RecordKeys>();
        var clock = Stopwatch.StartNew();
        long readTicks = 0, prepareTicks = 0, writeTicks = 0;
        var tag = new Coding("urn:wardline:bench", "updated-" + seed.ToString(CultureInfo.InvariantCulture));
        foreach (var chunk in keys.Chunk(batchSize))
        {
            var t0 = Stopwatch.GetTimestamp();
            var current = new Dictionary<(string Type, string Id), StoredVersion>();
            foreach (var part in chunk.Chunk(500))
                foreach (var (k, v) in await store.ReadCurrentManyAsync(part, default)) current[k] = v;
            var t1 = Stopwatch.GetTimestamp();
            readTicks += t1 - t0;
            var now = DateTimeOffset.UtcNow.ToUnixTimeMilliseconds();
            var writes = new PendingWrite[chunk.Length];
            Parallel.For(0, chunk.Length, i =>
            {
                var v = current[chunk[i]];
                var resource = FhirJson.Parse(recordKeys.Open(v)!).Resource!;
                if (resource is Observation o) o.Status = ObservationStatus.Amended;
                resource.Meta ??= new Meta();
                resource.Meta.Tag.Add(tag);
                writes[i] = records.Prepare(v.Type, v.Id, resource, v, now).Pending;
            });
            var t2 = Stopwatch.GetTimestamp();
            prepareTicks += t2 - t1;
            await WriteAsync(store, writes);
            writeTicks += Stopwatch.GetTimestamp() - t2;
        }
        var head = await sp.GetRequiredService<TreeHeads>().PublishAsync(force: false, default);
        var s = clock.Elapsed.TotalSeconds;
        double Sec(long ticks) => ticks * 1.0 / Stopwatch.Frequency;
        Console.WriteLine(FormattableString.Invariant(
            $"updated {keys.Count:N0} resources (seed {seed}) in {s:F1} s = {keys.Count / s:F0}/s: read {Sec(readTicks):F1} s, prepare {Sec(prepareTicks):F1} s, write {Sec(writeTicks):F1} s; signed head at {head?.Size.ToString(CultureInfo.InvariantCulture) ?? "(unchanged)"}"));
        Console.WriteLine(FormattableString.Invariant($"WL update.resources={keys.Count} update.seconds={s:F1}"));
    }
}
