using System.Diagnostics;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.Modules.Ledger;

/// <summary>
/// Issue 4, item 3: a head is signed every <c>HeadIntervalSeconds</c> while entries arrive, each covering more of the tree,
/// and none while nothing arrives. Deadlines, not timings: the test waits for what must happen and fails only if it never does.
/// </summary>
public sealed class PeriodicHeadsTests : IAsyncLifetime
{
    private TestStore _store = null!;

    public async Task InitializeAsync() => _store = await TestStore.CreateAsync(StoreKind.Sqlite);

    public async Task DisposeAsync()
    {
        ReleasePools();
        await _store.DisposeAsync();
    }

    [Fact]
    public async Task Heads_are_signed_every_interval_while_entries_arrive_and_none_while_nothing_does()
    {
        var options = _store.SharedOptions();
        options.Ledger.HeadIntervalSeconds = 1;
        await using var server = await TestServer.StartAsync(options);
        var before = await CountAsync(options, "SELECT COUNT(*) FROM ledger_heads");

        // Writes keep arriving until the timer has signed three heads on its own (nothing here asks for one).
        var deadline = Stopwatch.StartNew();
        var n = 0;
        while (await CountAsync(options, "SELECT COUNT(*) FROM ledger_heads") < before + 3)
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(90), "fewer than three heads were signed in 90 s of writes at a one-second interval");
            await server.Client.CreateAsync("Patient", FhirTest.Patient("Periodic" + n++));
            await Task.Delay(100);
        }
        // Each head covers more of the tree than the one signed before it.
        var sizes = await QueryAsync(options, "SELECT size FROM ledger_heads ORDER BY at, size", r => r.GetInt64(0));
        Assert.Equal(sizes.Order(), sizes);

        // Once a head covers the whole tree, nothing new arrives and no head is signed.
        deadline.Restart();
        while (await CountAsync(options, "SELECT MAX(size) FROM ledger_heads") != await CountAsync(options, "SELECT size FROM ledger_state"))
        {
            Assert.True(deadline.Elapsed < TimeSpan.FromSeconds(90), "no head came to cover the tree after the writes stopped");
            await Task.Delay(200);
        }
        var settled = await CountAsync(options, "SELECT COUNT(*) FROM ledger_heads");
        await Task.Delay(TimeSpan.FromSeconds(3));
        Assert.Equal(settled, await CountAsync(options, "SELECT COUNT(*) FROM ledger_heads"));
    }
}
