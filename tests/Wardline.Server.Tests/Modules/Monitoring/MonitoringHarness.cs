using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wardline.Monitoring;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Access.Identity;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Monitoring;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Pipeline;
using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Ledger.Infrastructure;

namespace Wardline.Server.Tests.Modules.Monitoring;

/// <summary>
/// The monitoring services over a fresh store of either engine, wired as the server wires them (AddStores), without
/// a web host: the alert store, the ledger it records in, and accounts to assign alerts to.
/// </summary>
public sealed class MonitoringHarness : IAsyncDisposable
{
    private readonly ServiceProvider _services;

    private MonitoringHarness(TestStore store, ServiceProvider services)
    {
        Store = store;
        _services = services;
    }

    public TestStore Store { get; }

    internal AlertStore Alerts => Service<AlertStore>();

    internal T Service<T>() where T : notnull => _services.GetRequiredService<T>();

    public static async Task<MonitoringHarness> CreateAsync(StoreKind kind)
    {
        var store = await TestStore.CreateAsync(kind);
        var services = new ServiceCollection();
        services.AddLogging(l => l.SetMinimumLevel(LogLevel.Warning));
        services.AddSingleton(Options.Create(store.Options));
        services.AddStores(store.Options);
        var sp = services.BuildServiceProvider();
        await sp.GetRequiredService<RecordStore>().MigrateAsync(CancellationToken.None);
        return new MonitoringHarness(store, sp);
    }

    /// <summary>An account (of the given roles), created as an administrator would.</summary>
    internal async Task AccountAsync(string name, params string[] roles)
    {
        var result = await Service<AccountService>().CreateAsync(Account.New(name, name) with { Roles = roles }, null, "test", CancellationToken.None);
        Assert.IsType<AccountResult.Done>(result);
    }

    /// <summary>Ledger entries to be the evidence of findings: one security event each, whose indexes are returned.</summary>
    internal async Task<List<long>> EntriesAsync(int count, string user = "someone")
    {
        var before = await LedgerSizeAsync();
        var recorder = Service<LedgerRecorder>();
        for (var i = 0; i < count; i++)
            await recorder.RecordAsync(new SecurityEvent(DateTimeOffset.UtcNow, SecurityEventKind.SignIn, user, user, "succeeded", null, null, null), CancellationToken.None);
        return [.. Enumerable.Range(0, count).Select(i => before + i)];
    }

    public Task<long> LedgerSizeAsync() => LedgerTestKit.CountAsync(Store.Options, "SELECT COUNT(*) FROM ledger_entries");

    public Task<long> CountAsync(string sql) => LedgerTestKit.CountAsync(Store.Options, sql);

    internal static Finding Finding(string detection, string user, string? patient, long idx, DateTimeOffset? at = null, string? groupKey = null) =>
        new(detection, Severity.High, user, patient, (at ?? DateTimeOffset.UtcNow).ToUnixTimeMilliseconds(), [idx], $"finding of entry {idx}", groupKey);

    public async ValueTask DisposeAsync()
    {
        await _services.DisposeAsync();
        await Store.DisposeAsync();
    }
}
