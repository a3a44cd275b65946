using System.Collections.Concurrent;
using System.Data.Common;
using Wardline.Ledger;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Ledger;

/// <summary>
/// The one place that reads the ledger's tree from the store: its recorded state, its signed heads, and subtree
/// hashes. Leaves are kept with their entries; of the complete subtrees above them only
/// every fourth level is stored (1/15 of a row per entry), and any other complete subtree is folded from
/// at most 8 stored ones below it. So an inclusion or consistency proof, or the tree's edge, costs one
/// query per stored level and a few hundred hashes, at any size.
/// </summary>
internal static class LedgerNodes
{
    public const int Stride = 4;

    public static bool IsStored(int level) => level > 0 && level % Stride == 0;

    /// <summary>The lowest stored level worth keeping in memory for proofs.</summary>
    public const int CachedFrom = 8;

    /// <summary>Every stored hash from <see cref="CachedFrom"/> up, for a proof cache's first use.</summary>
    public static async Task LoadUpperAsync(DbConnection c, ConcurrentDictionary<(int, long), byte[]> upper, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.CommandText = $"SELECT level, idx, hash FROM ledger_nodes WHERE level >= {CachedFrom}";
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct)) upper.TryAdd((r.GetInt32(0), r.GetInt64(1)), (byte[])r.GetValue(2));
    }

    /// <summary>The tree's size and root as recorded; <paramref name="forUpdate"/> takes the row lock that sequences appends (PostgreSQL).</summary>
    public static async Task<(long Size, byte[] Root)> ReadStateAsync(DbConnection c, DbTransaction? tx, bool forUpdate, CancellationToken ct)
    {
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "SELECT size, root FROM ledger_state WHERE id = 1" + (forUpdate ? " FOR UPDATE" : "");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        if (!await r.ReadAsync(ct)) throw new LedgerCorruptException("The ledger's state row is missing.");
        return (r.GetInt64(0), (byte[])r.GetValue(1));
    }

    /// <summary>The heads the database signed (its copies of what the witness holds), oldest first, or only the newest.</summary>
    public static async Task<List<TreeHead>> ReadHeadsAsync(DbConnection c, DbTransaction? tx, bool newestOnly, CancellationToken ct)
    {
        var heads = new List<TreeHead>();
        await using var cmd = c.CreateCommand();
        cmd.Transaction = tx;
        cmd.CommandText = "SELECT size, root, at, key_id, signature FROM ledger_heads ORDER BY size" + (newestOnly ? " DESC LIMIT 1" : "");
        await using var r = await cmd.ExecuteReaderAsync(ct);
        while (await r.ReadAsync(ct))
        {
            heads.Add(new TreeHead(r.GetInt64(0), (byte[])r.GetValue(1), DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(2)), r.GetString(3), (byte[])r.GetValue(4)));
        }
        return heads;
    }

    /// <summary>The tree of the first <paramref name="size"/> entries, ready to append to.</summary>
    public static async Task<CompactTree> FrontierAsync(DbConnection c, DbTransaction? tx, long size, CancellationToken ct)
    {
        if (size == 0) return new CompactTree();
        var parts = CompactTree.FrontierOf(size);
        var hashes = await CompleteAsync(c, tx, parts, ct);
        return new CompactTree(size, [.. parts.Select(p => hashes[p])]);
    }

    /// <summary>MTH(D[start:end]) for each range, from stored hashes.</summary>
    public static async Task<List<byte[]>> RangeHashesAsync(
        DbConnection c, DbTransaction? tx, IReadOnlyList<MerkleTree.Range> ranges, ConcurrentDictionary<(int, long), byte[]>? upper, CancellationToken ct)
    {
        var needed = ranges.SelectMany(r => MerkleTree.CompleteSubtrees(r.Start, r.End)).Distinct().ToList();
        var hashes = await CompleteAsync(c, tx, needed, ct, upper);
        return [.. ranges.Select(r => MerkleTree.RangeHash(r.Start, r.End, (level, index) => hashes[(level, index)]))];
    }

    /// <summary>The hashes of complete subtrees (level, index), each folded from the stored level at or below it.</summary>
    /// <remarks>
    /// <paramref name="upper"/>, when given, keeps the stored hashes from level <see cref="CachedFrom"/> up (1/255 of a hash per
    /// entry: 1.25 MB at 10 million entries). A stored subtree hash never changes once written, so it may be kept.
    /// </remarks>
    public static async Task<Dictionary<(int Level, long Index), byte[]>> CompleteAsync(
        DbConnection c, DbTransaction? tx, IReadOnlyCollection<(int Level, long Index)> subtrees, CancellationToken ct,
        ConcurrentDictionary<(int, long), byte[]>? upper = null)
    {
        // Which stored hashes each subtree needs: 2^(level - base) consecutive ones at its base level.
        var wanted = new Dictionary<int, HashSet<long>>();
        foreach (var (level, index) in subtrees)
        {
            var b = level - level % Stride;
            var width = 1L << (level - b);
            var set = wanted.TryGetValue(b, out var s) ? s : wanted[b] = [];
            for (var i = index * width; i < (index + 1) * width; i++) set.Add(i);
        }
        var stored = new Dictionary<(int, long), byte[]>();
        if (upper is not null)
        {
            foreach (var (b, indexes) in wanted.Where(w => w.Key >= CachedFrom))
            {
                indexes.RemoveWhere(i =>
                {
                    if (!upper.TryGetValue((b, i), out var h)) return false;
                    stored[(b, i)] = h;
                    return true;
                });
            }
        }
        foreach (var (b, indexes) in wanted)
        {
            foreach (var chunk in indexes.Order().Chunk(400))
            {
                await using var cmd = c.CreateCommand();
                cmd.Transaction = tx;
                var list = string.Join(", ", chunk.Select((_, i) => "@i" + i));
                cmd.CommandText = b == 0
                    ? $"SELECT idx, leaf FROM ledger_entries WHERE idx IN ({list})"
                    : $"SELECT idx, hash FROM ledger_nodes WHERE level = {b} AND idx IN ({list})";
                for (var i = 0; i < chunk.Length; i++) Migrations.AddParam(cmd, "@i" + i, chunk[i]);
                await using var r = await cmd.ExecuteReaderAsync(ct);
                while (await r.ReadAsync(ct))
                {
                    var hash = (byte[])r.GetValue(1);
                    stored[(b, r.GetInt64(0))] = hash;
                    if (upper is not null && b >= CachedFrom) upper.TryAdd((b, r.GetInt64(0)), hash);
                }
            }
        }
        var result = new Dictionary<(int Level, long Index), byte[]>();
        foreach (var (level, index) in subtrees)
        {
            result[(level, index)] = Fold(level, index, stored);
        }
        return result;
    }

    private static byte[] Fold(int level, long index, Dictionary<(int, long), byte[]> stored)
    {
        var b = level - level % Stride;
        if (level == b)
        {
            return stored.TryGetValue((b, index), out var h) ? h
                : throw new LedgerCorruptException($"The ledger is missing the stored hash of subtree {index} at level {b}.");
        }
        return MerkleHash.Node(Fold(level - 1, index * 2, stored), Fold(level - 1, index * 2 + 1, stored));
    }
}
