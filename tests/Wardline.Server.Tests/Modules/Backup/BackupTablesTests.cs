using Wardline.Server.Modules.Backup;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;
using static Wardline.Server.Tests.Modules.Backup.Infrastructure.BackupTestKit;

namespace Wardline.Server.Tests.Modules.Backup;

/// <summary>Every table of a freshly migrated store is in exactly one of BackupTables' lists, so a new table cannot be left out of backups unnoticed.</summary>
public abstract class BackupTablesConformance(StoreKind kind)
{
    [Fact]
    public async Task Every_table_of_a_freshly_migrated_store_is_classified_in_exactly_one_list()
    {
        await using var store = await TestStore.CreateAsync(kind);
        List<string> existing;
        await using (var dialect = Dialect(store))
        {
            await Migrations.ApplyAsync(dialect, CancellationToken.None);
            await using var c = await dialect.OpenAsync(CancellationToken.None);
            existing = await BackupTables.ExistingTablesAsync(dialect, c, CancellationToken.None);
        }
        ReleasePools();
        var all = BackupTables.All.ToList();

        Assert.NotEmpty(existing);
        Assert.Empty(all.GroupBy(t => t, StringComparer.Ordinal).Where(g => g.Count() > 1).Select(g => g.Key));
        Assert.Empty(existing.Except(all, StringComparer.Ordinal));
        Assert.Empty(all.Except(existing, StringComparer.Ordinal));
    }

    [Fact]
    public async Task An_upsert_replaces_the_rows_of_every_listed_key_and_leaves_the_others() =>
        await InMigratedStoreAsync(async (dialect, c, ct) =>
        {
            await using (var tx = await c.BeginTransactionAsync(ct))
            {
                var dates = new Wardline.Backup.Format.RowBlock("search_date", "insert", ["pid", "lo", "hi", "rid"], []);
                for (var rid = 1L; rid <= 2_500; rid++)
                {
                    dates.Rows.Add([1L, 100L, 200L, rid]);
                    dates.Rows.Add([2L, 300L, 400L, rid]);
                }
                var keys = new Wardline.Backup.Format.RowBlock("data_keys", "insert", ["res_type", "res_id", "kek_id", "wrapped"], []);
                foreach (var id in new[] { "a", "b", "c" }) keys.Rows.Add(["Patient", id, "k1", new byte[] { 1 }]);
                await BackupTables.ApplyAsync(dialect, c, tx, dates, ct);
                await BackupTables.ApplyAsync(dialect, c, tx, keys, ct);
                await tx.CommitAsync(ct);
            }
            await using (var tx = await c.BeginTransactionAsync(ct))
            {
                // 2,400 integer keys: more than one statement's worth; rows come back for the first ten only.
                var dates = new Wardline.Backup.Format.RowBlock("search_date", "upsert", ["pid", "lo", "hi", "rid"], ["rid"]);
                for (var rid = 1L; rid <= 2_400; rid++) dates.Keys.Add([rid]);
                for (var rid = 1L; rid <= 10; rid++) dates.Rows.Add([3L, 500L, 600L, rid]);
                var keys = new Wardline.Backup.Format.RowBlock("data_keys", "upsert", ["res_type", "res_id", "kek_id", "wrapped"], ["res_type", "res_id"]);
                keys.Keys.Add(["Patient", "a"]);
                keys.Keys.Add(["Patient", "b"]);
                keys.Rows.Add(["Patient", "a", "k2", new byte[] { 2 }]);
                await BackupTables.ApplyAsync(dialect, c, tx, dates, ct);
                await BackupTables.ApplyAsync(dialect, c, tx, keys, ct);
                await tx.CommitAsync(ct);
            }

            Assert.Equal(10 + 2 * 100, await CountAsync(c, "SELECT COUNT(*) FROM search_date"));
            Assert.Equal(10, await CountAsync(c, "SELECT COUNT(*) FROM search_date WHERE pid = 3 AND rid <= 10"));
            Assert.Equal(0, await CountAsync(c, "SELECT COUNT(*) FROM search_date WHERE rid > 10 AND rid <= 2400"));
            Assert.Equal(200, await CountAsync(c, "SELECT COUNT(*) FROM search_date WHERE rid > 2400 AND pid IN (1, 2)"));
            Assert.Equal(1, await CountAsync(c, "SELECT COUNT(*) FROM data_keys WHERE res_id = 'a' AND kek_id = 'k2'"));
            Assert.Equal(0, await CountAsync(c, "SELECT COUNT(*) FROM data_keys WHERE res_id = 'b'"));
            Assert.Equal(1, await CountAsync(c, "SELECT COUNT(*) FROM data_keys WHERE res_id = 'c' AND kek_id = 'k1'"));
        });

    [Fact]
    public async Task An_upsert_with_a_key_of_the_wrong_width_is_refused_and_writes_nothing() =>
        await InMigratedStoreAsync(async (dialect, c, ct) =>
        {
            await using (var tx = await c.BeginTransactionAsync(ct))
            {
                var keys = new Wardline.Backup.Format.RowBlock("data_keys", "upsert", ["res_type", "res_id", "kek_id", "wrapped"], ["res_type", "res_id"]);
                keys.Keys.Add(["Patient", "a"]);
                keys.Keys.Add(["Patient"]);
                keys.Rows.Add(["Patient", "a", "k2", new byte[] { 2 }]);

                var ex = await Assert.ThrowsAsync<Wardline.Backup.Format.BackupFormatException>(() => BackupTables.ApplyAsync(dialect, c, tx, keys, ct));

                Assert.Contains("malformed key", ex.Message, StringComparison.Ordinal);
            }
            Assert.Equal(0, await CountAsync(c, "SELECT COUNT(*) FROM data_keys"));
        });

    private async Task InMigratedStoreAsync(Func<SqlDialect, System.Data.Common.DbConnection, CancellationToken, Task> body)
    {
        await using var store = await TestStore.CreateAsync(kind);
        await using (var dialect = Dialect(store))
        {
            await Migrations.ApplyAsync(dialect, CancellationToken.None);
            await using var c = await dialect.OpenAsync(CancellationToken.None);
            await body(dialect, c, CancellationToken.None);
        }
        ReleasePools();
    }

    private static async Task<long> CountAsync(System.Data.Common.DbConnection c, string sql)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(), System.Globalization.CultureInfo.InvariantCulture);
    }
}

public sealed class SqliteBackupTablesTests() : BackupTablesConformance(StoreKind.Sqlite);

public sealed class PostgresBackupTablesTests() : BackupTablesConformance(StoreKind.Postgres);
