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
}

public sealed class SqliteBackupTablesTests() : BackupTablesConformance(StoreKind.Sqlite);

public sealed class PostgresBackupTablesTests() : BackupTablesConformance(StoreKind.Postgres);
