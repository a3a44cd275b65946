using System.Data.Common;
using System.Globalization;
using System.Text;
using Wardline.Ledger;
using Wardline.Server.Modules.Access.Facts;
using Wardline.Server.Modules.Ledger;
using Wardline.Server.Modules.Records.Search;

namespace Wardline.Server.Modules.Records.Storage;

/// <summary>A stored version as it sits in the database: the body is still encrypted. <see cref="Rid"/> is the
/// store's internal row key of the resource (0 when read from history, where it is not needed).</summary>
internal sealed record StoredVersion(string Type, string Id, int Version, long LastUpdated, bool Deleted, byte[]? Body, byte[] WrappedKey, long Rid = 0);

/// <summary>
/// One version to append. <see cref="ExpectedVersion"/> 0 means "must not exist yet"; otherwise
/// the current version must still be that one when the write commits (optimistic concurrency).
/// </summary>
internal sealed record PendingWrite(
    string Type,
    string Id,
    int Version,
    int ExpectedVersion,
    long LastUpdated,
    bool Deleted,
    byte[]? Body,
    byte[]? NewWrappedKey,
    string? KekId,
    IReadOnlyList<IndexEntry> Index,
    long Rid = 0)
{
    /// <summary>What the policy knows of this version; null for a deletion, which keeps the last facts so its 410 is still decided.</summary>
    public FactsRow? Facts { get; init; }

    /// <summary>SHA-256 of the version's canonical bytes (the JSON sealed in <see cref="Body"/>), recorded in its ledger entry; null for a deletion.</summary>
    public byte[]? Sha256 { get; init; }

    /// <summary>The patient the version belongs to, for its ledger entry (a deletion keeps the last version's).</summary>
    public string? Patient { get; init; }
}

/// <summary>Whether the write committed and, if so, where its ledger entries are.</summary>
internal sealed record WriteResult(WriteStatus Status, LedgerReceipt? Receipt);

internal enum WriteStatus
{
    Committed,
    Conflict,
}

internal sealed record SearchPage(IReadOnlyList<StoredVersion> Matches, IReadOnlyList<StoredVersion> Included, int Total);

/// <summary>
/// The record store over SQLite or PostgreSQL. Versions are append-only rows; <c>resources</c>
/// points at each resource's current version; <c>search_token</c>, <c>search_ref</c> and <c>search_date</c> index the
/// current version only. All SQL is shared by both engines.
/// </summary>
internal sealed class RecordStore(SqlDialect dialect, GroupCommitter committer, LedgerIntegrity integrity) : IAsyncDisposable
{
    private const string SelectCurrent =
        "SELECT r.res_type, r.res_id, r.version, r.last_updated, r.deleted, v.body, k.wrapped, r.rid " +
        "FROM resources r JOIN resource_versions v ON v.res_type = r.res_type AND v.res_id = r.res_id AND v.version = r.version " +
        "JOIN data_keys k ON k.res_type = r.res_type AND k.res_id = r.res_id ";

    private const string SelectVersion =
        "SELECT v.res_type, v.res_id, v.version, v.last_updated, v.deleted, v.body, k.wrapped, CAST(0 AS BIGINT) " +
        "FROM resource_versions v JOIN data_keys k ON k.res_type = v.res_type AND k.res_id = v.res_id ";

    private static readonly string[] IndexTables = ["search_token", "search_ref", "search_date"];

    private volatile Dictionary<(string Type, string Param), int>? _paramIds;

    /// <summary>Brings the schema up to date and registers every search parameter's compact id.</summary>
    public async Task<int> MigrateAsync(CancellationToken ct)
    {
        var applied = await Migrations.ApplyAsync(dialect, ct);
        await LoadParamIdsAsync(ct);
        return applied;
    }

    /// <summary>
    /// Index rows name their parameter by a small integer (pid) rather than two strings, which makes
    /// the index several times smaller. Ids are assigned once per store and never change; servers
    /// sharing a store agree on them through the unique constraint.
    /// </summary>
    private async Task LoadParamIdsAsync(CancellationToken ct)
    {
        var wanted = SearchParameterRegistry.ResourceTypes
            .SelectMany(t => SearchParameterRegistry.For(t).Keys.Select(p => (t, p)))
            .ToList();
        var ids = await ReadParamIdsAsync(ct);
        var missing = wanted.Where(w => !ids.ContainsKey(w)).ToList();
        if (missing.Count > 0)
        {
            await using var gate = await dialect.EnterWriteAsync(ct);
            await using var c = await dialect.OpenAsync(ct);
            await using var tx = await dialect.BeginWriteTransactionAsync(c, ct);
            await dialect.LockForMigrationAsync(c, tx, ct);
            var next = 1;
            await using (var max = c.CreateCommand())
            {
                max.Transaction = tx;
                max.CommandText = "SELECT COALESCE(MAX(pid), 0) FROM search_params";
                next = Convert.ToInt32(await max.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture) + 1;
            }
            foreach (var (type, param) in missing)
            {
                await using var cmd = c.CreateCommand();
                cmd.Transaction = tx;
                // A parameter new to a type that already has resources: they were indexed without it, so it is pending
                // until RecordService re-indexes them (at start-up, before any request is served).
                cmd.CommandText = "INSERT INTO search_params (pid, res_type, param, pending) VALUES (@p, @t, @n, " +
                    "CASE WHEN EXISTS (SELECT 1 FROM resources WHERE res_type = @t) THEN 1 ELSE 0 END) ON CONFLICT (res_type, param) DO NOTHING";
                Add(cmd, "@p", next);
                Add(cmd, "@t", type);
                Add(cmd, "@n", param);
                next += await cmd.ExecuteNonQueryAsync(ct);
            }
            await tx.CommitAsync(ct);
            ids = await ReadParamIdsAsync(ct);
        }
        _paramIds = ids;
    }

    private async Task<Dictionary<(string, string), int>> ReadParamIdsAsync(CancellationToken ct)
    {
        var ids = new Dictionary<(string, string), int>();
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT pid, res_type, param FROM search_params";
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) ids[(r.GetString(1), r.GetString(2))] = r.GetInt32(0);
        return ids;
    }

    private int Pid(string type, string param) =>
        (_paramIds ?? throw new InvalidOperationException("The store has not been opened (MigrateAsync)."))
            .TryGetValue((type, param), out var pid) ? pid : throw new InvalidOperationException($"Search parameter {type}.{param} has no id.");

    public async Task<StoredVersion?> ReadCurrentAsync(string type, string id, CancellationToken ct)
    {
        if (dialect.InProcess)
        {
            return await ReadCurrentPreparedAsync(type, id, ct);
        }
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = SelectCurrent + "WHERE r.res_type = @t AND r.res_id = @i";
        Add(cmd, "@t", type);
        Add(cmd, "@i", id);
        return await ReadOneAsync(cmd, ct);
    }

    /// <summary>
    /// Read by id is the hottest statement. In-process (SQLite) it runs on a kept connection with the
    /// statement prepared once, instead of opening a pooled connection and re-parsing the SQL per read.
    /// (PostgreSQL gets the same from Npgsql's auto-prepare.)
    /// </summary>
    private Task<StoredVersion?> ReadCurrentPreparedAsync(string type, string id, CancellationToken ct) =>
        WithPreparedAsync(_readers, SelectCurrent + "WHERE r.res_type = @t AND r.res_id = @i", type, id,
            async (cmd, token) => await ReadOneAsync(cmd, token), ct);

    /// <summary>
    /// Runs a (type, id) statement on a kept connection where it is prepared once (SQLite); a failed
    /// statement's connection is dropped, and at most <see cref="MaxKeptReaders"/> are kept per statement.
    /// </summary>
    private async Task<T?> WithPreparedAsync<T>(System.Collections.Concurrent.ConcurrentBag<PreparedRead> bag, string sql, string type, string id,
        Func<DbCommand, CancellationToken, Task<T?>> run, CancellationToken ct)
    {
        if (!bag.TryTake(out var reader))
        {
            reader = await PreparedRead.OpenAsync(dialect, sql, ct);
        }
        T? result;
        try
        {
            reader.Type.Value = type;
            reader.Id.Value = id;
            result = await run(reader.Command, ct);
        }
        catch
        {
            await reader.DisposeAsync();
            throw;
        }
        if (bag.Count < MaxKeptReaders) bag.Add(reader);
        else await reader.DisposeAsync();
        return result;
    }

    private const int MaxKeptReaders = 64;

    private readonly System.Collections.Concurrent.ConcurrentBag<PreparedRead> _readers = [];

    private sealed class PreparedRead : IAsyncDisposable
    {
        private PreparedRead(DbConnection connection, DbCommand command, DbParameter type, DbParameter id)
        {
            Connection = connection;
            Command = command;
            Type = type;
            Id = id;
        }

        public DbConnection Connection { get; }
        public DbCommand Command { get; }
        public DbParameter Type { get; }
        public DbParameter Id { get; }

        public static async Task<PreparedRead> OpenAsync(SqlDialect dialect, string sql, CancellationToken ct)
        {
            var c = await dialect.OpenAsync(ct);
            var cmd = c.CreateCommand();
            cmd.CommandText = sql;
            var t = cmd.CreateParameter();
            t.ParameterName = "@t";
            cmd.Parameters.Add(t);
            var i = cmd.CreateParameter();
            i.ParameterName = "@i";
            cmd.Parameters.Add(i);
            await cmd.PrepareAsync(ct);
            return new PreparedRead(c, cmd, t, i);
        }

        public async ValueTask DisposeAsync()
        {
            await Command.DisposeAsync();
            await Connection.DisposeAsync();
        }
    }

    public async ValueTask DisposeAsync()
    {
        while (_readers.TryTake(out var reader)) await reader.DisposeAsync();
        while (_factReaders.TryTake(out var reader)) await reader.DisposeAsync();
    }

    public async Task<StoredVersion?> ReadVersionAsync(string type, string id, int version, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = SelectVersion + "WHERE v.res_type = @t AND v.res_id = @i AND v.version = @v";
        Add(cmd, "@t", type);
        Add(cmd, "@i", id);
        Add(cmd, "@v", version);
        return await ReadOneAsync(cmd, ct);
    }

    /// <summary>Current versions (deleted or not) of the given resources: one indexed query per type and 400 ids.</summary>
    public async Task<Dictionary<(string Type, string Id), StoredVersion>> ReadCurrentManyAsync(IReadOnlyCollection<(string Type, string Id)> keys, CancellationToken ct)
    {
        var result = new Dictionary<(string, string), StoredVersion>();
        if (keys.Count == 0)
        {
            return result;
        }
        await using var c = await dialect.OpenAsync(ct);
        foreach (var (type, ids) in ByType(keys))
        {
            await using var cmd = c.CreateCommand();
            cmd.CommandText = SelectCurrent + "WHERE r.res_type = @t AND r.res_id IN (" + InList(cmd, ids) + ")";
            Add(cmd, "@t", type);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var v = Map(r);
                result[(v.Type, v.Id)] = v;
            }
        }
        return result;
    }

    /// <summary>Keys grouped by type, in chunks that fit the (res_type, res_id) index in one IN list.</summary>
    private static IEnumerable<(string Type, string[] Ids)> ByType(IEnumerable<(string Type, string Id)> keys) =>
        keys.GroupBy(k => k.Type, StringComparer.Ordinal)
            .SelectMany(g => g.Select(k => k.Id).Distinct(StringComparer.Ordinal).Chunk(400).Select(ids => (g.Key, ids)));

    private static string InList(DbCommand cmd, string[] ids)
    {
        var sb = new StringBuilder();
        for (var i = 0; i < ids.Length; i++)
        {
            sb.Append(i > 0 ? ", @i" : "@i").Append(i);
            Add(cmd, "@i" + i, ids[i]);
        }
        return sb.ToString();
    }

    /// <summary>Versions newest first. With <paramref name="access"/>, only versions of resources the filter permits (judged by their current facts).</summary>
    public async Task<(IReadOnlyList<StoredVersion> Page, int Total)> HistoryAsync(string type, string? id, long? since, int count, int offset, AccessFilter? access, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        var where = (access is null ? "" : " JOIN resources r ON r.res_type = v.res_type AND r.res_id = v.res_id" + AccessFilter.Joins)
            + "WHERE v.res_type = @t" + (id is null ? "" : " AND v.res_id = @i") + (since is null ? "" : " AND v.last_updated >= @s")
            + (access is null ? "" : " AND (" + access.Sql + ")");
        int total;
        await using (var cnt = c.CreateCommand())
        {
            cnt.CommandText = "SELECT COUNT(*) FROM resource_versions v " + where;
            AddHistoryParams(cnt, type, id, since, access);
            total = Convert.ToInt32(await cnt.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
        }
        var page = new List<StoredVersion>();
        if (count > 0)
        {
            await using var cmd = c.CreateCommand();
            cmd.CommandText = SelectVersion + where + " ORDER BY v.last_updated DESC, v.res_id, v.version DESC LIMIT @lim OFFSET @off";
            AddHistoryParams(cmd, type, id, since, access);
            Add(cmd, "@lim", count);
            Add(cmd, "@off", offset);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                page.Add(Map(r));
            }
        }
        return (page, total);
    }

    private static void AddHistoryParams(DbCommand cmd, string type, string? id, long? since, AccessFilter? access)
    {
        foreach (var (k, v) in access?.Parameters ?? []) Add(cmd, k, v);
        Add(cmd, "@t", type);
        if (id is not null) Add(cmd, "@i", id);
        if (since is not null) Add(cmd, "@s", since.Value);
    }

    public async Task<SearchPage> SearchAsync(SearchPlan plan, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        var from = plan.Access is null ? "" : AccessFilter.Joins;
        var where = new StringBuilder(from).Append("WHERE r.res_type = @t AND r.deleted = 0");
        var parameters = new List<(string, object)> { ("@t", plan.ResourceType) };
        if (plan.Access is { } access)
        {
            where.Append(" AND (").Append(access.Sql).Append(')');
            parameters.AddRange(access.Parameters);
        }
        var n = 0;
        string Param(object value)
        {
            var name = "@p" + n++;
            parameters.Add((name, value));
            return name;
        }

        foreach (var criterion in plan.Criteria)
        {
            switch (criterion)
            {
                case IdCriterion id:
                    where.Append(" AND r.res_id IN (").AppendJoin(", ", id.Ids.Select(Param)).Append(')');
                    break;
                case LastUpdatedCriterion lu:
                    where.Append(" AND (").AppendJoin(" OR ", lu.Bounds.Select(b => DateSql(b, "r.last_updated", "(r.last_updated + 1)", Param))).Append(')');
                    break;
                case HashCriterion h:
                    where.Append(h.Negate ? " AND r.rid NOT IN (" : " AND r.rid IN (")
                        .Append("SELECT s.rid FROM search_token s WHERE s.pid = ").Append(Param(Pid(plan.ResourceType, h.Param)))
                        .Append(" AND s.hash IN (").AppendJoin(", ", h.Hashes.Select(x => Param(x))).Append("))");
                    break;
                case RefCriterion rc:
                    where.Append(" AND r.rid IN (SELECT s.rid FROM search_ref s WHERE s.pid = ").Append(Param(Pid(plan.ResourceType, rc.Param)))
                        .Append(" AND s.ref IN (").AppendJoin(", ", rc.Refs.Select(Param)).Append("))");
                    break;
                case DateCriterion d:
                    where.Append(" AND r.rid IN (SELECT s.rid FROM search_date s WHERE s.pid = ").Append(Param(Pid(plan.ResourceType, d.Param)))
                        .Append(" AND (").AppendJoin(" OR ", d.Bounds.Select(b => DateSql(b, "s.lo", "s.hi", Param))).Append("))");
                    break;
            }
        }

        int total;
        await using (var cnt = c.CreateCommand())
        {
            cnt.CommandText = "SELECT COUNT(*) FROM resources r " + where;
            foreach (var (k, v) in parameters) Add(cnt, k, v);
            total = Convert.ToInt32(await cnt.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
        }

        var matches = new List<StoredVersion>();
        if (!plan.SummaryCount && plan.Count > 0 && plan.Offset < total)
        {
            string order;
            if (plan.Sort is null || plan.Sort.Param == "_lastUpdated")
            {
                order = plan.Sort is { Descending: true } ? "r.last_updated DESC, r.res_id" : "r.last_updated, r.res_id";
                if (plan.Sort is null) order = "r.last_updated DESC, r.res_id";
            }
            else
            {
                var sp = Param(Pid(plan.ResourceType, plan.Sort.Param));
                order = plan.Sort.Descending
                    ? $"(SELECT MAX(s.hi) FROM search_date s WHERE s.rid = r.rid AND s.pid = {sp}) DESC NULLS LAST, r.res_id"
                    : $"(SELECT MIN(s.lo) FROM search_date s WHERE s.rid = r.rid AND s.pid = {sp}) ASC NULLS LAST, r.res_id";
            }
            await using var cmd = c.CreateCommand();
            cmd.CommandText = SelectCurrent + where + " ORDER BY " + order + " LIMIT @lim OFFSET @off";
            foreach (var (k, v) in parameters) Add(cmd, k, v);
            Add(cmd, "@lim", plan.Count);
            Add(cmd, "@off", plan.Offset);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                matches.Add(Map(r));
            }
        }

        var included = matches.Count == 0 || plan.Includes.Count == 0
            ? []
            : await IncludesAsync(c, plan, matches, ct);
        return new SearchPage(matches, included, total);
    }

    private static string DateSql(DateBound b, string lo, string hi, Func<object, string> param)
    {
        var a = param(b.Lo);
        var z = param(b.Hi);
        return b.Prefix switch
        {
            "eq" => $"({lo} >= {a} AND {hi} <= {z})",
            "ne" => $"NOT ({lo} >= {a} AND {hi} <= {z})",
            "gt" => $"({hi} > {z})",
            "lt" => $"({lo} < {a})",
            "ge" => $"({hi} > {a})",
            "le" => $"({lo} < {z})",
            "sa" => $"({lo} >= {z})",
            "eb" => $"({hi} <= {a})",
            _ => throw new ArgumentOutOfRangeException(nameof(b), "unknown date prefix"),
        };
    }

    private async Task<List<StoredVersion>> IncludesAsync(DbConnection c, SearchPlan plan, List<StoredVersion> matches, CancellationToken ct)
    {
        var keys = new HashSet<(string, string)>();
        var seen = matches.Select(m => (m.Type, m.Id)).ToHashSet();
        foreach (var inc in plan.Includes)
        {
            await using var cmd = c.CreateCommand();
            var sb = new StringBuilder();
            if (!inc.Reverse)
            {
                sb.Append("SELECT s.ref FROM search_ref s WHERE s.pid = @sp AND s.rid IN (");
                for (var i = 0; i < matches.Count; i++)
                {
                    sb.Append(i > 0 ? ", " : "").Append("@m").Append(i);
                    Add(cmd, "@m" + i, matches[i].Rid);
                }
                sb.Append(')');
            }
            else
            {
                sb.Append("SELECT r.res_id FROM search_ref s JOIN resources r ON r.rid = s.rid AND r.deleted = 0 WHERE s.pid = @sp AND s.ref IN (");
                for (var i = 0; i < matches.Count; i++)
                {
                    sb.Append(i > 0 ? ", " : "").Append("@m").Append(i);
                    Add(cmd, "@m" + i, matches[i].Type + "/" + matches[i].Id);
                }
                sb.Append(") LIMIT 5000");
            }
            cmd.CommandText = sb.ToString();
            Add(cmd, "@sp", Pid(inc.SourceType, inc.Param));
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var value = r.GetString(0);
                (string, string) key;
                if (inc.Reverse)
                {
                    key = (inc.SourceType, value);
                }
                else
                {
                    var slash = value.IndexOf('/', StringComparison.Ordinal);
                    key = (value[..slash], value[(slash + 1)..]);
                    if (inc.TargetType is not null && key.Item1 != inc.TargetType) continue;
                }
                if (!seen.Contains(key)) keys.Add(key);
            }
        }
        var found = await ReadCurrentManyAsync(keys, ct);
        return found.Values.Where(v => !v.Deleted).OrderBy(v => v.Type, StringComparer.Ordinal).ThenBy(v => v.Id, StringComparer.Ordinal).ToList();
    }

    /// <summary>Which of these resources exist (current version not deleted).</summary>
    public async Task<HashSet<(string Type, string Id)>> ExistingAsync(IReadOnlyCollection<(string Type, string Id)> keys, CancellationToken ct)
    {
        var set = new HashSet<(string, string)>();
        if (keys.Count == 0) return set;
        await using var c = await dialect.OpenAsync(ct);
        foreach (var (type, ids) in ByType(keys))
        {
            await using var cmd = c.CreateCommand();
            cmd.CommandText = "SELECT res_type, res_id FROM resources WHERE deleted = 0 AND res_type = @t AND res_id IN (" + InList(cmd, ids) + ")";
            Add(cmd, "@t", type);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) set.Add((r.GetString(0), r.GetString(1)));
        }
        return set;
    }

    /// <summary>A status that is a plain code (FHIR codes are [A-Za-z0-9-]); anything else is left out of the ledger.</summary>
    private static string? StatusCode(string? status) =>
        status is { Length: > 0 and <= 64 } && status.AsSpan().IndexOfAnyExcept(StatusChars) < 0 ? status : null;

    private static readonly System.Buffers.SearchValues<char> StatusChars =
        System.Buffers.SearchValues.Create("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-");

    /// <summary>
    /// Appends all versions atomically. Returns <see cref="WriteStatus.Conflict"/> (and writes
    /// nothing) if any resource's current version is no longer the expected one.
    /// </summary>
    public async Task<WriteResult> WriteAsync(IReadOnlyList<PendingWrite> writes, LedgerActor actor, CancellationToken ct)
    {
        if (writes.Count == 0) return new WriteResult(WriteStatus.Committed, null);
        integrity.EnsureWritable();
        // Each version's ledger entry is made here, on the caller's thread, and committed with the version.
        var at = DateTimeOffset.UtcNow;
        var rows = writes.Select(w => new LedgerRow(new LedgerEntry
        {
            Type = "write",
            At = at,
            Event = w.Deleted ? "delete" : w.ExpectedVersion == 0 ? "create" : "update",
            User = actor.User,
            Client = actor.Client,
            Patient = w.Patient is null ? null : "Patient/" + w.Patient,
            Resource = $"{w.Type}/{w.Id}/_history/{w.Version}",
            Sha256 = w.Sha256 is null ? null : Convert.ToHexStringLower(w.Sha256),
            // The version's workflow status (final, amended, confirmed, active, ...), a code and never content:
            // monitoring finds a change to a final diagnosis or an active prescription by it.
            Detail = !w.Deleted && StatusCode(w.Facts?.Status) is { } status ? "status=" + status : null,
            Source = actor.Source,
            Correlation = actor.Correlation,
        })).ToList();
        try
        {
            var done = await committer.RunAsync((c, tx, entries, ct2) =>
            {
                entries.AddRange(rows);
                return WriteUnitAsync(c, tx, writes, ct2);
            });
            return new WriteResult(done.Value, done.Receipt);
        }
        catch (WriteConflictException)
        {
            return new WriteResult(WriteStatus.Conflict, null);
        }
        catch (DbException ex) when (dialect.IsUniqueViolation(ex))
        {
            return new WriteResult(WriteStatus.Conflict, null);
        }
    }

    /// <summary>Thrown inside a unit to roll it back to its savepoint when a precondition no longer holds.</summary>
    private sealed class WriteConflictException : Exception;

    /// <summary>Runs inside the group commit; throws to have its own changes rolled back.</summary>
    private async Task<WriteStatus> WriteUnitAsync(DbConnection c, DbTransaction tx, IReadOnlyList<PendingWrite> writes, CancellationToken ct)
    {
        foreach (var chunk in writes.Where(w => w.NewWrappedKey is not null).Chunk(200))
        {
            await InsertRowsAsync(c, tx, "data_keys (res_type, res_id, kek_id, wrapped)", 4, chunk.Length, (i, add) =>
            {
                add(chunk[i].Type); add(chunk[i].Id); add(chunk[i].KekId!); add(chunk[i].NewWrappedKey!);
            }, ct);
        }
        foreach (var chunk in writes.Chunk(200))
        {
            await InsertRowsAsync(c, tx, "resource_versions (res_type, res_id, version, last_updated, deleted, body)", 6, chunk.Length, (i, add) =>
            {
                var w = chunk[i];
                add(w.Type); add(w.Id); add(w.Version); add(w.LastUpdated); add(w.Deleted ? 1 : 0); add(w.Body);
            }, ct);
        }

        // Each resource's internal row key: new ones are numbered by the database, updated ones keep theirs.
        var rids = new long[writes.Count];
        var creates = new List<int>();
        for (var i = 0; i < writes.Count; i++)
        {
            if (writes[i].ExpectedVersion == 0) creates.Add(i);
            else rids[i] = writes[i].Rid;
        }
        foreach (var chunk in creates.Chunk(200))
        {
            var created = await InsertReturningRidsAsync(c, tx, chunk.Select(i => writes[i]).ToList(), ct);
            for (var k = 0; k < chunk.Length; k++) rids[chunk[k]] = created[k];
        }

        var updated = new List<long>();
        for (var i = 0; i < writes.Count; i++)
        {
            var w = writes[i];
            if (w.ExpectedVersion == 0) continue;
            await using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "UPDATE resources SET version = @v, last_updated = @lu, deleted = @d WHERE rid = @r AND version = @e";
            Add(cmd, "@v", w.Version); Add(cmd, "@lu", w.LastUpdated); Add(cmd, "@d", w.Deleted ? 1 : 0);
            Add(cmd, "@r", w.Rid); Add(cmd, "@e", w.ExpectedVersion);
            if (w.Rid == 0 || await cmd.ExecuteNonQueryAsync(ct) != 1)
            {
                throw new WriteConflictException();
            }
            updated.Add(w.Rid);
        }
        await DeleteIndexRowsAsync(c, tx, updated, ct);

        await WriteFactsUnitAsync(c, tx, Enumerable.Range(0, writes.Count).Where(i => writes[i].Facts is not null)
            .Select(i => (rids[i], writes[i].Facts!)).ToList(), ct);

        await InsertIndexRowsAsync(c, tx, Enumerable.Range(0, writes.Count).Where(i => !writes[i].Deleted)
            .Select(i => (rids[i], writes[i].Type, writes[i].Index)), ct);
        return WriteStatus.Committed;
    }

    private static async Task DeleteIndexRowsAsync(DbConnection c, DbTransaction tx, IReadOnlyList<long> rids, CancellationToken ct)
    {
        foreach (var table in IndexTables)
        {
            foreach (var chunk in rids.Chunk(500))
            {
                await using var cmd = c.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = $"DELETE FROM {table} WHERE rid IN ({string.Join(", ", chunk.Select((_, i) => "@r" + i))})";
                for (var i = 0; i < chunk.Length; i++) Add(cmd, "@r" + i, chunk[i]);
                await cmd.ExecuteNonQueryAsync(ct);
            }
        }
    }

    private async Task InsertIndexRowsAsync(DbConnection c, DbTransaction tx, IEnumerable<(long Rid, string Type, IReadOnlyList<IndexEntry> Index)> resources, CancellationToken ct)
    {
        var tokens = new List<(int Pid, byte[] Hash, long Rid)>();
        var refs = new List<(int Pid, string Ref, long Rid)>();
        var dates = new List<(int Pid, long Lo, long Hi, long Rid)>();
        foreach (var (rid, type, index) in resources)
        {
            foreach (var e in index)
            {
                var pid = Pid(type, e.Param);
                if (e.Hash is not null) tokens.Add((pid, e.Hash, rid));
                else if (e.Ref is not null) refs.Add((pid, e.Ref, rid));
                else if (e.Lo is not null) dates.Add((pid, e.Lo.Value, e.Hi!.Value, rid));
            }
        }
        // Sorted rows walk each B-tree in order: fewer page visits than random order.
        tokens.Sort((a, b) => a.Pid != b.Pid ? a.Pid.CompareTo(b.Pid) : a.Hash.AsSpan().SequenceCompareTo(b.Hash));
        foreach (var chunk in tokens.Chunk(500))
        {
            await InsertRowsAsync(c, tx, "search_token (pid, hash, rid)", 3, chunk.Length, (i, add) =>
            {
                add(chunk[i].Pid); add(chunk[i].Hash); add(chunk[i].Rid);
            }, ct);
        }
        foreach (var chunk in refs.Chunk(500))
        {
            await InsertRowsAsync(c, tx, "search_ref (pid, ref, rid)", 3, chunk.Length, (i, add) =>
            {
                add(chunk[i].Pid); add(chunk[i].Ref); add(chunk[i].Rid);
            }, ct);
        }
        foreach (var chunk in dates.Chunk(500))
        {
            await InsertRowsAsync(c, tx, "search_date (pid, lo, hi, rid)", 4, chunk.Length, (i, add) =>
            {
                add(chunk[i].Pid); add(chunk[i].Lo); add(chunk[i].Hi); add(chunk[i].Rid);
            }, ct);
        }
    }

    /// <summary>Inserts the current-version rows of new resources and returns their row keys, in order.</summary>
    private async Task<long[]> InsertReturningRidsAsync(DbConnection c, DbTransaction tx, List<PendingWrite> rows, CancellationToken ct)
    {
        var rids = new long[rows.Count];
        if (dialect.InProcess)
        {
            await using var one = c.CreateCommand();
            one.Transaction = tx;
            one.CommandText = "INSERT INTO resources (res_type, res_id, version, last_updated, deleted) VALUES (@t, @i, @v, @lu, @d) RETURNING rid";
            var ps = new[] { "@t", "@i", "@v", "@lu", "@d" }.Select(n =>
            {
                var p = one.CreateParameter();
                p.ParameterName = n;
                one.Parameters.Add(p);
                return p;
            }).ToArray();
            one.Prepare();
            for (var k = 0; k < rows.Count; k++)
            {
                var w = rows[k];
                ps[0].Value = w.Type; ps[1].Value = w.Id; ps[2].Value = w.Version; ps[3].Value = w.LastUpdated; ps[4].Value = w.Deleted ? 1 : 0;
                rids[k] = Convert.ToInt64(await one.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
            }
            return rids;
        }
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        var sb = new StringBuilder("INSERT INTO resources (res_type, res_id, version, last_updated, deleted) VALUES ");
        for (var k = 0; k < rows.Count; k++)
        {
            var w = rows[k];
            sb.Append(k > 0 ? ", " : "").Append($"(@t{k}, @i{k}, @v{k}, @lu{k}, @d{k})");
            Add(cmd, "@t" + k, w.Type); Add(cmd, "@i" + k, w.Id); Add(cmd, "@v" + k, w.Version);
            Add(cmd, "@lu" + k, w.LastUpdated); Add(cmd, "@d" + k, w.Deleted ? 1 : 0);
        }
        cmd.CommandText = sb.Append(" RETURNING res_type, res_id, rid").ToString();
        var byKey = new Dictionary<(string, string), long>();
        await using (var r = await cmd.ExecuteReaderAsync(ct))
        {
            while (await r.ReadAsync(ct)) byKey[(r.GetString(0), r.GetString(1))] = r.GetInt64(2);
        }
        for (var k = 0; k < rows.Count; k++) rids[k] = byKey[(rows[k].Type, rows[k].Id)];
        return rids;
    }

    /// <summary>Replaces the access facts and care relations of these resources.</summary>
    private async Task WriteFactsUnitAsync(DbConnection c, DbTransaction tx, List<(long Rid, FactsRow Facts)> rows, CancellationToken ct)
    {
        if (rows.Count == 0) return;
        foreach (var table in (string[])["access_facts", "care_relations"])
        {
            foreach (var chunk in rows.Chunk(500))
            {
                await using var cmd = c.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = $"DELETE FROM {table} WHERE rid IN ({string.Join(", ", chunk.Select((_, i) => "@r" + i))})";
                for (var i = 0; i < chunk.Length; i++) Add(cmd, "@r" + i, chunk[i].Rid);
                await cmd.ExecuteNonQueryAsync(ct);
            }
        }
        foreach (var chunk in rows.Chunk(300))
        {
            await InsertRowsAsync(c, tx, "access_facts (rid, department, encounter, patient, labels, status, restricted, research_consent, staff_user)", 9, chunk.Length, (i, add) =>
            {
                var (rid, f) = chunk[i];
                add(rid); add(f.Department); add(f.Encounter); add(f.Patient); add(f.Labels); add(f.Status);
                add(f.Restricted ? 1 : 0); add(f.ResearchConsent ? 1 : 0); add(f.StaffUser);
            }, ct);
        }
        var relations = rows.SelectMany(r => r.Facts.CareRelations.Select(cr => (r.Rid, cr))).ToList();
        foreach (var chunk in relations.Chunk(400))
        {
            await InsertRowsAsync(c, tx, "care_relations (rid, practitioner, patient, kind, from_at, until_at)", 6, chunk.Length, (i, add) =>
            {
                var (rid, cr) = chunk[i];
                add(rid); add(cr.Practitioner); add(cr.Patient); add(cr.Kind); add(cr.From); add(cr.Until);
            }, ct);
        }
    }

    /// <summary>Patients a practitioner cares for (encounters, care teams, episodes): relations open or ended after <paramref name="since"/> (unix s).</summary>
    public async Task<HashSet<string>> CarePatientsAsync(string practitioner, long since, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT DISTINCT cr.patient FROM care_relations cr JOIN resources r ON r.rid = cr.rid WHERE r.deleted = 0 AND cr.practitioner = @p AND cr.kind IN " + CareRelation.CaringKindsSql + " AND (cr.until_at IS NULL OR cr.until_at > @s)";
        Add(cmd, "@p", practitioner);
        Add(cmd, "@s", since);
        var set = new HashSet<string>(StringComparer.Ordinal);
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) set.Add(r.GetString(0));
        return set;
    }

    /// <summary>Stores facts for resources written before access facts existed (see <see cref="MissingFactsAsync"/>).</summary>
    public Task WriteFactsAsync(List<(long Rid, FactsRow Facts)> rows, CancellationToken ct) =>
        committer.RunAsync(async (c, tx, token) =>
        {
            await WriteFactsUnitAsync(c, tx, rows, token);
            return rows.Count;
        });

    /// <summary>Resource types with a search parameter registered after some of their resources were stored.</summary>
    public async Task<List<string>> PendingReindexAsync(CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT DISTINCT res_type FROM search_params WHERE pending = 1 ORDER BY res_type";
        var list = new List<string>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(r.GetString(0));
        return list;
    }

    /// <summary>Current versions of up to <paramref name="limit"/> live resources of a type after row key <paramref name="afterRid"/>, in row-key order.</summary>
    public async Task<List<StoredVersion>> CurrentOfTypeAsync(string type, long afterRid, int limit, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = SelectCurrent + "WHERE r.res_type = @t AND r.deleted = 0 AND r.rid > @after ORDER BY r.rid LIMIT @lim";
        Add(cmd, "@t", type);
        Add(cmd, "@after", afterRid);
        Add(cmd, "@lim", limit);
        var list = new List<StoredVersion>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(Map(r));
        return list;
    }

    /// <summary>
    /// Replaces the search index rows and access facts of these resources (their versions are untouched), each only if the
    /// resource is still at the version they were derived from: a resource updated or deleted meanwhile keeps what its own
    /// write derived. The rows are locked first on PostgreSQL (a concurrent write waits, or is waited for and then skipped);
    /// SQLite has one writer. Returns how many resources were re-derived.
    /// </summary>
    public Task<int> ReindexAsync(List<(long Rid, int Version, string Type, IReadOnlyList<IndexEntry> Index, FactsRow Facts)> rows, CancellationToken ct) =>
        committer.RunAsync(async (c, tx, token) =>
        {
            if (rows.Count == 0) return 0;
            var current = new HashSet<(long, int)>();
            foreach (var chunk in rows.Chunk(500))
            {
                await using var cmd = c.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = $"SELECT rid, version FROM resources WHERE deleted = 0 AND rid IN ({string.Join(", ", chunk.Select((_, i) => "@r" + i))})"
                    // A row locked by a write is being derived again by that write: skipped, not waited for (no lock-order deadlock).
                    + (dialect.InProcess ? "" : " FOR UPDATE SKIP LOCKED");
                for (var i = 0; i < chunk.Length; i++) Add(cmd, "@r" + i, chunk[i].Rid);
                await using var r = await cmd.ExecuteReaderAsync(token);
                while (await r.ReadAsync(token)) current.Add((r.GetInt64(0), Convert.ToInt32(r.GetValue(1), CultureInfo.InvariantCulture)));
            }
            var still = rows.Where(r => current.Contains((r.Rid, r.Version))).ToList();
            await DeleteIndexRowsAsync(c, tx, [.. still.Select(r => r.Rid)], token);
            await WriteFactsUnitAsync(c, tx, [.. still.Select(r => (r.Rid, r.Facts))], token);
            await InsertIndexRowsAsync(c, tx, still.Select(r => (r.Rid, r.Type, r.Index)), token);
            return still.Count;
        });

    /// <summary>Marks a type's parameters as indexed for every stored resource.</summary>
    public Task ReindexedAsync(string type, CancellationToken ct) =>
        committer.RunAsync(async (c, tx, token) =>
        {
            await using var cmd = c.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "UPDATE search_params SET pending = 0 WHERE res_type = @t";
            Add(cmd, "@t", type);
            return await cmd.ExecuteNonQueryAsync(token);
        });

    /// <summary>Current versions of up to <paramref name="limit"/> resources that have no access facts yet.</summary>
    public async Task<List<StoredVersion>> MissingFactsAsync(int limit, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = SelectCurrent + "WHERE r.deleted = 0 AND NOT EXISTS (SELECT 1 FROM access_facts f WHERE f.rid = r.rid) ORDER BY r.rid LIMIT @lim";
        Add(cmd, "@lim", limit);
        var list = new List<StoredVersion>();
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) list.Add(Map(r));
        return list;
    }

    /// <summary>
    /// The stored access facts of these resources, each with its effective departments resolved (own;
    /// else its encounter's; else, without an encounter, every department treating its patient) and its
    /// patient's flags. A resource without facts is absent from the result.
    /// </summary>
    public async Task<Dictionary<(string Type, string Id), StoredFacts>> ReadFactsAsync(IReadOnlyCollection<(string Type, string Id)> keys, CancellationToken ct)
    {
        var result = new Dictionary<(string, string), StoredFacts>();
        if (keys.Count == 0) return result;
        if (keys.Count == 1 && dialect.InProcess)
        {
            // The single-resource decision of every read: a kept, prepared statement, like the read itself.
            var (type, id) = keys.First();
            if (await ReadFactsPreparedAsync(type, id, ct) is { } one) result[(type, id)] = one;
            return result;
        }
        await using var c = await dialect.OpenAsync(ct);
        foreach (var (type, ids) in ByType(keys))
        {
            await using var cmd = c.CreateCommand();
            cmd.CommandText = FactsSelect + "WHERE r.res_type = @t AND r.res_id IN (" + InList(cmd, ids) + ")";
            Add(cmd, "@t", type);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) result[(type, r.GetString(0))] = MapFacts(r);
        }
        return result;
    }

    private readonly System.Collections.Concurrent.ConcurrentBag<PreparedRead> _factReaders = [];

    private Task<StoredFacts?> ReadFactsPreparedAsync(string type, string id, CancellationToken ct) =>
        WithPreparedAsync(_factReaders, FactsSelect + "WHERE r.res_type = @t AND r.res_id = @i", type, id, async (cmd, token) =>
        {
            await using var r = await cmd.ExecuteReaderAsync(token);
            return await r.ReadAsync(token) ? MapFacts(r) : null;
        }, ct);

    private string FactsSelect =>
        "SELECT r.res_id, f.department, f.encounter, f.patient, f.labels, f.status, " +
        "(SELECT ef.department FROM resources er JOIN access_facts ef ON ef.rid = er.rid WHERE er.res_type = 'Encounter' AND er.res_id = f.encounter), " +
        "CASE WHEN f.department IS NULL AND f.encounter IS NULL THEN (SELECT " +
        (dialect.Name == "sqlite" ? "group_concat(x.department, '|')" : "string_agg(x.department, '|')") +
        " FROM (SELECT DISTINCT pd.department FROM access_facts pd JOIN resources pdr ON pdr.rid = pd.rid WHERE pdr.deleted = 0 AND pd.patient = f.patient AND pd.department IS NOT NULL) x) END, " +
        "p.restricted, p.research_consent, p.staff_user " +
        "FROM resources r JOIN access_facts f ON f.rid = r.rid " +
        "LEFT JOIN resources pr ON pr.res_type = 'Patient' AND pr.res_id = f.patient LEFT JOIN access_facts p ON p.rid = pr.rid ";

    private static StoredFacts MapFacts(DbDataReader r)
    {
        string? S(int i) => r.IsDBNull(i) ? null : r.GetString(i);
        IReadOnlyList<string> departments = S(1) is { } own ? [own]
            : S(2) is not null ? (S(6) is { } enc ? [enc] : [])
            : S(7) is { } list ? list.Split('|') : [];
        return new StoredFacts(departments, S(3), S(4) ?? "", S(5),
            !r.IsDBNull(8) && Convert.ToInt32(r.GetValue(8), System.Globalization.CultureInfo.InvariantCulture) == 1,
            !r.IsDBNull(9) && Convert.ToInt32(r.GetValue(9), System.Globalization.CultureInfo.InvariantCulture) == 1,
            S(10));
    }

    /// <summary>
    /// Re-wraps up to <paramref name="batch"/> data keys not yet under <paramref name="activeKekId"/>.
    /// Each row is updated only if it is unchanged since it was read. Returns how many were re-wrapped.
    /// </summary>
    public async Task<int> RewrapBatchAsync(string activeKekId, Func<string, string, byte[], byte[]> rewrap, int batch, CancellationToken ct)
    {
        var rows = new List<(string Type, string Id, string Kek, byte[] Wrapped)>();
        await using (var c = await dialect.OpenAsync(ct))
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT res_type, res_id, kek_id, wrapped FROM data_keys WHERE kek_id <> @k LIMIT @n";
            Add(cmd, "@k", activeKekId);
            Add(cmd, "@n", batch);
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) rows.Add((r.GetString(0), r.GetString(1), r.GetString(2), (byte[])r.GetValue(3)));
        }
        if (rows.Count == 0) return 0;
        await using var gate = await dialect.EnterWriteAsync(ct);
        await using var conn = await dialect.OpenAsync(ct);
        await using var tx = await dialect.BeginWriteTransactionAsync(conn, ct);
        var done = 0;
        foreach (var row in rows)
        {
            await using var cmd = conn.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "UPDATE data_keys SET kek_id = @nk, wrapped = @w WHERE res_type = @t AND res_id = @i AND kek_id = @ok";
            Add(cmd, "@nk", activeKekId);
            Add(cmd, "@w", rewrap(row.Type, row.Id, row.Wrapped));
            Add(cmd, "@t", row.Type);
            Add(cmd, "@i", row.Id);
            Add(cmd, "@ok", row.Kek);
            done += await cmd.ExecuteNonQueryAsync(ct);
        }
        await tx.CommitAsync(ct);
        return done;
    }

    /// <summary>
    /// Re-wraps every key in <paramref name="column"/> whose wrapping KEK (<paramref name="kekOf"/>) is not
    /// <paramref name="activeKekId"/>, <paramref name="batch"/> rows to a write transaction. <paramref name="rewrap"/>
    /// gets the wrapped key and its context. A row is updated only if its key is unchanged since it was read, so a
    /// concurrent write wins and the next pass looks again. Returns how many were re-wrapped.
    /// </summary>
    public async Task<int> RewrapColumnAsync(WrappedKeyColumn column, string activeKekId, Func<byte[], string> kekOf,
        Func<byte[], byte[], byte[]> rewrap, int batch, CancellationToken ct)
    {
        var ids = column.IdColumns;
        var rows = new List<(object[] Ids, byte[] Wrapped)>();
        await using (var c = await dialect.OpenAsync(ct))
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = $"SELECT {string.Join(", ", ids)}, {column.KeyColumn} FROM {column.Table} WHERE {column.KeyColumn} IS NOT NULL";
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct))
            {
                var wrapped = (byte[])r.GetValue(ids.Count);
                if (string.Equals(kekOf(wrapped), activeKekId, StringComparison.Ordinal)) continue;
                var values = new object[ids.Count];
                for (var i = 0; i < ids.Count; i++) values[i] = r.GetValue(i);
                rows.Add((values, wrapped));
            }
        }
        var where = string.Join(" AND ", ids.Select((name, i) => $"{name} = @i{i}"));
        var done = 0;
        foreach (var chunk in rows.Chunk(Math.Max(1, batch)))
        {
            await using var gate = await dialect.EnterWriteAsync(ct);
            await using var conn = await dialect.OpenAsync(ct);
            await using var tx = await dialect.BeginWriteTransactionAsync(conn, ct);
            foreach (var row in chunk)
            {
                await using var cmd = conn.CreateCommand();
                cmd.Transaction = tx;
                cmd.CommandText = $"UPDATE {column.Table} SET {column.KeyColumn} = @w WHERE {where} AND {column.KeyColumn} = @ow";
                Add(cmd, "@w", rewrap(row.Wrapped, column.Context(row.Ids)));
                for (var i = 0; i < ids.Count; i++) Add(cmd, "@i" + i.ToString(CultureInfo.InvariantCulture), row.Ids[i]);
                Add(cmd, "@ow", row.Wrapped);
                done += await cmd.ExecuteNonQueryAsync(ct);
            }
            await tx.CommitAsync(ct);
        }
        return done;
    }

    /// <summary>
    /// Re-wraps the data keys sealed inside the console's Data Protection key XML (dataprotection_keys.xml, see
    /// Console/KeyringXmlEncryptor.cs) that are not under <paramref name="activeKekId"/>, rewriting the element.
    /// A row is updated only if its XML is unchanged since it was read. Returns how many keys were re-wrapped.
    /// </summary>
    public async Task<int> RewrapDataProtectionKeysAsync(string activeKekId, Func<byte[], string> kekOf,
        Func<byte[], byte[], byte[]> rewrap, CancellationToken ct)
    {
        var rows = new List<(string Name, string Xml)>();
        await using (var c = await dialect.OpenAsync(ct))
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT name, xml FROM dataprotection_keys";
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) rows.Add((r.GetString(0), r.GetString(1)));
        }
        var done = 0;
        foreach (var (name, xml) in rows)
        {
            var element = System.Xml.Linq.XElement.Parse(xml);
            var changed = 0;
            foreach (var wrappedKey in element.Descendants(Wardline.Server.Modules.Console.KeyringXmlEncryptor.WrappedKeyName))
            {
                var wrapped = Convert.FromBase64String(wrappedKey.Value);
                if (string.Equals(kekOf(wrapped), activeKekId, StringComparison.Ordinal)) continue;
                wrappedKey.Value = Convert.ToBase64String(rewrap(wrapped, WrappedKeyColumns.DataProtectionContext));
                changed++;
            }
            if (changed == 0) continue;
            await using var gate = await dialect.EnterWriteAsync(ct);
            await using var conn = await dialect.OpenAsync(ct);
            await using var tx = await dialect.BeginWriteTransactionAsync(conn, ct);
            await using var cmd = conn.CreateCommand();
            cmd.Transaction = tx;
            cmd.CommandText = "UPDATE dataprotection_keys SET xml = @x WHERE name = @n AND xml = @ox";
            Add(cmd, "@x", element.ToString(System.Xml.Linq.SaveOptions.DisableFormatting));
            Add(cmd, "@n", name);
            Add(cmd, "@ox", xml);
            if (await cmd.ExecuteNonQueryAsync(ct) == 1) done += changed;
            await tx.CommitAsync(ct);
        }
        return done;
    }

    public async Task<long> CountAsync(string sql, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = sql;
        return Convert.ToInt64(await cmd.ExecuteScalarAsync(ct), System.Globalization.CultureInfo.InvariantCulture);
    }

    private Task InsertRowsAsync(DbConnection c, DbTransaction tx, string target, int columns, int rowCount, Action<int, Action<object?>> fill, CancellationToken ct) =>
        dialect.InsertRowsAsync(c, tx, target, columns, rowCount, fill, ct);

    private static async Task<StoredVersion?> ReadOneAsync(DbCommand cmd, CancellationToken ct)
    {
        await using var r = await cmd.ExecuteReaderAsync(ct);
        return await r.ReadAsync(ct) ? Map(r) : null;
    }

    private static StoredVersion Map(DbDataReader r) => new(
        r.GetString(0),
        r.GetString(1),
        r.GetInt32(2),
        r.GetInt64(3),
        r.GetInt32(4) != 0,
        r.IsDBNull(5) ? null : (byte[])r.GetValue(5),
        (byte[])r.GetValue(6),
        r.GetInt64(7));

    internal static void Add(DbCommand cmd, string name, object? value) => Migrations.AddParam(cmd, name, value);

}

/// <summary>A resource's stored access facts with its effective departments and its patient's flags resolved.</summary>
internal sealed record StoredFacts(
    IReadOnlyList<string> Departments, string? Patient, string Labels, string? Status, bool PatientRestricted, bool PatientResearchConsent, string? PatientStaffUser);
