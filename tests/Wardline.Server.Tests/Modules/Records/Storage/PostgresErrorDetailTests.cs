using Npgsql;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Records.Storage;

/// <summary>PostgreSQL's error details quote row values; the store's connections never carry them, whatever the connection string asks.</summary>
public sealed class PostgresErrorDetailTests : IAsyncLifetime
{
    private TestStore _store = null!;

    public async Task InitializeAsync() => _store = await TestStore.CreateAsync(StoreKind.Postgres);

    public async Task DisposeAsync() => await _store.DisposeAsync();

    [Fact]
    public async Task A_unique_violation_names_no_value_even_with_error_details_asked_for()
    {
        await using var dialect = SqlDialect.Postgres(_store.PostgresConnectionString + ";Include Error Detail=true");
        await using var c = await dialect.OpenAsync(CancellationToken.None);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "CREATE TEMP TABLE people (name TEXT PRIMARY KEY); INSERT INTO people VALUES ('Johanna Smithers'); INSERT INTO people VALUES ('Johanna Smithers')";

        var ex = await Assert.ThrowsAsync<PostgresException>(() => cmd.ExecuteNonQueryAsync());

        Assert.Equal(PostgresErrorCodes.UniqueViolation, ex.SqlState);
        Assert.DoesNotContain("Johanna", ex.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("Johanna", ex.Detail ?? "", StringComparison.Ordinal);
    }
}
