using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Backup.Infrastructure;

/// <summary>A fresh store of one engine and an empty folder target for each test, released (pools, folders, database) after it.</summary>
public abstract class StoreAndTarget(StoreKind kind) : IAsyncLifetime
{
    protected StoreKind Kind => kind;

    protected TestStore Store { get; private set; } = null!;

    private protected FolderTarget Target { get; private set; } = null!;

    public async Task InitializeAsync()
    {
        Store = await TestStore.CreateAsync(kind);
        Target = new FolderTarget();
        await ArrangeAsync();
    }

    /// <summary>What every test of the class starts from (a backup already taken, ...), after the store and target exist.</summary>
    protected virtual Task ArrangeAsync() => Task.CompletedTask;

    public async Task DisposeAsync()
    {
        BackupTestKit.ReleasePools();
        await Target.DisposeAsync();
        await Store.DisposeAsync();
    }
}
