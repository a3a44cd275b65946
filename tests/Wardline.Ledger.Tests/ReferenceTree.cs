using System.Security.Cryptography;

namespace Wardline.Ledger.Tests;

/// <summary>
/// A naive Merkle tree written straight from the text of RFC 9162 §2.1.1 (MTH), §2.1.3.1 (PATH) and
/// §2.1.4.1 (PROOF/SUBPROOF), over the raw entries D[0:n]. Deliberately shares no code with
/// Wardline.Ledger (its own hashing, its own k), so the kernel is checked against an independent reading.
/// </summary>
internal sealed class ReferenceTree
{
    private readonly byte[][] _entries;

    public ReferenceTree(IEnumerable<byte[]> entries) => _entries = [.. entries];

    /// <summary>n distinct entries "entry-0", "entry-1", ...</summary>
    public static ReferenceTree OfSize(int n) => new(Entries(n));

    public static IEnumerable<byte[]> Entries(int n) => Enumerable.Range(0, n).Select(i => System.Text.Encoding.ASCII.GetBytes($"entry-{i}"));

    public int Size => _entries.Length;

    public byte[] Entry(int i) => _entries[i];

    public static byte[] LeafHash(byte[] entry) => SHA256.HashData([0x00, .. entry]);

    public static byte[] NodeHash(byte[] left, byte[] right) => SHA256.HashData([0x01, .. left, .. right]);

    /// <summary>"The largest power of two smaller than n (i.e., k &lt; n &lt;= 2k)".</summary>
    public static int K(int n)
    {
        var k = 1;
        while (k * 2 < n) k *= 2;
        return k;
    }

    /// <summary>MTH(D[start:end]).</summary>
    public byte[] Mth(int start, int end)
    {
        var n = end - start;
        if (n == 0) return SHA256.HashData([]);
        if (n == 1) return LeafHash(_entries[start]);
        var k = K(n);
        return NodeHash(Mth(start, start + k), Mth(start + k, end));
    }

    public byte[] Root() => Mth(0, Size);

    /// <summary>PATH(m, D[n]) over the whole tree.</summary>
    public List<byte[]> Path(int m) => Path(m, 0, Size);

    private List<byte[]> Path(int m, int start, int end)
    {
        var n = end - start;
        if (n == 1) return [];
        var k = K(n);
        return m < k
            ? [.. Path(m, start, start + k), Mth(start + k, end)]
            : [.. Path(m - k, start + k, end), Mth(start, start + k)];
    }

    /// <summary>PROOF(m, D[n]) = SUBPROOF(m, D[n], true).</summary>
    public List<byte[]> Proof(int m) => SubProof(m, 0, Size, true);

    private List<byte[]> SubProof(int m, int start, int end, bool b)
    {
        var n = end - start;
        if (m == n) return b ? [] : [Mth(start, end)];
        var k = K(n);
        return m <= k
            ? [.. SubProof(m, start, start + k, b), Mth(start + k, end)]
            : [.. SubProof(m - k, start + k, end, false), Mth(start, start + k)];
    }

    /// <summary>
    /// How PATH(m, D[n]) is combined, leaf side first: 'L' where the proof hash is the left child, 'R' where
    /// it is the right. Two inclusion claims of the same shape make the same computation over the same hashes.
    /// </summary>
    public static string InclusionShape(int m, int n)
    {
        if (n == 1) return "";
        var k = K(n);
        return m < k ? InclusionShape(m, k) + "R" : InclusionShape(m - k, n - k) + "L";
    }

    /// <summary>
    /// How PROOF(m, D[n]) is combined: '*' when the first root is the implicit seed (m a power of two), '+'
    /// when the proof's first hash is; then per further hash 'L' (left child, in both roots) or 'R' (right
    /// child, in the second root only).
    /// </summary>
    public static string ConsistencyShape(int m, int n) => SubShape(m, n, true);

    private static string SubShape(int m, int n, bool b)
    {
        if (m == n) return b ? "*" : "+";
        var k = K(n);
        return m <= k ? SubShape(m, k, b) + "R" : SubShape(m - k, n - k, false) + "L";
    }
}
