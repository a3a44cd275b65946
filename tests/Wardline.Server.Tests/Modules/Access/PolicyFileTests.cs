using Microsoft.Extensions.DependencyInjection;
using Wardline.Policy;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Access;

/// <summary>The policy file in a running server: a bad file is refused and the previous policy stays in force; every change is a security event.</summary>
public sealed class PolicyFileTests : IAsyncLifetime
{
    private readonly string _dir = Path.Combine(Path.GetTempPath(), "wl-policy-" + Guid.NewGuid().ToString("N")[..8]);
    private string _policy = "";
    private TestServer _server = null!;

    public async Task InitializeAsync()
    {
        Directory.CreateDirectory(_dir);
        _policy = Path.Combine(_dir, "policy.yaml");
        await File.WriteAllTextAsync(_policy, await File.ReadAllTextAsync(TestServer.AllAccessPolicy));
        var options = new WardlineOptions { DataDirectory = Path.Combine(_dir, "store") };
        options.Access.PolicyPath = _policy;
        _server = await TestServer.StartAsync(options);
        // A named policy means TestServer leaves the account's roles alone: give it the test role.
        await _server.Service<AccountService>().UpdateAsync("tester", a => a with { Roles = ["tester"] }, "test", CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        Directory.Delete(_dir, recursive: true);
    }

    [Fact]
    public async Task A_bad_policy_file_is_refused_with_line_and_column_and_the_previous_policy_stays_in_force()
    {
        var holder = _server.Service<PolicyHolder>();
        var before = holder.Current.Digest;
        await File.WriteAllTextAsync(_policy, "version: 1\nroles:\n  tester: {title: T, clinical: true}\nrules:\n  - id: r1\n    effect: permit\n    description: Testers read patients.\n    actions: [read]\n    when: {kind: [Patient], colour: blue}\n");

        var problem = await holder.ReloadAsync("test", CancellationToken.None);

        Assert.NotNull(problem);
        Assert.Contains("policy.yaml:9:", problem, StringComparison.Ordinal);
        Assert.Equal(before, holder.Current.Digest);
        Assert.Equal(1, await CountAsync("kind = 'PolicyRejected' AND actor = 'test' AND detail LIKE '%policy.yaml:9:%'"));
        // The server still answers under the previous policy.
        Assert.Equal(System.Net.HttpStatusCode.OK, (await _server.Client.GetAsync("Patient?_count=1")).StatusCode);
    }

    [Fact]
    public async Task A_good_change_is_loaded_at_once_and_recorded_with_its_digest()
    {
        var holder = _server.Service<PolicyHolder>();
        await File.WriteAllTextAsync(_policy, "version: 1\nroles:\n  tester: {title: T, clinical: true}\nrules:\n  - id: only-organizations\n    effect: permit\n    description: Testers read the directory only.\n    actions: [read, search]\n    when: {role: [tester], kind: [Organization]}\n");

        Assert.Null(await holder.ReloadAsync("test", CancellationToken.None));

        Assert.Equal("only-organizations", Assert.Single(holder.Current.Rules).Id);
        Assert.Equal(1, await CountAsync($"kind = 'PolicyLoaded' AND actor = 'test' AND detail LIKE '%{holder.Current.Digest}%'"));
        var denied = await _server.Client.GetAsync("Patient?_count=1");
        Assert.Equal(System.Net.HttpStatusCode.Forbidden, denied.StatusCode);
        Assert.Contains("default-deny", await denied.DiagnosticsAsync(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task A_server_does_not_start_with_a_bad_policy_file_and_says_where()
    {
        var bad = Path.Combine(_dir, "bad.yaml");
        await File.WriteAllTextAsync(bad, "version: 1\nrules:\n  - id: x\n    effect: perhaps\n");
        var options = new WardlineOptions { DataDirectory = Path.Combine(_dir, "other") };
        options.Access.PolicyPath = bad;
        var ex = await Assert.ThrowsAsync<PolicyException>(() => TestServer.StartAsync(options));
        Assert.Contains("bad.yaml:4:", ex.Message, StringComparison.Ordinal);
    }

    private Task<long> CountAsync(string where) =>
        _server.Service<RecordStore>().CountAsync("SELECT COUNT(*) FROM security_events WHERE " + where, CancellationToken.None);
}
