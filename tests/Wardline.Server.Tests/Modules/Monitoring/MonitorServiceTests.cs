using System.Net;
using Wardline.Server.Modules.Monitoring;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;
using static Wardline.Server.Tests.Modules.Monitoring.MonitoringServerKit;

namespace Wardline.Server.Tests.Modules.Monitoring;

/// <summary>
/// Streaming detection in a running server: a new ledger entry that should alert raises an alert within seconds, and a
/// configuration file edited into a bad state is refused with its position while the previous configuration keeps working.
/// </summary>
public abstract class MonitorServiceConformance(StoreKind kind) : IAsyncLifetime
{
    private TestStore _store = null!;
    private TestServer _server = null!;
    private string _config = null!;

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(kind);
        _config = Path.Combine(_store.Folder, "monitoring.yaml");
        await File.WriteAllTextAsync(_config, Wardline.Monitoring.MonitorConfig.DefaultText);
        var options = _store.SharedOptions();
        options.Monitoring.ConfigPath = _config;
        options.Monitoring.PollMilliseconds = 100;
        _server = await TestServer.StartAsync(options);
    }

    public async Task DisposeAsync()
    {
        await _server.DisposeAsync();
        await _store.DisposeAsync();
    }

    private async Task ReadOwnRecordAsync()
    {
        var own = await _server.Client.CreateAsync("Patient", StaffPatient("tester"));
        Assert.Equal(HttpStatusCode.OK, (await _server.Client.GetAsync("Patient/" + own)).StatusCode);
    }

    private Task<Alert> SelfAccessAlertAsync() => EventuallyAsync(async () =>
        (await _server.Service<AlertStore>().QueryAsync(new AlertQuery(Detection: "self-access", User: "tester"), CancellationToken.None)).Alerts is [var first, ..] ? first : null,
        "a self-access alert");

    [Fact]
    public async Task An_employee_opening_their_own_record_raises_an_alert_within_seconds()
    {
        await ReadOwnRecordAsync();

        var alert = await SelfAccessAlertAsync();

        Assert.Equal(AlertStatus.New, alert.Status);
        Assert.Equal("stream", alert.Source);
        Assert.Equal(1, alert.Patients);
        Assert.Equal(1, await CountAsync(_store.Options, $"SELECT COUNT(*) FROM ledger_entries WHERE event = 'AlertRaised' AND user_name = 'tester' AND detail LIKE 'alert {alert.Id} self-access severity %'"));
        var status = _server.Service<MonitorService>().Status;
        Assert.True(status.Leader);
        Assert.Contains("self-access", status.ActiveDetections);
        Assert.Equal(_config, status.ConfigPath);
        Assert.True(status.Staff >= 1);
    }

    [Fact]
    public async Task A_bad_configuration_edit_is_refused_with_its_position_and_the_previous_one_keeps_working()
    {
        var before = _server.Service<MonitorConfigSource>().Current.Fingerprint;

        await File.WriteAllTextAsync(_config, "version: 1\ndetections:\n  self-acess: {enabled: false}\n");
        var refused = await EventuallyAsync(async () => (string?)await ScalarAsync(_store.Options,
            "SELECT detail FROM ledger_entries WHERE event = 'MonitorConfigRejected'"), "a MonitorConfigRejected entry");
        await ReadOwnRecordAsync();

        Assert.Contains(_config + ":3:3:", refused, StringComparison.Ordinal);
        Assert.Contains("'self-acess' is not known", refused, StringComparison.Ordinal);
        Assert.Equal(before, _server.Service<MonitorConfigSource>().Current.Fingerprint);
        Assert.Contains(":3:3:", _server.Service<MonitorService>().Status.ConfigError, StringComparison.Ordinal);
        await SelfAccessAlertAsync();
    }

    [Fact]
    public async Task A_good_configuration_edit_is_loaded_and_recorded()
    {
        await File.WriteAllTextAsync(_config, "version: 1\ngrouping:\n  window-minutes: 60\n");

        var source = _server.Service<MonitorConfigSource>();
        await EventuallyAsync(() => Task.FromResult(source.Current.GroupWindowMinutes == 60 ? "in force" : null), "the new configuration in force");

        Assert.Equal(1, await CountAsync(_store.Options, $"SELECT COUNT(*) FROM ledger_entries WHERE event = 'MonitorConfigLoaded' AND detail LIKE '%fingerprint {source.Current.Fingerprint}%'"));
        Assert.Null(source.LastError);
    }
}

public sealed class MonitorServiceOnSqlite() : MonitorServiceConformance(StoreKind.Sqlite);

public sealed class MonitorServiceOnPostgres() : MonitorServiceConformance(StoreKind.Postgres);
