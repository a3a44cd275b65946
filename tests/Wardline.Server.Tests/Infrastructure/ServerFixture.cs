namespace Wardline.Server.Tests.Infrastructure;

/// <summary>One server over one fresh store, shared by the tests of a class (tests use their own unique data).</summary>
public abstract class ServerFixture(StoreKind kind) : IAsyncLifetime
{
    public StoreKind Kind => kind;

    public TestStore Store { get; private set; } = null!;

    public TestServer Server { get; private set; } = null!;

    public HttpClient Client => Server.Client;

    public async Task InitializeAsync()
    {
        Store = await TestStore.CreateAsync(kind);
        Server = await TestServer.StartAsync(Store.Options);
    }

    public async Task DisposeAsync()
    {
        await Server.DisposeAsync();
        await Store.DisposeAsync();
    }
}

public sealed class SqliteServerFixture() : ServerFixture(StoreKind.Sqlite);

public sealed class PostgresServerFixture() : ServerFixture(StoreKind.Postgres);
