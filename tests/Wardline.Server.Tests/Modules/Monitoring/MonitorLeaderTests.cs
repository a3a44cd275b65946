using Wardline.Server.Modules.Monitoring;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Monitoring.MonitoringServerKit;

namespace Wardline.Server.Tests.Modules.Monitoring;

/// <summary>Two servers sharing one PostgreSQL: one runs streaming detection, the other waits, and the alert is raised once.</summary>
public sealed class MonitorLeaderOnPostgres : IAsyncLifetime
{
    private TestStore _store = null!;
    private TestServer _first = null!;
    private TestServer _second = null!;

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(StoreKind.Postgres);
        _first = await TestServer.StartAsync(Options());
        _second = await TestServer.StartAsync(Options());
    }

    private Wardline.Server.Hosting.WardlineOptions Options()
    {
        var o = _store.SharedOptions();
        o.Monitoring.PollMilliseconds = 100;
        return o;
    }

    public async Task DisposeAsync()
    {
        await _second.DisposeAsync();
        await _first.DisposeAsync();
        await _store.DisposeAsync();
    }

    [Fact]
    public async Task Only_one_of_two_servers_runs_streaming_detection_and_an_alert_is_raised_once()
    {
        await EventuallyAsync(() => Task.FromResult(_first.Service<MonitorService>().Status.Running && _second.Service<MonitorService>().Status.Running ? "both" : null), "both detectors running");
        await ReadOwnRecordAsync(_second);

        var alert = await EventuallyAsync(async () =>
            (await _first.Service<AlertStore>().QueryAsync(new AlertQuery(Detection: "self-access"), CancellationToken.None)).Alerts is [var a] ? a : null, "one self-access alert");

        Assert.NotEqual(_first.Service<MonitorService>().Status.Leader, _second.Service<MonitorService>().Status.Leader);
        Assert.Single((await _second.Service<AlertStore>().QueryAsync(new AlertQuery(Detection: "self-access"), CancellationToken.None)).Alerts);
        Assert.Equal("stream", alert.Source);
    }
}
