using System.Numerics;

namespace Wardline.Ledger;

/// <summary>
/// The shape of an RFC 9162 tree over leaves 0..n-1, independent of where hashes are kept. A proof is
/// a list of subtree hashes MTH(D[start:end]); <see cref="InclusionRanges"/> and
/// <see cref="ConsistencyRanges"/> say which, in proof order, and <see cref="RangeHash"/> computes one
/// from the hashes of complete, aligned subtrees (the only nodes a store needs to keep).
/// </summary>
public static class MerkleTree
{
    /// <summary>A half-open range of leaves [Start, End).</summary>
    public readonly record struct Range(long Start, long End);

    /// <summary>The largest power of two strictly less than <paramref name="n"/> (n &gt; 1): RFC 9162's k.</summary>
    public static long Split(long n) => n <= 1
        ? throw new ArgumentOutOfRangeException(nameof(n), "A tree of one leaf has no split.")
        : 1L << (63 - BitOperations.LeadingZeroCount((ulong)(n - 1)));

    /// <summary>The subtrees whose hashes form the inclusion proof of leaf <paramref name="index"/> in a tree of <paramref name="size"/> leaves (RFC 9162 §2.1.3.1), leaf side first.</summary>
    public static IReadOnlyList<Range> InclusionRanges(long index, long size)
    {
        if (size < 1 || index < 0 || index >= size) throw new ArgumentOutOfRangeException(nameof(index), "The leaf must be inside the tree.");
        var path = new List<Range>();
        Path(index, 0, size, path);
        return path;
    }

    private static void Path(long m, long start, long end, List<Range> path)
    {
        var n = end - start;
        if (n <= 1) return;
        var k = Split(n);
        if (m < k)
        {
            Path(m, start, start + k, path);
            path.Add(new Range(start + k, end));
        }
        else
        {
            Path(m - k, start + k, end, path);
            path.Add(new Range(start, start + k));
        }
    }

    /// <summary>The subtrees whose hashes prove that the tree of <paramref name="first"/> leaves is a prefix of the tree of <paramref name="second"/> (RFC 9162 §2.1.4.1).</summary>
    public static IReadOnlyList<Range> ConsistencyRanges(long first, long second)
    {
        if (first < 1 || first > second) throw new ArgumentOutOfRangeException(nameof(first), "Consistency needs 1 <= first <= second.");
        var proof = new List<Range>();
        SubProof(first, 0, second, true, proof);
        return proof;
    }

    private static void SubProof(long m, long start, long end, bool whole, List<Range> proof)
    {
        var n = end - start;
        if (m == n)
        {
            if (!whole) proof.Add(new Range(start, end));
            return;
        }
        var k = Split(n);
        if (m <= k)
        {
            SubProof(m, start, start + k, whole, proof);
            proof.Add(new Range(start + k, end));
        }
        else
        {
            SubProof(m - k, start + k, end, false, proof);
            proof.Add(new Range(start, start + k));
        }
    }

    /// <summary>
    /// Splits [start, end) into the complete, aligned subtrees RFC 9162 hashes it from, as (level, index):
    /// the subtree at level L and index i covers leaves [i·2^L, (i+1)·2^L). Left to right.
    /// </summary>
    public static IReadOnlyList<(int Level, long Index)> CompleteSubtrees(long start, long end)
    {
        var parts = new List<(int, long)>();
        Decompose(start, end, parts);
        return parts;
    }

    private static void Decompose(long start, long end, List<(int, long)> parts)
    {
        var n = end - start;
        if (n <= 0) return;
        if ((n & (n - 1)) == 0 && start % n == 0)
        {
            parts.Add((BitOperations.Log2((ulong)n), start / n));
            return;
        }
        var k = Split(n);
        Decompose(start, start + k, parts);
        Decompose(start + k, end, parts);
    }

    /// <summary>MTH(D[start:end]) from the hashes of complete subtrees, which <paramref name="node"/> supplies.</summary>
    public static byte[] RangeHash(long start, long end, Func<int, long, byte[]> node)
    {
        var n = end - start;
        if (n <= 0) throw new ArgumentOutOfRangeException(nameof(end), "An empty range has no subtree hash.");
        if ((n & (n - 1)) == 0 && start % n == 0) return node(BitOperations.Log2((ulong)n), start / n);
        var k = Split(n);
        return MerkleHash.Node(RangeHash(start, start + k, node), RangeHash(start + k, end, node));
    }
}
