using Wardline.Server.Hosting;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Monitoring;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;
using static Wardline.Server.Tests.Modules.Monitoring.MonitoringServerKit;

namespace Wardline.Server.Tests.Modules.Monitoring;

/// <summary>
/// Streaming detection in a running server: a new ledger entry that should alert raises an alert within seconds, and a
/// configuration file edited into a bad state is refused with its position while the previous configuration keeps working.
/// </summary>
public abstract class MonitorServiceConformance(StoreKind kind) : MonitoringServerTest(kind)
{
    private string _config = null!;

    /// <summary>Streaming on, from a configuration file the tests edit.</summary>
    protected override void Configure(WardlineOptions options)
    {
        _config = Path.Combine(Store.Folder, "monitoring.yaml");
        File.WriteAllText(_config, Wardline.Monitoring.MonitorConfig.DefaultText);
        options.Monitoring.ConfigPath = _config;
        options.Monitoring.PollMilliseconds = 100;
    }

    private Task<Alert> SelfAccessAlertAsync() => EventuallyAsync(async () =>
        (await Server.Service<AlertStore>().QueryAsync(new AlertQuery(Detection: "self-access", User: "tester"), CancellationToken.None)).Alerts is [var first, ..] ? first : null,
        "a self-access alert");

    [Fact]
    public async Task An_employee_opening_their_own_record_raises_an_alert_within_seconds()
    {
        await ReadOwnRecordAsync(Server);

        var alert = await SelfAccessAlertAsync();

        Assert.Equal(AlertStatus.New, alert.Status);
        Assert.Equal("stream", alert.Source);
        Assert.Equal(1, alert.Patients);
        Assert.Equal(1, await CountAsync(Store.Options, $"SELECT COUNT(*) FROM ledger_entries WHERE event = 'AlertRaised' AND user_name = 'tester' AND detail LIKE 'alert {alert.Id} self-access severity %'"));
        var status = Server.Service<MonitorService>().Status;
        Assert.True(status.Leader);
        Assert.Contains("self-access", status.ActiveDetections);
        Assert.Equal(_config, status.ConfigPath);
        Assert.True(status.Staff >= 1);
    }

    [Fact]
    public async Task A_bad_configuration_edit_is_refused_with_its_position_and_the_previous_one_keeps_working()
    {
        var before = Server.Service<MonitorConfigSource>().Current.Fingerprint;

        await File.WriteAllTextAsync(_config, "version: 1\ndetections:\n  self-acess: {enabled: false}\n");
        var refused = await EventuallyAsync(async () => (string?)await ScalarAsync(Store.Options,
            "SELECT detail FROM ledger_entries WHERE event = 'MonitorConfigRejected'"), "a MonitorConfigRejected entry");
        await ReadOwnRecordAsync(Server);

        Assert.Contains(_config + ":3:3:", refused, StringComparison.Ordinal);
        Assert.Contains("'self-acess' is not known", refused, StringComparison.Ordinal);
        Assert.Equal(before, Server.Service<MonitorConfigSource>().Current.Fingerprint);
        Assert.Contains(":3:3:", Server.Service<MonitorService>().Status.ConfigError, StringComparison.Ordinal);
        await SelfAccessAlertAsync();
    }

    [Fact]
    public async Task A_good_configuration_edit_is_loaded_and_recorded()
    {
        await File.WriteAllTextAsync(_config, "version: 1\ngrouping:\n  window-minutes: 60\n");

        var source = Server.Service<MonitorConfigSource>();
        await EventuallyAsync(() => Task.FromResult(source.Current.GroupWindowMinutes == 60 ? "in force" : null), "the new configuration in force");

        Assert.Equal(1, await CountAsync(Store.Options, $"SELECT COUNT(*) FROM ledger_entries WHERE event = 'MonitorConfigLoaded' AND detail LIKE '%fingerprint {source.Current.Fingerprint}%'"));
        Assert.Null(source.LastError);
    }

    [Fact]
    public async Task Entries_behind_the_ledgers_edge_are_packed_into_monitor_blocks_that_verify()
    {
        var recorder = Server.Service<LedgerRecorder>();
        for (var n = 0; n < MonitorBlocks.Size; n += 512)
        {
            await recorder.RecordAsync([.. Enumerable.Range(n, 512).Select(i => new AccessRecord(DateTimeOffset.UtcNow, "dr.lee",
                new FhirInteraction(FhirAction.Read, "Observation", $"obs-{i}"), "decision", new AccessDecision(true, "care-team-read", "on the care team"),
                null, $"Observation/obs-{i}", $"corr-{i}", "10.0.0.1"))], CancellationToken.None);
        }

        await EventuallyAsync(async () => await CountAsync(Store.Options, "SELECT COUNT(*) FROM monitor_blocks") > 0 ? "built" : null, "a monitor block");
        await using var c = await Server.Service<SqlDialect>().OpenAsync(CancellationToken.None);
        Assert.Equal([0L], (await Server.Service<MonitorBlocks>().ReadAsync(c, 0, 10, CancellationToken.None)).Keys);
    }
}

public sealed class MonitorServiceOnSqlite() : MonitorServiceConformance(StoreKind.Sqlite);

public sealed class MonitorServiceOnPostgres() : MonitorServiceConformance(StoreKind.Postgres);
