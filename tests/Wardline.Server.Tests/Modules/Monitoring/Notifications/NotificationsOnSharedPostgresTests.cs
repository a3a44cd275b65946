using System.Globalization;
using Npgsql;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Monitoring.Notifications.NotifyTestKit;

namespace Wardline.Server.Tests.Modules.Monitoring.Notifications;

/// <summary>
/// Several servers on one PostgreSQL: an alert is announced once, not once per server; and an alert whose transaction
/// commits after a later alert's (PostgreSQL hands out ids before commit) is still announced, not skipped by the cursor.
/// </summary>
public sealed class NotificationsOnSharedPostgresTests : IAsyncLifetime
{
    private const string Secret = "webhook-secret-for-tests-0123456789";
    private static readonly TimeSpan Wait = TimeSpan.FromSeconds(30);
    private TestStore _store = null!;
    private WebhookReceiver _hook = null!;

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(StoreKind.Postgres);
        _hook = WebhookReceiver.Start(Secret);
    }

    public async Task DisposeAsync()
    {
        _hook.Dispose();
        await _store.DisposeAsync();
    }

    private Wardline.Server.Hosting.WardlineOptions Options()
    {
        var o = _store.SharedOptions();
        o.Monitoring.Notify.RetrySeconds = 0.2;
        _hook.Subscribe(o);
        return o;
    }

    [Fact]
    public async Task Two_servers_on_one_database_announce_each_alert_once()
    {
        await using var a = await StartAsync(Options());
        await using var b = await StartAsync(Options());
        await WaitForCursorAsync(a.App.Services);

        var ids = new List<long>();
        for (var i = 0; i < 6; i++)
        {
            ids.Add(await InsertAlertAsync((i % 2 == 0 ? a : b).App.Services, severity: 3, user: "user." + i));
            await Task.Delay(300);
        }

        foreach (var id in ids) await WaitForAsync(a.App.Services, id, r => r.Count == 1 && r[0].Status == "sent", Wait);
        await Task.Delay(TimeSpan.FromSeconds(2));
        foreach (var id in ids) Assert.Single(_hook.For(id));
    }

    [Fact]
    public async Task An_alert_committed_after_a_later_one_is_still_announced()
    {
        await using var server = await StartAsync(Options());
        await WaitForCursorAsync(server.App.Services);

        // An alert store's transaction takes its id, then commits only after another alert's has committed and been announced.
        await using var slow = new NpgsqlConnection(_store.PostgresConnectionString);
        await slow.OpenAsync();
        await using var tx = await slow.BeginTransactionAsync();
        long late;
        await using (var cmd = new NpgsqlCommand("""
            INSERT INTO monitor_alerts (detection, severity, user_name, group_key, status, assignee, first_at, last_at, patients, entries, evidence,
                repeat_offender, config, source, created, updated, revision)
            VALUES ('self-access', 3, 'late.user', NULL, 'new', NULL, @t, @t, 1, 1, 'the user opened their own record', 0, 'built-in', 'stream', @t, @t, 1) RETURNING id
            """, slow, tx))
        {
            cmd.Parameters.AddWithValue("t", DateTimeOffset.UtcNow.ToUnixTimeMilliseconds());
            late = Convert.ToInt64(await cmd.ExecuteScalarAsync(), CultureInfo.InvariantCulture);
        }
        var early = await InsertAlertAsync(server.App.Services, severity: 3, user: "early.user");
        Assert.True(early > late);
        await WaitForAsync(server.App.Services, early, r => r.Count == 1 && r[0].Status == "sent", Wait);

        await tx.CommitAsync();

        await WaitForAsync(server.App.Services, late, r => r.Count == 1 && r[0].Status == "sent", Wait);
        Assert.Single(_hook.For(late));
        Assert.Single(_hook.For(early));
    }
}
