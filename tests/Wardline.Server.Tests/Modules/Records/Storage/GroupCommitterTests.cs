using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Records.Storage;

/// <summary>The store's single writer: many units, one commit, failures contained.</summary>
public abstract class GroupCommitterConformance(StoreKind kind) : IAsyncLifetime
{
    private TestStore _store = null!;
    private SqlDialect _dialect = null!;

    public async Task InitializeAsync()
    {
        _store = await TestStore.CreateAsync(kind);
        _dialect = _store.Options.PostgresConnectionString is { } cs
            ? SqlDialect.Postgres(cs)
            : SqlDialect.Sqlite(Path.Combine(Directory.CreateDirectory(_store.Options.DataDirectory!).FullName, "wardline.db"));
        await Migrations.ApplyAsync(_dialect, CancellationToken.None);
    }

    public async Task DisposeAsync()
    {
        await _dialect.DisposeAsync();
        await _store.DisposeAsync();
    }

    private static GroupCommitter.Work<int> Insert(string name) => async (c, tx, ct) =>
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "INSERT INTO users (name, display, created, disabled) VALUES (@n, @n, 0, 0)";
        RecordStore.Add(cmd, "@n", name);
        return await cmd.ExecuteNonQueryAsync(ct);
    };

    private async Task<long> CountAsync(string prefix)
    {
        await using var c = await _dialect.OpenAsync(CancellationToken.None);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT COUNT(*) FROM users WHERE name LIKE @p";
        RecordStore.Add(cmd, "@p", prefix + "%");
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }

    [Fact]
    public async Task Many_concurrent_units_all_commit()
    {
        await using var committer = new GroupCommitter(_dialect, new LedgerAppender(_dialect));
        await Task.WhenAll(Enumerable.Range(0, 300).Select(i => committer.RunAsync(Insert($"many-{i}"))));
        Assert.Equal(300, await CountAsync("many-"));
    }

    [Fact]
    public async Task A_failing_unit_is_rolled_back_alone_and_the_others_commit()
    {
        await using var committer = new GroupCommitter(_dialect, new LedgerAppender(_dialect));
        var tasks = new List<Task<int>>();
        for (var i = 0; i < 50; i++)
        {
            var name = $"mixed-{i}";
            // Every fifth unit writes a row and then fails (a duplicate key): its own row must vanish too.
            tasks.Add(i % 5 == 0
                ? committer.RunAsync(async (c, tx, ct) =>
                {
                    await Insert(name)(c, tx, ct);
                    return await Insert(name)(c, tx, ct);
                })
                : committer.RunAsync(Insert(name)));
        }
        foreach (var (task, i) in tasks.Select((t, i) => (t, i)))
        {
            if (i % 5 == 0) await Assert.ThrowsAnyAsync<Exception>(() => task);
            else Assert.Equal(1, await task);
        }
        Assert.Equal(40, await CountAsync("mixed-"));
    }

    [Fact]
    public async Task Work_queued_before_disposal_is_still_written()
    {
        var committer = new GroupCommitter(_dialect, new LedgerAppender(_dialect));
        var pending = Enumerable.Range(0, 20).Select(i => committer.RunAsync(Insert($"drain-{i}"))).ToList();
        await committer.DisposeAsync();
        await Task.WhenAll(pending);
        Assert.Equal(20, await CountAsync("drain-"));
        Assert.Throws<InvalidOperationException>(() => { _ = committer.RunAsync(Insert("late")); });
    }
}

public sealed class GroupCommitterOnSqlite() : GroupCommitterConformance(StoreKind.Sqlite);

public sealed class GroupCommitterOnPostgres() : GroupCommitterConformance(StoreKind.Postgres);
