using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.Modules.Ledger.Infrastructure;

/// <summary>A store with a patient and conditions written through the API and a signed head in the witness: what tampering tests start from.</summary>
public abstract class SeededLedgerStore(StoreKind kind) : IAsyncLifetime
{
    protected TestStore Store { get; private set; } = null!;

    private protected Seeded Seeded { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Store = await TestStore.CreateAsync(kind);
        await using var server = await StartAsync(Store);
        Seeded = await SeedAsync(server.Client);
        await PublishHeadAsync(server);
    }

    public async Task DisposeAsync()
    {
        ReleasePools();
        await Store.DisposeAsync();
    }
}
