namespace Wardline.Ledger.Tests;

/// <summary>
/// A tree built the way the ledger builds one: leaf hashes appended to a <see cref="CompactTree"/>, keeping
/// every complete subtree it reports, and proofs made from <see cref="MerkleTree"/>'s ranges and
/// <see cref="MerkleTree.RangeHash"/> over that store.
/// </summary>
internal sealed class LedgerTree
{
    private readonly Dictionary<(int Level, long Index), byte[]> _nodes = [];

    public CompactTree Compact { get; } = new();

    public LedgerTree(IEnumerable<byte[]> entries)
    {
        foreach (var entry in entries)
        {
            var leaf = MerkleHash.Leaf(entry);
            _nodes[(0, Compact.Size)] = leaf;
            Compact.Append(leaf, (level, index, hash) => _nodes[(level, index)] = hash);
        }
    }

    public static LedgerTree OfSize(int n) => new(ReferenceTree.Entries(n));

    public byte[] LeafHash(long index) => _nodes[(0, index)];

    public byte[] Hash(long start, long end) => MerkleTree.RangeHash(start, end, (level, index) => _nodes[(level, index)]);

    public List<byte[]> InclusionProof(long index) => [.. MerkleTree.InclusionRanges(index, Compact.Size).Select(r => Hash(r.Start, r.End))];

    public List<byte[]> ConsistencyProof(long first) => [.. MerkleTree.ConsistencyRanges(first, Compact.Size).Select(r => Hash(r.Start, r.End))];
}
