using System.Data.Common;
using System.Globalization;
using System.Net;
using Microsoft.Data.Sqlite;
using Npgsql;
using Wardline.Server.Hosting;
using Wardline.Server.Tests.EndToEnd;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Ledger;

/// <summary>
/// `wardline ledger disclosures`: the accounting of disclosures of one patient's record at the command
/// line, as a table or CSV, itself recorded in the ledger as read by "operator". On both stores.
/// </summary>
public abstract class DisclosuresCliConformance(StoreKind kind) : IAsyncLifetime
{
    private TestStore _store = null!;
    private string _patient = "";

    private WardlineOptions Options => _store.Options;

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(kind);
        await using var server = await TestServer.StartAsync(_store.Options, "dr.reader");
        _patient = await server.Client.CreateAsync("Patient", FhirTest.Patient("Disclosed" + Guid.NewGuid().ToString("N")[..8]));
        Assert.Equal(HttpStatusCode.OK, (await server.Client.GetAsync($"Patient/{_patient}")).StatusCode);
    }

    public async Task DisposeAsync()
    {
        NpgsqlConnection.ClearAllPools();
        SqliteConnection.ClearAllPools();
        await _store.DisposeAsync();
    }

    [Fact]
    public async Task The_report_lists_a_clinicians_read_and_is_itself_recorded_as_read_by_the_operator()
    {
        var before = await AuditRowsAsync();

        var r = await RunAsync("--patient", _patient);

        Assert.True(r.ExitCode == 0, r.Output);
        Assert.Contains(r.Output.Split('\n'), l => l.Contains("dr.reader", StringComparison.Ordinal) && l.Contains(" Read ", StringComparison.Ordinal)
            && l.Contains($"Patient/{_patient}", StringComparison.Ordinal) && l.Contains("tester", StringComparison.Ordinal) && l.Contains("yes", StringComparison.Ordinal));
        Assert.Contains($"for Patient/{_patient}", r.Flat, StringComparison.Ordinal);
        Assert.Equal(before + 1, await AuditRowsAsync());
    }

    [Fact]
    public async Task Csv_output_parses_with_a_header_and_one_row_per_disclosure()
    {
        var r = await RunAsync("--patient", "Patient/" + _patient, "--csv");

        Assert.True(r.ExitCode == 0, r.Output);
        var rows = Rfc4180.Parse(r.Output);
        Assert.Equal(["index", "time", "user", "roles", "application", "action", "resource", "purpose", "permitted", "rule", "reason"], rows[0]);
        Assert.All(rows, row => Assert.Equal(11, row.Count));
        var records = rows.Skip(1).Select(row => rows[0].Zip(row).ToDictionary(p => p.First, p => p.Second)).ToList();
        var read = Assert.Single(records, x => x["user"] == "dr.reader" && x["action"] == "Read");
        Assert.StartsWith($"Patient/{_patient}", read["resource"], StringComparison.Ordinal);
        Assert.Equal("true", read["permitted"]);
        Assert.Equal("tester", read["roles"]);
        Assert.NotEmpty(read["reason"]);
        var at = DateTimeOffset.Parse(read["time"], CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal);
        Assert.InRange(at, DateTimeOffset.UtcNow.AddMinutes(-10), DateTimeOffset.UtcNow.AddMinutes(1));
        Assert.Contains(records, x => x["action"] == "Create" && x["resource"].StartsWith($"Patient/{_patient}/_history/1", StringComparison.Ordinal));
        Assert.All(records, x => Assert.True(long.TryParse(x["index"], CultureInfo.InvariantCulture, out _)));
    }

    [Fact]
    public async Task A_period_that_ended_yesterday_leaves_todays_read_out()
    {
        var yesterday = DateTime.UtcNow.Date.AddDays(-1).ToString("yyyy-MM-dd", CultureInfo.InvariantCulture);

        var r = await RunAsync("--patient", _patient, "--to", yesterday, "--csv");
        var today = await RunAsync("--patient", _patient, "--from", DateTime.UtcNow.Date.ToString("yyyy-MM-dd", CultureInfo.InvariantCulture), "--csv");

        Assert.True(r.ExitCode == 0, r.Output);
        Assert.Single(Rfc4180.Parse(r.Output));
        Assert.True(Rfc4180.Parse(today.Output).Count > 1, today.Output);
    }

    [Theory]
    [InlineData("--from", "2026-02-30", "--from must be a date as yyyy-mm-dd")]
    [InlineData("--to", "tomorrow", "--to must be a date as yyyy-mm-dd")]
    [InlineData("--from", "2026-03-02", "--from is after --to")]
    [InlineData("--patient", "../etc", "--patient must be a Patient resource id")]
    [InlineData("--to", "9999-12-31", "--to must be a date from 0001-01-01 to 9999-12-30")]
    public async Task Bad_input_exits_with_2_and_a_clear_message(string option, string value, string message)
    {
        var args = new Dictionary<string, string> { ["--patient"] = _patient, ["--to"] = "2026-03-01" };
        args[option] = value;

        var r = await RunAsync([.. args.SelectMany(kv => new[] { kv.Key, kv.Value })]);

        Assert.Equal(2, r.ExitCode);
        Assert.Contains(message, r.Flat, StringComparison.Ordinal);
    }

    private Task<CliResult> RunAsync(params string[] args) =>
        WardlineCli.RunAsync(["ledger", "disclosures", .. StoreArgs(), .. args]);

    private string[] StoreArgs() => Options.PostgresConnectionString is { } cs
        ? ["--db", cs, "--keyring", Options.KeyringPath!, "--witness", Options.Ledger.WitnessPath!]
        : ["--data", Options.DataDirectory!];

    /// <summary>Rows of the access log saying the operator read this patient's trail, straight from the database.</summary>
    private async Task<long> AuditRowsAsync()
    {
        await using DbConnection c = Options.PostgresConnectionString is { } cs
            ? new NpgsqlConnection(cs)
            : new SqliteConnection(new SqliteConnectionStringBuilder { DataSource = Path.Combine(Options.DataDirectory!, "wardline.db"), Pooling = false }.ConnectionString);
        await c.OpenAsync();
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM access_log WHERE phase = 'audit' AND user_name = 'operator' AND source = 'cli' AND patient = @p";
        var p = cmd.CreateParameter();
        p.ParameterName = "@p";
        p.Value = "Patient/" + _patient;
        cmd.Parameters.Add(p);
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
    }
}

public sealed class DisclosuresCliOnSqlite() : DisclosuresCliConformance(StoreKind.Sqlite);

public sealed class DisclosuresCliOnPostgres() : DisclosuresCliConformance(StoreKind.Postgres);
