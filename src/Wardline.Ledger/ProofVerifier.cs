namespace Wardline.Ledger;

/// <summary>
/// Checks proofs exactly as RFC 9162 §2.1.3.2 and §2.1.4.2 describe: every hash of the proof takes part
/// in recomputing the root, the proof's length must match the tree's shape, and hashes of the wrong size
/// are refused. Answers with the reason a proof fails, never an exception for a bad proof.
/// </summary>
public static class ProofVerifier
{
    public static ProofCheck VerifyInclusion(long index, long size, ReadOnlySpan<byte> leafHash, IReadOnlyList<byte[]> proof, ReadOnlySpan<byte> root)
    {
        if (size < 1 || index < 0 || index >= size) return ProofCheck.Fail($"leaf {index} is not inside a tree of {size} leaves");
        if (leafHash.Length != MerkleHash.Size || root.Length != MerkleHash.Size) return ProofCheck.Fail("the leaf hash and the root must be 32 bytes");
        var fn = index;
        var sn = size - 1;
        var r = leafHash.ToArray();
        for (var i = 0; i < proof.Count; i++)
        {
            var p = proof[i];
            if (p.Length != MerkleHash.Size) return ProofCheck.Fail($"proof hash {i} is not 32 bytes");
            if (sn == 0) return ProofCheck.Fail($"the proof is longer than the tree is deep (hash {i} is extra)");
            if ((fn & 1) == 1 || fn == sn)
            {
                r = MerkleHash.Node(p, r);
                while ((fn & 1) == 0 && fn != 0)
                {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
            else
            {
                r = MerkleHash.Node(r, p);
            }
            fn >>= 1;
            sn >>= 1;
        }
        if (sn != 0) return ProofCheck.Fail("the proof is shorter than the path from the leaf to the root");
        return r.AsSpan().SequenceEqual(root) ? ProofCheck.Ok : ProofCheck.Fail("the proof does not lead to the root");
    }

    public static ProofCheck VerifyConsistency(long first, long second, ReadOnlySpan<byte> firstRoot, ReadOnlySpan<byte> secondRoot, IReadOnlyList<byte[]> proof)
    {
        if (first < 1 || first > second) return ProofCheck.Fail($"sizes {first} and {second} are not 1 <= first <= second");
        if (firstRoot.Length != MerkleHash.Size || secondRoot.Length != MerkleHash.Size) return ProofCheck.Fail("the roots must be 32 bytes");
        for (var i = 0; i < proof.Count; i++)
        {
            if (proof[i].Length != MerkleHash.Size) return ProofCheck.Fail($"proof hash {i} is not 32 bytes");
        }
        if (first == second)
        {
            if (proof.Count != 0) return ProofCheck.Fail("a tree is consistent with itself by an empty proof only");
            return firstRoot.SequenceEqual(secondRoot) ? ProofCheck.Ok : ProofCheck.Fail("two trees of the same size have different roots");
        }
        var path = new List<byte[]>(proof.Count + 1);
        if ((first & (first - 1)) == 0) path.Add(firstRoot.ToArray());
        path.AddRange(proof);
        if (path.Count == 0) return ProofCheck.Fail("the proof is empty");

        var fn = first - 1;
        var sn = second - 1;
        while ((fn & 1) == 1)
        {
            fn >>= 1;
            sn >>= 1;
        }
        var fr = path[0];
        var sr = path[0];
        for (var i = 1; i < path.Count; i++)
        {
            var c = path[i];
            if (sn == 0) return ProofCheck.Fail("the proof is longer than the trees are deep");
            if ((fn & 1) == 1 || fn == sn)
            {
                fr = MerkleHash.Node(c, fr);
                sr = MerkleHash.Node(c, sr);
                while ((fn & 1) == 0 && fn != 0)
                {
                    fn >>= 1;
                    sn >>= 1;
                }
            }
            else
            {
                sr = MerkleHash.Node(sr, c);
            }
            fn >>= 1;
            sn >>= 1;
        }
        if (sn != 0) return ProofCheck.Fail("the proof is shorter than the trees are deep");
        if (!fr.AsSpan().SequenceEqual(firstRoot)) return ProofCheck.Fail($"the proof does not lead to the root of the first tree ({first} leaves)");
        if (!sr.AsSpan().SequenceEqual(secondRoot)) return ProofCheck.Fail($"the proof does not lead to the root of the second tree ({second} leaves)");
        return ProofCheck.Ok;
    }
}

/// <summary>A proof check's answer: valid, or why not.</summary>
public sealed record ProofCheck(bool Valid, string? Problem)
{
    public static ProofCheck Ok { get; } = new(true, null);

    public static ProofCheck Fail(string problem) => new(false, problem);
}
