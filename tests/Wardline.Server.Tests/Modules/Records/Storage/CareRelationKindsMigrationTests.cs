using System.Globalization;
using Wardline.Server.Modules.Records.Storage;
using Wardline.Server.Tests.Infrastructure;

namespace Wardline.Server.Tests.Modules.Records.Storage;

/// <summary>
/// Migration 10 gives the care relations of a store written before it (or restored from a backup made before it) the
/// kind of the resource they came from and the start of its period, so the policy keeps granting what it granted and
/// monitoring keeps explaining what it explained.
/// </summary>
public abstract class CareRelationKindsMigrationConformance(StoreKind kind)
{
    [Fact]
    public async Task Relations_written_before_the_kinds_existed_take_their_resources_kind_and_start()
    {
        await using var store = await TestStore.CreateAsync(kind);
        await using var dialect = store.Options.PostgresConnectionString is { } cs
            ? SqlDialect.Postgres(cs)
            : SqlDialect.Sqlite(Path.Combine(Directory.CreateDirectory(store.Options.DataDirectory!).FullName, "wardline.db"));
        await Migrations.ApplyAsync(dialect, 9, CancellationToken.None);
        var start = new DateTimeOffset(2026, 11, 1, 8, 0, 0, TimeSpan.Zero).ToUnixTimeMilliseconds();
        await ExecAsync(dialect,
            "INSERT INTO resources (rid, res_type, res_id, version, last_updated, deleted) " + (dialect.Name == "sqlite" ? "" : "OVERRIDING SYSTEM VALUE ") + "VALUES (1, 'Encounter', 'e1', 1, 0, 0), (2, 'CareTeam', 't1', 1, 0, 0), (3, 'EpisodeOfCare', 'x1', 1, 0, 0)",
            "INSERT INTO search_params (pid, res_type, param) VALUES (901, 'Encounter', 'date')",
            $"INSERT INTO search_date (pid, lo, hi, rid) VALUES (901, {start}, {long.MaxValue}, 1)",
            "INSERT INTO care_relations (rid, practitioner, patient, until_at) VALUES (1, 'pr1', 'p1', NULL), (2, 'pr1', 'p2', NULL), (3, 'pr2', 'p1', 99)");

        await Migrations.ApplyAsync(dialect, CancellationToken.None);

        var rows = new List<string>();
        await using var c = await dialect.OpenAsync(CancellationToken.None);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT rid, kind, from_at, until_at FROM care_relations ORDER BY rid";
        await using (var r = await cmd.ExecuteReaderAsync())
        {
            while (await r.ReadAsync())
                rows.Add(string.Join(' ', Enumerable.Range(0, 4).Select(i => r.IsDBNull(i) ? "-" : Convert.ToString(r.GetValue(i), CultureInfo.InvariantCulture))));
        }
        Assert.Equal([$"1 encounter {start / 1000} -", "2 care-team - -", "3 episode - 99"], rows);
    }

    private static async Task ExecAsync(SqlDialect dialect, params string[] statements)
    {
        await using var c = await dialect.OpenAsync(CancellationToken.None);
        foreach (var sql in statements)
        {
            await using var cmd = c.CreateCommand();
            cmd.CommandText = sql;
            await cmd.ExecuteNonQueryAsync();
        }
    }
}

public sealed class CareRelationKindsMigrationOnSqlite() : CareRelationKindsMigrationConformance(StoreKind.Sqlite);

public sealed class CareRelationKindsMigrationOnPostgres() : CareRelationKindsMigrationConformance(StoreKind.Postgres);
