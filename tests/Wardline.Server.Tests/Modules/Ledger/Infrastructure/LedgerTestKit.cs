using System.Data.Common;
using System.Net.Http.Headers;
using System.Text.Json.Nodes;
using Microsoft.Data.Sqlite;
using Npgsql;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Tests.EndToEnd;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Ledger.Infrastructure;

/// <summary>What the ledger tests share: direct SQL on a store (as a database administrator would), the ledger CLI, the witness files.</summary>
internal static class LedgerTestKit
{
    /// <summary>The records a tamper test starts from: a patient, two conditions, the first updated once.</summary>
    internal sealed record Seeded(string Patient, string Updated, string Other);

    public static string SqliteFile(WardlineOptions o) => Path.Combine(o.DataDirectory!, "wardline.db");

    public static string WitnessFolder(WardlineOptions o) => o.Ledger.WitnessPath ?? Path.Combine(o.DataDirectory!, "witness");

    /// <summary>A connection straight to the database, outside Wardline (no pooling, so files can be copied after).</summary>
    public static async Task<DbConnection> OpenAsync(WardlineOptions o)
    {
        DbConnection c = o.PostgresConnectionString is { } cs
            ? new NpgsqlConnection(new NpgsqlConnectionStringBuilder(cs) { Pooling = false }.ConnectionString)
            : new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = SqliteFile(o), Pooling = false, DefaultTimeout = 30 }.ConnectionString);
        await c.OpenAsync();
        return c;
    }

    public static async Task<int> ExecAsync(WardlineOptions o, string sql, params (string Name, object Value)[] parameters)
    {
        await using var c = await OpenAsync(o);
        await using var cmd = Command(c, sql, parameters);
        return await cmd.ExecuteNonQueryAsync();
    }

    public static async Task<object?> ScalarAsync(WardlineOptions o, string sql, params (string Name, object Value)[] parameters)
    {
        await using var c = await OpenAsync(o);
        await using var cmd = Command(c, sql, parameters);
        var v = await cmd.ExecuteScalarAsync();
        return v is DBNull ? null : v;
    }

    /// <summary>Every row of a query, read on one connection.</summary>
    public static async Task<List<T>> QueryAsync<T>(WardlineOptions o, string sql, Func<DbDataReader, T> row)
    {
        await using var c = await OpenAsync(o);
        await using var cmd = Command(c, sql, []);
        await using var r = await cmd.ExecuteReaderAsync();
        var rows = new List<T>();
        while (await r.ReadAsync()) rows.Add(row(r));
        return rows;
    }

    public static async Task<long> CountAsync(WardlineOptions o, string sql, params (string Name, object Value)[] parameters) =>
        Convert.ToInt64(await ScalarAsync(o, sql, parameters), System.Globalization.CultureInfo.InvariantCulture);

    private static DbCommand Command(DbConnection c, string sql, (string Name, object Value)[] parameters)
    {
        var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        foreach (var (name, value) in parameters)
        {
            var p = cmd.CreateParameter();
            p.ParameterName = name;
            p.Value = value;
            cmd.Parameters.Add(p);
        }
        return cmd;
    }

    /// <summary>Drops the trigger that keeps resource versions immutable, as an administrator bent on changing one would.</summary>
    public static async Task DropVersionTriggersAsync(WardlineOptions o)
    {
        if (o.PostgresConnectionString is null)
        {
            await ExecAsync(o, "DROP TRIGGER resource_versions_no_update");
            await ExecAsync(o, "DROP TRIGGER resource_versions_no_delete");
        }
        else
        {
            await ExecAsync(o, "DROP TRIGGER resource_versions_no_change ON resource_versions");
        }
    }

    /// <summary>The store arguments of a `wardline` command on this store.</summary>
    public static string[] StoreArgs(WardlineOptions o) => o.PostgresConnectionString is { } cs
        ? ["--db", cs, "--keyring", o.KeyringPath!, "--witness", WitnessFolder(o)]
        : ["--data", o.DataDirectory!];

    /// <summary>Runs the real `wardline ledger verify`.</summary>
    public static Task<CliResult> VerifyAsync(WardlineOptions o) => WardlineCli.RunAsync(["ledger", "verify", .. StoreArgs(o)]);

    /// <summary>The witness's files, byte for byte, to show that nothing was published.</summary>
    public static async Task<string> WitnessSnapshotAsync(WardlineOptions o)
    {
        var folder = WitnessFolder(o);
        var parts = new List<string>();
        foreach (var name in new[] { "key.pub", "heads.jsonl", "latest.json" })
        {
            var path = Path.Combine(folder, name);
            parts.Add(name + ":" + (File.Exists(path) ? await File.ReadAllTextAsync(path) : "<none>"));
        }
        return string.Join("\n", parts);
    }

    /// <summary>A patient and two conditions through the API, the first condition updated to version 2.</summary>
    public static async Task<Seeded> SeedAsync(HttpClient client)
    {
        var patient = await client.CreateAsync("Patient", FhirTest.Patient("Ledger" + Guid.NewGuid().ToString("N")[..8]));
        var updated = await client.CreateAsync("Condition", FhirTest.Condition(patient));
        var other = await client.CreateAsync("Condition", FhirTest.Condition(patient, "44054006", "Diabetes mellitus type 2"));
        var put = await client.PutJsonAsync($"Condition/{updated}", FhirTest.Condition(patient, "22298006", "Myocardial infarction", "2024-03-06", updated));
        if ((int)put.StatusCode != 200) throw new InvalidOperationException($"update answered {(int)put.StatusCode}");
        Assert.Equal(System.Net.HttpStatusCode.OK, (await client.GetAsync($"Condition/{updated}")).StatusCode);
        return new Seeded(patient, updated, other);
    }

    /// <summary>Signs and publishes a head of the tree as it stands, through the server's own head maker.</summary>
    public static Task PublishHeadAsync(TestServer server) => server.Service<TreeHeads>().PublishAsync(force: true, CancellationToken.None);

    /// <summary>A client signed in as an account with <paramref name="role"/> (e.g. administrator).</summary>
    public static async Task<HttpClient> ClientAsync(TestServer server, string name, params string[] roles)
    {
        var accounts = server.Service<AccountService>();
        var result = await accounts.CreateAsync(Account.New(name, name) with { Roles = roles }, null, "test", CancellationToken.None);
        if (result is not AccountResult.Done and not AccountResult.AlreadyExists) throw new InvalidOperationException($"account {name}: {result}");
        var tokens = server.Service<AccessTokens>();
        await tokens.AddUserAsync(name, name, CancellationToken.None);
        var token = await tokens.IssueAsync(name, TimeSpan.FromHours(1), CancellationToken.None) ?? throw new InvalidOperationException("no token");
        var client = new HttpClient { BaseAddress = server.BaseUri, Timeout = TimeSpan.FromSeconds(60) };
        client.DefaultRequestHeaders.Authorization = new AuthenticationHeaderValue("Bearer", token);
        return client;
    }

    /// <summary>The ledger's API lives beside /fhir, at /ledger.</summary>
    public static Uri LedgerUri(TestServer server, string pathAndQuery) => new(server.BaseUri, "/ledger/" + pathAndQuery);

    public static async Task<JsonObject> GetJsonAsync(HttpClient client, Uri uri)
    {
        var r = await client.GetAsync(uri);
        var text = await r.Content.ReadAsStringAsync();
        Assert.True(r.IsSuccessStatusCode, $"{uri}: {(int)r.StatusCode} {text}");
        return JsonNode.Parse(text)!.AsObject();
    }

    /// <summary>Parses "index=12; count=1; tree-size=40".</summary>
    public static (long Index, int Count, long TreeSize) Receipt(HttpResponseMessage response)
    {
        var header = Assert.Single(response.Headers.GetValues("X-Ledger-Receipt"));
        var parts = header.Split(';', StringSplitOptions.TrimEntries).Select(p => p.Split('=')).ToDictionary(p => p[0], p => p[1]);
        return (long.Parse(parts["index"], System.Globalization.CultureInfo.InvariantCulture),
            int.Parse(parts["count"], System.Globalization.CultureInfo.InvariantCulture),
            long.Parse(parts["tree-size"], System.Globalization.CultureInfo.InvariantCulture));
    }

    /// <summary>Releases every pooled connection of this test process, so a database can be copied or used as a template.</summary>
    public static void ReleasePools()
    {
        SqliteConnection.ClearAllPools();
        NpgsqlConnection.ClearAllPools();
    }

    /// <summary>Starts a server on the store with the all-access test policy (its "tester" is created on first start).</summary>
    public static Task<TestServer> StartAsync(TestStore store)
    {
        var o = store.SharedOptions();
        return TestServer.StartAsync(o);
    }
}
