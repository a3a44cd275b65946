using System.Data.Common;
using Npgsql;
using NpgsqlTypes;
using Wardline.Ledger;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Ledger;

/// <summary>An append made inside a group's transaction; the tree becomes the cached edge once it commits.</summary>
internal sealed record LedgerAppend(long First, CompactTree Tree);

/// <summary>
/// Appends entries to the Merkle tree inside the group commit's transaction. The tree's size and root
/// live in one row of <c>ledger_state</c>, read with a row lock, so appends from several servers on one
/// PostgreSQL are sequenced by the database: each group takes the next indexes, in one order. The tree's
/// right edge (frontier) is cached between groups and reloaded from the stored subtree hashes whenever
/// another server appended in between or a commit failed.
/// </summary>
internal sealed class LedgerAppender(SqlDialect dialect)
{
    private CompactTree? _cached;

    /// <summary>Stores <paramref name="rows"/> as the next entries; the caller commits.</summary>
    public async Task<LedgerAppend> AppendAsync(DbConnection c, DbTransaction tx, IReadOnlyList<LedgerRow> rows, CancellationToken ct)
    {
        // The row lock is what sequences servers; SQLite's write transaction already excludes every other writer.
        var (size, root) = await LedgerNodes.ReadStateAsync(c, tx, forUpdate: !dialect.InProcess, ct);
        var tree = _cached is { } cached && cached.Size == size ? cached.Clone() : await LedgerNodes.FrontierAsync(c, tx, size, ct);
        if (!tree.Root().AsSpan().SequenceEqual(root))
        {
            throw new LedgerCorruptException($"The ledger's stored subtree hashes do not give its recorded root at size {size}; run 'wardline ledger verify'.");
        }

        var first = size;
        var completed = new List<(int Level, long Index, byte[] Hash)>();
        foreach (var row in rows)
        {
            tree.Append(row.Leaf, (level, index, hash) =>
            {
                if (LedgerNodes.IsStored(level)) completed.Add((level, index, hash));
            });
        }

        if (c is NpgsqlConnection pg)
        {
            await CopyEntriesAsync(pg, rows, first, ct);
        }
        else
        {
            foreach (var chunk in rows.Select((r, i) => (Row: r, Index: first + i)).Chunk(500))
            {
                await dialect.InsertRowsAsync(c, tx, Columns, 23, chunk.Length, (i, add) =>
                {
                    var (r, idx) = chunk[i];
                    var e = r.Entry;
                    add(idx); add(e.At.ToUnixTimeMilliseconds()); add(e.Type); add(e.Event); add(e.User); add(e.Client); add(e.Actor);
                    add(e.Patient); add(e.Resource); add(r.ResType); add(r.ResId); add(r.Version); add(e.Action); add(e.Purpose);
                    add(e.Permitted is { } p ? (p ? 1 : 0) : null); add(e.Rule); add(e.Status); add(e.Outcome); add(e.Detail);
                    add(e.Correlation); add(e.Source); add(r.Bytes); add(r.Leaf);
                }, ct);
            }
        }
        foreach (var chunk in completed.Chunk(500))
        {
            await dialect.InsertRowsAsync(c, tx, "ledger_nodes (level, idx, hash)", 3, chunk.Length, (i, add) =>
            {
                add(chunk[i].Level); add(chunk[i].Index); add(chunk[i].Hash);
            }, ct);
        }
        await using (var cmd = c.CreateCommand())
        {
            cmd.Transaction = tx;
            cmd.CommandText = "UPDATE ledger_state SET size = @s, root = @r WHERE id = 1 AND size = @was";
            Migrations.AddParam(cmd, "@s", tree.Size);
            Migrations.AddParam(cmd, "@r", tree.Root());
            Migrations.AddParam(cmd, "@was", size);
            if (await cmd.ExecuteNonQueryAsync(ct) != 1) throw new LedgerCorruptException("The ledger's state changed while it was locked.");
        }
        return new LedgerAppend(first, tree);
    }

    /// <summary>
    /// On PostgreSQL the group's entries go in one <c>COPY ... FROM STDIN (FORMAT BINARY)</c> on the group's transaction:
    /// no statement text to parse and plan for each group and no parameter for each value. The multi-row INSERT it
    /// replaces was most of a group's time there (2.3 ms of 3.2 ms for 64 entries, docs/benchmarks.md). Triggers and
    /// constraints apply as they do to an INSERT, and a failure fails the group's transaction the same way.
    /// </summary>
    private static async Task CopyEntriesAsync(NpgsqlConnection c, IReadOnlyList<LedgerRow> rows, long first, CancellationToken ct)
    {
        await using var copy = await c.BeginBinaryImportAsync("COPY " + Columns + " FROM STDIN (FORMAT BINARY)", ct);
        for (var i = 0; i < rows.Count; i++)
        {
            var r = rows[i];
            var e = r.Entry;
            await copy.StartRowAsync(ct);
            await copy.WriteAsync(first + i, NpgsqlDbType.Bigint, ct);
            await copy.WriteAsync(e.At.ToUnixTimeMilliseconds(), NpgsqlDbType.Bigint, ct);
            foreach (var text in (string?[])[e.Type, e.Event, e.User, e.Client, e.Actor, e.Patient, e.Resource, r.ResType, r.ResId])
            {
                await WriteAsync(copy, text, ct);
            }
            await WriteAsync(copy, r.Version, NpgsqlDbType.Integer, ct);
            await WriteAsync(copy, e.Action, ct);
            await WriteAsync(copy, e.Purpose, ct);
            await WriteAsync<short>(copy, e.Permitted is { } p ? (short)(p ? 1 : 0) : null, NpgsqlDbType.Smallint, ct);
            await WriteAsync(copy, e.Rule, ct);
            await WriteAsync(copy, e.Status, NpgsqlDbType.Integer, ct);
            foreach (var text in (string?[])[e.Outcome, e.Detail, e.Correlation, e.Source])
            {
                await WriteAsync(copy, text, ct);
            }
            await copy.WriteAsync(r.Bytes, NpgsqlDbType.Bytea, ct);
            await copy.WriteAsync(r.Leaf, NpgsqlDbType.Bytea, ct);
        }
        await copy.CompleteAsync(ct);
    }

    private static Task WriteAsync(NpgsqlBinaryImporter copy, string? text, CancellationToken ct) =>
        text is null ? copy.WriteNullAsync(ct) : copy.WriteAsync(text, NpgsqlDbType.Text, ct);

    private static Task WriteAsync<T>(NpgsqlBinaryImporter copy, T? value, NpgsqlDbType type, CancellationToken ct)
        where T : struct =>
        value is { } v ? copy.WriteAsync(v, type, ct) : copy.WriteNullAsync(ct);

    internal const string Columns =
        "ledger_entries (idx, at, type, event, user_name, client, actor, patient, resource, res_type, res_id, version, action, purpose, " +
        "permitted, rule, status, outcome, detail, correlation, source, entry, leaf)";

    /// <summary>The append committed: its tree is the edge the next group starts from.</summary>
    public void Committed(LedgerAppend append) => _cached = append.Tree;

    /// <summary>The append's transaction did not commit: forget the edge, reload it next time.</summary>
    public void Abandoned() => _cached = null;
}

/// <summary>The stored ledger does not hang together; appending on top of it would bury the damage.</summary>
internal sealed class LedgerCorruptException(string message) : Exception(message);
