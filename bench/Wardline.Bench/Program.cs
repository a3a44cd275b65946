using System.Diagnostics;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Options;
using Npgsql;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Records;
using Wardline.Server.Modules.Records.Storage;

// Usage: Wardline.Bench policy [WORKLOAD.json] [--policy FILE] [--rounds N]   (PolicyBenchmark.cs)
if (args is ["policy", ..])
{
    Environment.ExitCode = Wardline.Bench.PolicyBenchmark.Run(args[1..]);
    return;
}

// Usage: Wardline.Bench ledger append|profile|build|verify|proofs|hash [options]   (LedgerBenchmark.cs)
if (args is ["ledger", ..])
{
    Environment.ExitCode = await Wardline.Bench.LedgerBenchmark.RunAsync(args[1..]);
    return;
}

// Usage: Wardline.Bench monitor batch [options]   (MonitorBenchmark.cs)
//        Wardline.Bench monitor replay --data DIR [options]   (MonitorReplayBenchmark.cs)
if (args is ["monitor", ..])
{
    Environment.ExitCode = args is [_, "replay", ..]
        ? await Wardline.Bench.MonitorReplayBenchmark.RunAsync(args[2..])
        : Wardline.Bench.MonitorBenchmark.Run(args[1..]);
    return;
}

// Usage: Wardline.Bench backup generate|update [options]   (BackupStoreGenerator.cs)
if (args is ["backup", ..])
{
    Environment.ExitCode = await Wardline.Bench.BackupStoreGenerator.RunAsync(args[1..]);
    return;
}

// Usage: Wardline.Bench DIR [--db CONNSTRING] [--rounds N]
// Imports every *.json bundle in DIR through RecordImporter into a fresh store, N times (default 3).
// Round 1 is cold (includes JIT and first-touch costs); later rounds are warm. With --db each round
// gets a fresh PostgreSQL database on that server; without it, a fresh SQLite store in a temp folder.
var files = Directory.GetFiles(args[0], "*.json").Order(StringComparer.Ordinal).ToArray();
string? db = null;
var rounds = 3;
for (var a = 1; a < args.Length - 1; a++)
{
    if (args[a] == "--db") db = args[++a];
    else if (args[a] == "--rounds") rounds = int.Parse(args[++a], System.Globalization.CultureInfo.InvariantCulture);
}
var bytes = files.Select(File.ReadAllBytes).ToList();
for (var round = 0; round < rounds; round++)
{
    var dir = Directory.CreateTempSubdirectory("wl-bench-").FullName;
    var options = new WardlineOptions { DataDirectory = dir };
    string? database = null;
    if (db is not null)
    {
        database = $"wlbench_{Environment.ProcessId}_{round}";
        await using (var admin = new NpgsqlConnection(db))
        {
            await admin.OpenAsync();
            await using var create = new NpgsqlCommand($"CREATE DATABASE {database}", admin);
            await create.ExecuteNonQueryAsync();
        }
        options = new WardlineOptions
        {
            PostgresConnectionString = new NpgsqlConnectionStringBuilder(db) { Database = database }.ConnectionString,
            KeyringPath = Path.Combine(dir, "keyring.json"),
        };
    }
    var services = new ServiceCollection().AddLogging().AddSingleton(Options.Create(options)).AddStores(options).BuildServiceProvider();
    await services.GetRequiredService<RecordStore>().MigrateAsync(default);
    var importer = services.GetRequiredService<RecordImporter>();
    // JSON parsing alone, for the report; the import below overlaps it with the writes, as the CLI does.
    var t0 = Stopwatch.GetTimestamp();
    foreach (var b in bytes) FhirJson.Parse(b);
    var parse = Stopwatch.GetTimestamp() - t0;
    var sw = Stopwatch.StartNew();
    var results = await importer.ImportFilesAsync(files, null, default);
    var n = results.Sum(r => r.Resources);
    Console.WriteLine($"round {round + 1} ({(round == 0 ? "cold" : "warm")}) import: {n} resources in {sw.ElapsedMilliseconds} ms (parse {parse * 1000 / Stopwatch.Frequency} ms) = {n / sw.Elapsed.TotalSeconds:F0}/s");
    await services.DisposeAsync();
    Directory.Delete(dir, true);
    if (database is not null)
    {
        NpgsqlConnection.ClearAllPools();
        await using var admin = new NpgsqlConnection(db);
        await admin.OpenAsync();
        await using var drop = new NpgsqlCommand($"DROP DATABASE IF EXISTS {database} WITH (FORCE)", admin);
        await drop.ExecuteNonQueryAsync();
    }
}
