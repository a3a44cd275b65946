namespace Wardline.Ledger;

/// <summary>
/// The right edge of a tree being built leaf by leaf: one complete subtree hash per set bit of the
/// size, largest first. Enough to append and to compute the root in O(log n) memory; used by the
/// appender (which keeps the hashes it completes) and by the verifier (which recomputes the root).
/// </summary>
public sealed class CompactTree
{
    private readonly List<(int Level, byte[] Hash)> _frontier = [];

    public long Size { get; private set; }

    public CompactTree()
    {
    }

    /// <summary>Resumes a tree of <paramref name="size"/> leaves from its frontier: the subtree hashes of <see cref="FrontierOf"/>, in order.</summary>
    public CompactTree(long size, IReadOnlyList<byte[]> frontier)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(size);
        var levels = FrontierOf(size);
        if (levels.Count != frontier.Count) throw new ArgumentException($"A tree of {size} leaves has {levels.Count} frontier hashes, not {frontier.Count}.", nameof(frontier));
        for (var i = 0; i < levels.Count; i++)
        {
            if (frontier[i].Length != MerkleHash.Size) throw new ArgumentException("A frontier hash must be 32 bytes.", nameof(frontier));
            _frontier.Add((levels[i].Level, frontier[i]));
        }
        Size = size;
    }

    /// <summary>The complete subtrees (level, index) that make up a tree of <paramref name="size"/> leaves, largest first.</summary>
    public static IReadOnlyList<(int Level, long Index)> FrontierOf(long size) => MerkleTree.CompleteSubtrees(0, size);

    /// <summary>The frontier's hashes, largest subtree first.</summary>
    public IReadOnlyList<byte[]> Frontier => [.. _frontier.Select(f => f.Hash)];

    /// <summary>The frontier's subtrees as (level, hash), largest first: what <see cref="AppendSubtree"/> takes.</summary>
    public IReadOnlyList<(int Level, byte[] Hash)> Subtrees => [.. _frontier];

    /// <summary>
    /// Appends a leaf hash. <paramref name="completed"/>, when given, hears every subtree this append
    /// completes above the leaf itself, as (level, index, hash), lowest first.
    /// </summary>
    public void Append(byte[] leafHash, Action<int, long, byte[]>? completed = null) => AppendSubtree(0, leafHash, completed);

    /// <summary>
    /// Appends the hash of a complete subtree of 2^<paramref name="level"/> leaves, computed elsewhere (the verifier
    /// hashes a batch's subtrees on other cores): the tree grows as if its leaves had been appended one by one. The
    /// tree's size must be a multiple of 2^<paramref name="level"/>, where such a subtree can begin.
    /// <paramref name="completed"/> hears the subtrees completed above <paramref name="level"/>, lowest first.
    /// </summary>
    public void AppendSubtree(int level, byte[] hash, Action<int, long, byte[]>? completed = null)
    {
        ArgumentOutOfRangeException.ThrowIfNegative(level);
        ArgumentOutOfRangeException.ThrowIfGreaterThan(level, 62);
        if (hash.Length != MerkleHash.Size) throw new ArgumentException("A subtree hash must be 32 bytes.", nameof(hash));
        if ((Size & ((1L << level) - 1)) != 0) throw new ArgumentException($"A subtree of 2^{level} leaves cannot begin at size {Size}.", nameof(level));
        var grows = 1L << level;
        var index = Size >> level;
        while (_frontier.Count > 0 && _frontier[^1].Level == level)
        {
            hash = MerkleHash.Node(_frontier[^1].Hash, hash);
            _frontier.RemoveAt(_frontier.Count - 1);
            level++;
            index >>= 1;
            completed?.Invoke(level, index, hash);
        }
        _frontier.Add((level, hash));
        Size += grows;
    }

    /// <summary>MTH of all leaves so far (RFC 9162 §2.1.1); the hash of the empty string for an empty tree.</summary>
    public byte[] Root()
    {
        if (_frontier.Count == 0) return MerkleHash.Empty();
        var root = _frontier[^1].Hash;
        for (var i = _frontier.Count - 2; i >= 0; i--) root = MerkleHash.Node(_frontier[i].Hash, root);
        return root;
    }

    public CompactTree Clone() => Size == 0 ? new CompactTree() : new CompactTree(Size, Frontier);
}
