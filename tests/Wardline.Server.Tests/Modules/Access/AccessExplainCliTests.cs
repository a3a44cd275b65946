using System.Text.Json.Nodes;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Records;
using Wardline.Server.Tests.EndToEnd;
using Microsoft.Extensions.DependencyInjection;

namespace Wardline.Server.Tests.Modules.Access;

/// <summary>`wardline access explain` and `wardline policy check` on a small store under the built-in hospital policy.</summary>
public sealed class AccessExplainCliTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "wl-explain-" + Guid.NewGuid().ToString("N")[..8]);
    private string _observation = "";
    private string _patient = "";

    public async Task InitializeAsync()
    {
        var options = new WardlineOptions { DataDirectory = _dir };
        options.Access.PolicyPath = null;
        // Built without TestServer's all-access default: the data directory gets the built-in policy.
        options.Urls.Add("http://127.0.0.1:0");
        var app = WardlineHost.Build(options);
        await app.StartAsync();
        try
        {
            var sp = app.Services;
            var transaction = """
                {"resourceType":"Bundle","type":"transaction","entry":[
                 {"fullUrl":"urn:uuid:0b0c6b2e-0000-4000-8000-000000000001","resource":{"resourceType":"Organization","identifier":[{"system":"https://wardline.example/department","value":"cardiology"}],"name":"Cardiology"},"request":{"method":"POST","url":"Organization"}},
                 {"fullUrl":"urn:uuid:0b0c6b2e-0000-4000-8000-000000000002","resource":{"resourceType":"Patient","name":[{"family":"Explain"}]},"request":{"method":"POST","url":"Patient"}},
                 {"fullUrl":"urn:uuid:0b0c6b2e-0000-4000-8000-000000000003","resource":{"resourceType":"Encounter","status":"finished","class":{"code":"AMB"},"subject":{"reference":"urn:uuid:0b0c6b2e-0000-4000-8000-000000000002"},"serviceProvider":{"reference":"urn:uuid:0b0c6b2e-0000-4000-8000-000000000001"}},"request":{"method":"POST","url":"Encounter"}},
                 {"fullUrl":"urn:uuid:0b0c6b2e-0000-4000-8000-000000000004","resource":{"resourceType":"Observation","status":"final","code":{"coding":[{"system":"http://loinc.org","code":"8867-4"}]},"subject":{"reference":"urn:uuid:0b0c6b2e-0000-4000-8000-000000000002"},"encounter":{"reference":"urn:uuid:0b0c6b2e-0000-4000-8000-000000000003"}},"request":{"method":"POST","url":"Observation"}}]}
                """;
            var result = await sp.GetRequiredService<RecordImporter>().ImportResourceAsync(
                FhirJson.Parse(System.Text.Encoding.UTF8.GetBytes(transaction)).Resource!, "test", CancellationToken.None);
            Assert.True(result.Ok, string.Join(" ", result.Problems));
            _patient = "0b0c6b2e-0000-4000-8000-000000000002";
            _observation = "0b0c6b2e-0000-4000-8000-000000000004";
            var accounts = sp.GetRequiredService<AccountService>();
            await accounts.CreateAsync(Account.New("nurse.cardio", "Carla") with { Roles = ["nurse"], Departments = ["cardiology"] }, null, "test", CancellationToken.None);
            await accounts.CreateAsync(Account.New("nurse.onco", "Olga") with { Roles = ["nurse"], Departments = ["oncology"] }, null, "test", CancellationToken.None);
        }
        finally
        {
            await app.StopAsync();
            await app.DisposeAsync();
        }
    }

    public Task DisposeAsync()
    {
        Directory.Delete(_dir, recursive: true);
        return Task.CompletedTask;
    }

    [Fact]
    public async Task A_cardiology_nurse_may_read_a_cardiology_observation_and_the_explanation_names_the_rule()
    {
        var r = await WardlineCli.RunAsync(["access", "explain", "--data", _dir, "--user", "nurse.cardio", "--resource", "Observation", "--id", _observation, "--action", "read", "--json"]);
        Assert.True(r.ExitCode == 0, r.Output);
        var json = JsonNode.Parse(r.Output)!;
        Assert.Equal("permit", (string?)json["decision"]);
        Assert.Equal("department-clinical-read", (string?)json["rule"]);
        Assert.Equal(_patient, (string?)json["resource"]!["patient"]);
        // An explanation shows a resource's labels and patient: it is recorded like an access.
        await using var db = new Microsoft.Data.Sqlite.SqliteConnection($"Data Source={Path.Combine(_dir, "wardline.db")};Mode=ReadOnly");
        await db.OpenAsync();
        await using var count = db.CreateCommand();
        count.CommandText = $"SELECT COUNT(*) FROM access_log WHERE phase = 'explain' AND user_name = 'operator' AND resource_ref = 'Observation/{_observation}'";
        Assert.Equal(1L, (long)(await count.ExecuteScalarAsync())!);
    }

    [Fact]
    public async Task An_oncology_nurse_may_not_and_no_rule_permits_it()
    {
        var r = await WardlineCli.RunAsync(["access", "explain", "--data", _dir, "--user", "nurse.onco", "--resource", "Observation", "--patient", _patient, "--action", "read"]);
        Assert.True(r.ExitCode == 0, r.Output);
        Assert.Contains("DENY", r.Output, StringComparison.Ordinal);
        Assert.Contains("default-deny", r.Output, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData("--user", "nobody", "There is no account")]
    [InlineData("--action", "peek", "--action must be one of")]
    [InlineData("--resource", "Spaceship", "is not a resource type")]
    [InlineData("--purpose", "CURIOSITY", "The purpose must be one of")]
    public async Task Bad_input_to_explain_is_a_usage_error_with_a_clear_message(string option, string value, string message)
    {
        var args = new Dictionary<string, string> { ["--user"] = "nurse.cardio", ["--resource"] = "Observation", ["--action"] = "read", ["--purpose"] = "TREAT" };
        args[option] = value;
        var r = await WardlineCli.RunAsync(["access", "explain", "--data", _dir, "--id", _observation, .. args.SelectMany(kv => new[] { kv.Key, kv.Value })]);
        Assert.Equal(2, r.ExitCode);
        Assert.Contains(message, r.Output, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Policy_check_accepts_the_built_in_policy_and_refuses_a_bad_file_with_line_and_column()
    {
        var good = Path.Combine(_dir, "good.yaml");
        await File.WriteAllTextAsync(good, PolicyHolder.BuiltInText());
        var ok = await WardlineCli.RunAsync(["policy", "check", good]);
        Assert.Equal(0, ok.ExitCode);
        Assert.Contains("valid", ok.Output, StringComparison.Ordinal);

        var bad = Path.Combine(_dir, "bad.yaml");
        await File.WriteAllTextAsync(bad, "version: 1\nrules:\n  - id: x\n    effect: perhaps\n    actions: any\n");
        var refused = await WardlineCli.RunAsync(["policy", "check", bad]);
        Assert.Equal(2, refused.ExitCode);
        Assert.Contains("bad.yaml:4:", refused.Flat, StringComparison.Ordinal);
    }
}
