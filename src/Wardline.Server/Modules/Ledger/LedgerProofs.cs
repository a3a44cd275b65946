using System.Collections.Concurrent;
using System.Data.Common;
using Wardline.Ledger;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Ledger;

/// <summary>An inclusion proof: the entry's leaf hash, the audit path (leaf side first) and the root of the tree of <see cref="Size"/> entries.</summary>
internal sealed record InclusionProof(long Index, long Size, byte[] LeafHash, IReadOnlyList<byte[]> Hashes, byte[] Root);

/// <summary>A consistency proof between the trees of <see cref="First"/> and <see cref="Second"/> entries, with both roots.</summary>
internal sealed record ConsistencyProof(long First, long Second, IReadOnlyList<byte[]> Hashes, byte[] FirstRoot, byte[] SecondRoot);

/// <summary>Builds proofs from the stored subtree hashes (RFC 9162 §2.1.3 and §2.1.4); sizes are checked against the committed tree.</summary>
internal sealed class LedgerProofs(SqlDialect dialect)
{
    // The upper stored levels, kept across proofs (they never change); loaded whole on first use.
    private readonly ConcurrentDictionary<(int, long), byte[]> _upper = new();
    private volatile bool _loaded;

    private async Task<(DbConnection Connection, long Size)> OpenAsync(CancellationToken ct)
    {
        var c = await dialect.OpenAsync(ct);
        if (!_loaded)
        {
            await LedgerNodes.LoadUpperAsync(c, _upper, ct);
            _loaded = true;
        }
        return (c, (await LedgerNodes.ReadStateAsync(c, null, forUpdate: false, ct)).Size);
    }

    /// <summary>The proof, or why the request is out of range (a 400 for the caller).</summary>
    public async Task<(InclusionProof? Proof, string? Problem)> InclusionAsync(long index, long size, CancellationToken ct)
    {
        var (c, current) = await OpenAsync(ct);
        await using var _ = c;
        if (size < 1 || size > current) return (null, $"size must be between 1 and the ledger's size ({current}).");
        if (index < 0 || index >= size) return (null, $"index must be between 0 and size - 1 ({size - 1}).");
        var ranges = MerkleTree.InclusionRanges(index, size).Append(new MerkleTree.Range(index, index + 1)).Append(new MerkleTree.Range(0, size)).ToList();
        var hashes = await LedgerNodes.RangeHashesAsync(c, null, ranges, _upper, ct);
        return (new InclusionProof(index, size, hashes[^2], hashes[..^2], hashes[^1]), null);
    }

    public async Task<(ConsistencyProof? Proof, string? Problem)> ConsistencyAsync(long first, long second, CancellationToken ct)
    {
        var (c, current) = await OpenAsync(ct);
        await using var _ = c;
        if (second < 1 || second > current) return (null, $"second must be between 1 and the ledger's size ({current}).");
        if (first < 1 || first > second) return (null, "first must be between 1 and second.");
        var ranges = MerkleTree.ConsistencyRanges(first, second).Append(new MerkleTree.Range(0, first)).Append(new MerkleTree.Range(0, second)).ToList();
        var hashes = await LedgerNodes.RangeHashesAsync(c, null, ranges, _upper, ct);
        return (new ConsistencyProof(first, second, hashes[..^2], hashes[^2], hashes[^1]), null);
    }

    /// <summary>The canonical bytes of one entry, for a client that holds a receipt and wants to check its leaf.</summary>
    public async Task<byte[]?> EntryAsync(long index, CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        await using var cmd = c.CreateCommand();
        cmd.CommandText = "SELECT entry FROM ledger_entries WHERE idx = @i";
        Migrations.AddParam(cmd, "@i", index);
        return await cmd.ExecuteScalarAsync(ct) as byte[];
    }
}
