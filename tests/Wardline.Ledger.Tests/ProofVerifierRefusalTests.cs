namespace Wardline.Ledger.Tests;

/// <summary>
/// Every part of a proof matters: any change to a hash, the list, a position, a size or a root makes the
/// verifier refuse, with a reason and without throwing.
/// </summary>
public sealed class ProofVerifierRefusalTests
{
    public static TheoryData<int> SampleSizes => [1, 2, 3, 4, 5, 6, 7, 8, 9, 12, 16, 17, 31, 33, 64, 70];

    private static readonly byte[] SomeHash = Hex.Bytes("abacaba000000000000000000000000000000000000000000060061e00123456");

    private static void Refused(ProofCheck check, string what)
    {
        Assert.False(check.Valid, $"accepted: {what}");
        Assert.False(string.IsNullOrWhiteSpace(check.Problem), $"no reason given: {what}");
    }

    private static byte[] Flip(byte[] hash, int bit)
    {
        var copy = (byte[])hash.Clone();
        copy[bit / 8] ^= (byte)(1 << (bit % 8));
        return copy;
    }

    private static List<byte[]> With(List<byte[]> proof, int i, byte[] hash)
    {
        var copy = new List<byte[]>(proof);
        copy[i] = hash;
        return copy;
    }

    private sealed record Inclusion(ReferenceTree Tree, int Index, byte[] Leaf, List<byte[]> Proof, byte[] Root)
    {
        public ProofCheck Verify(List<byte[]>? proof = null, long? index = null, long? size = null, byte[]? leaf = null, byte[]? root = null) =>
            ProofVerifier.VerifyInclusion(index ?? Index, size ?? Tree.Size, leaf ?? Leaf, proof ?? Proof, root ?? Root);
    }

    private static IEnumerable<Inclusion> Inclusions(int size)
    {
        var reference = ReferenceTree.OfSize(size);
        var tree = LedgerTree.OfSize(size);
        var root = reference.Root();
        for (var index = 0; index < size; index++)
        {
            var inclusion = new Inclusion(reference, index, tree.LeafHash(index), tree.InclusionProof(index), root);
            Assert.True(inclusion.Verify().Valid); // the untouched proof is good
            yield return inclusion;
        }
    }

    private sealed record Consistency(ReferenceTree Tree, int First, byte[] FirstRoot, List<byte[]> Proof, byte[] SecondRoot)
    {
        public ProofCheck Verify(List<byte[]>? proof = null, long? first = null, long? second = null, byte[]? firstRoot = null, byte[]? secondRoot = null) =>
            ProofVerifier.VerifyConsistency(first ?? First, second ?? Tree.Size, firstRoot ?? FirstRoot, secondRoot ?? SecondRoot, proof ?? Proof);
    }

    /// <summary>Every first size below the tree's (a proof between equal sizes is empty and checked apart).</summary>
    private static IEnumerable<Consistency> Consistencies(int size)
    {
        var reference = ReferenceTree.OfSize(size);
        var tree = LedgerTree.OfSize(size);
        for (var first = 1; first < size; first++)
        {
            var consistency = new Consistency(reference, first, reference.Mth(0, first), tree.ConsistencyProof(first), reference.Root());
            Assert.True(consistency.Verify().Valid);
            yield return consistency;
        }
    }

    // ---- inclusion ----

    [Theory]
    [MemberData(nameof(SampleSizes))]
    public void Inclusion_proof_with_any_bit_of_any_hash_flipped_is_refused(int size)
    {
        foreach (var p in Inclusions(size))
        {
            for (var i = 0; i < p.Proof.Count; i++)
            {
                for (var bit = 0; bit < 256; bit++) Refused(p.Verify(proof: With(p.Proof, i, Flip(p.Proof[i], bit))), $"leaf {p.Index} of {size}, hash {i} bit {bit}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(SampleSizes))]
    public void Inclusion_proof_with_any_bit_of_the_leaf_or_the_root_flipped_is_refused(int size)
    {
        foreach (var p in Inclusions(size))
        {
            for (var bit = 0; bit < 256; bit++)
            {
                Refused(p.Verify(leaf: Flip(p.Leaf, bit)), $"leaf {p.Index} of {size}, leaf bit {bit}");
                Refused(p.Verify(root: Flip(p.Root, bit)), $"leaf {p.Index} of {size}, root bit {bit}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(SampleSizes))]
    public void Inclusion_proof_with_any_hash_dropped_is_refused(int size)
    {
        foreach (var p in Inclusions(size))
        {
            for (var i = 0; i < p.Proof.Count; i++)
            {
                var shorter = new List<byte[]>(p.Proof);
                shorter.RemoveAt(i);
                Refused(p.Verify(proof: shorter), $"leaf {p.Index} of {size} without hash {i}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(SampleSizes))]
    public void Inclusion_proof_with_an_extra_hash_anywhere_is_refused(int size)
    {
        foreach (var p in Inclusions(size))
        {
            for (var at = 0; at <= p.Proof.Count; at++)
            {
                foreach (var extra in new[] { SomeHash, p.Root, p.Leaf, MerkleHash.Empty() })
                {
                    var longer = new List<byte[]>(p.Proof);
                    longer.Insert(at, extra);
                    Refused(p.Verify(proof: longer), $"leaf {p.Index} of {size} with a hash inserted at {at}");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(SampleSizes))]
    public void Inclusion_proof_with_two_hashes_swapped_is_refused(int size)
    {
        foreach (var p in Inclusions(size))
        {
            for (var i = 0; i < p.Proof.Count; i++)
            {
                for (var j = i + 1; j < p.Proof.Count; j++)
                {
                    var swapped = new List<byte[]>(p.Proof);
                    (swapped[i], swapped[j]) = (swapped[j], swapped[i]);
                    Refused(p.Verify(proof: swapped), $"leaf {p.Index} of {size}, hashes {i} and {j} swapped");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(SampleSizes))]
    public void Inclusion_proof_for_any_other_leaf_index_is_refused(int size)
    {
        foreach (var p in Inclusions(size))
        {
            for (var other = -2; other < size + 3; other++)
            {
                if (other != p.Index) Refused(p.Verify(index: other), $"leaf {p.Index} of {size} claimed as leaf {other}");
            }
            Refused(p.Verify(index: long.MaxValue), $"leaf {p.Index} of {size} claimed as leaf {long.MaxValue}");
            Refused(p.Verify(index: long.MinValue), $"leaf {p.Index} of {size} claimed as leaf {long.MinValue}");
        }
    }

    /// <summary>
    /// RFC 9162's inclusion check recomputes the root from the path, so a claim of another size is refused
    /// exactly when it changes how the path is combined; when it does not (leaf 0 of 3 and of 4 combine alike)
    /// nothing in the proof could tell, and the size is bound by the signed tree head instead. Checked exactly.
    /// </summary>
    [Theory]
    [MemberData(nameof(SampleSizes))]
    public void Inclusion_proof_for_a_wrong_tree_size_is_refused_whenever_the_size_changes_the_path(int size)
    {
        foreach (var p in Inclusions(size))
        {
            var shape = ReferenceTree.InclusionShape(p.Index, size);
            for (var other = -1; other <= 2 * size + 2; other++)
            {
                if (other == size) continue;
                var check = p.Verify(size: other);
                if (other > p.Index && ReferenceTree.InclusionShape(p.Index, other) == shape) Assert.True(check.Valid);
                else Refused(check, $"leaf {p.Index} of {size} claimed in a tree of {other}");
            }
            Refused(p.Verify(size: size * 2), $"leaf {p.Index} of {size} claimed in a tree of {size * 2}");
            Refused(p.Verify(size: long.MaxValue), $"leaf {p.Index} of {size} claimed in a tree of {long.MaxValue}");
        }
    }

    [Fact]
    public void Inclusion_proof_alone_does_not_pin_the_tree_size_which_is_why_heads_are_signed()
    {
        var tree = LedgerTree.OfSize(3);
        var root3 = tree.Hash(0, 3);

        Assert.True(ProofVerifier.VerifyInclusion(0, 4, tree.LeafHash(0), tree.InclusionProof(0), root3).Valid);
    }

    [Theory]
    [MemberData(nameof(SampleSizes))]
    public void Inclusion_proof_with_a_hash_of_31_or_33_bytes_is_refused(int size)
    {
        foreach (var p in Inclusions(size))
        {
            for (var i = 0; i < p.Proof.Count; i++)
            {
                Refused(p.Verify(proof: With(p.Proof, i, p.Proof[i][..31])), $"leaf {p.Index} of {size}, hash {i} of 31 bytes");
                Refused(p.Verify(proof: With(p.Proof, i, [.. p.Proof[i], 0])), $"leaf {p.Index} of {size}, hash {i} of 33 bytes");
                Refused(p.Verify(proof: With(p.Proof, i, [])), $"leaf {p.Index} of {size}, hash {i} empty");
            }
            Refused(p.Verify(leaf: p.Leaf[..31]), $"leaf {p.Index} of {size}, leaf of 31 bytes");
            Refused(p.Verify(leaf: [.. p.Leaf, 0]), $"leaf {p.Index} of {size}, leaf of 33 bytes");
            Refused(p.Verify(root: p.Root[..31]), $"leaf {p.Index} of {size}, root of 31 bytes");
            Refused(p.Verify(root: [.. p.Root, 0]), $"leaf {p.Index} of {size}, root of 33 bytes");
        }
    }

    [Fact]
    public void Inclusion_in_an_empty_or_negative_tree_is_refused()
    {
        var hash = MerkleHash.Leaf("x"u8);
        foreach (var (index, size) in new (long, long)[] { (0, 0), (1, 0), (0, -1), (-1, -1), (-1, 1), (1, 1), (2, 1), (5, 5), (long.MaxValue, long.MaxValue) })
        {
            Refused(ProofVerifier.VerifyInclusion(index, size, hash, [], hash), $"leaf {index} of {size}");
        }
        Refused(ProofVerifier.VerifyInclusion(0, 1, [], [], []), "empty leaf and root");
    }

    [Fact]
    public void A_single_leaf_tree_proves_its_leaf_by_an_empty_proof_and_nothing_else()
    {
        var hash = MerkleHash.Leaf("x"u8);

        Assert.True(ProofVerifier.VerifyInclusion(0, 1, hash, [], hash).Valid);
        Refused(ProofVerifier.VerifyInclusion(0, 1, hash, [hash], hash), "one extra hash");
        Refused(ProofVerifier.VerifyInclusion(0, 1, hash, [], MerkleHash.Leaf("y"u8)), "another root");
    }

    [Fact]
    public void Inclusion_checks_of_huge_trees_answer_without_throwing()
    {
        var proof = Enumerable.Range(0, 63).Select(i => MerkleHash.Leaf([(byte)i])).ToList();
        var leaf = MerkleHash.Leaf("x"u8);

        foreach (var index in new[] { 0, long.MaxValue / 2, long.MaxValue - 1 })
        {
            Refused(ProofVerifier.VerifyInclusion(index, long.MaxValue, leaf, proof, SomeHash), $"leaf {index} of long.MaxValue");
            Refused(ProofVerifier.VerifyInclusion(index, long.MaxValue, leaf, [.. proof, .. proof], SomeHash), $"leaf {index} of long.MaxValue, long proof");
        }
    }

    // ---- consistency ----

    [Theory]
    [MemberData(nameof(SampleSizes))]
    public void Consistency_proof_with_any_bit_of_any_hash_flipped_is_refused(int size)
    {
        foreach (var p in Consistencies(size))
        {
            for (var i = 0; i < p.Proof.Count; i++)
            {
                for (var bit = 0; bit < 256; bit++) Refused(p.Verify(proof: With(p.Proof, i, Flip(p.Proof[i], bit))), $"{p.First} -> {size}, hash {i} bit {bit}");
            }
        }
    }

    [Theory]
    [MemberData(nameof(SampleSizes))]
    public void Consistency_proof_with_any_bit_of_either_root_flipped_is_refused(int size)
    {
        foreach (var p in Consistencies(size))
        {
            for (var bit = 0; bit < 256; bit++)
            {
                Refused(p.Verify(firstRoot: Flip(p.FirstRoot, bit)), $"{p.First} -> {size}, first root bit {bit}");
                Refused(p.Verify(secondRoot: Flip(p.SecondRoot, bit)), $"{p.First} -> {size}, second root bit {bit}");
            }
            Refused(p.Verify(firstRoot: p.SecondRoot, secondRoot: p.FirstRoot), $"{p.First} -> {size}, roots swapped");
            Refused(p.Verify(firstRoot: p.SecondRoot), $"{p.First} -> {size}, second root given as the first");
        }
    }

    [Theory]
    [MemberData(nameof(SampleSizes))]
    public void Consistency_proof_with_any_hash_dropped_or_emptied_is_refused(int size)
    {
        foreach (var p in Consistencies(size))
        {
            for (var i = 0; i < p.Proof.Count; i++)
            {
                var shorter = new List<byte[]>(p.Proof);
                shorter.RemoveAt(i);
                Refused(p.Verify(proof: shorter), $"{p.First} -> {size} without hash {i}");
            }
            Refused(p.Verify(proof: []), $"{p.First} -> {size} with an empty proof");
        }
    }

    [Theory]
    [MemberData(nameof(SampleSizes))]
    public void Consistency_proof_with_an_extra_hash_anywhere_is_refused(int size)
    {
        foreach (var p in Consistencies(size))
        {
            for (var at = 0; at <= p.Proof.Count; at++)
            {
                foreach (var extra in new[] { SomeHash, p.FirstRoot, p.SecondRoot, p.Proof[0] })
                {
                    var longer = new List<byte[]>(p.Proof);
                    longer.Insert(at, extra);
                    Refused(p.Verify(proof: longer), $"{p.First} -> {size} with a hash inserted at {at}");
                }
            }
        }
    }

    [Theory]
    [MemberData(nameof(SampleSizes))]
    public void Consistency_proof_with_two_hashes_swapped_is_refused(int size)
    {
        foreach (var p in Consistencies(size))
        {
            for (var i = 0; i < p.Proof.Count; i++)
            {
                for (var j = i + 1; j < p.Proof.Count; j++)
                {
                    var swapped = new List<byte[]>(p.Proof);
                    (swapped[i], swapped[j]) = (swapped[j], swapped[i]);
                    Refused(p.Verify(proof: swapped), $"{p.First} -> {size}, hashes {i} and {j} swapped");
                }
            }
        }
    }

    /// <summary>As for inclusion: another pair of sizes is refused exactly when it changes how the proof is combined.</summary>
    [Theory]
    [MemberData(nameof(SampleSizes))]
    public void Consistency_proof_for_wrong_sizes_is_refused_whenever_the_sizes_change_the_proof(int size)
    {
        foreach (var p in Consistencies(size))
        {
            var shape = ReferenceTree.ConsistencyShape(p.First, size);
            for (var first = -1; first <= size + 1; first++)
            {
                if (first == p.First) continue;
                var check = p.Verify(first: first);
                if (first >= 1 && first < size && ReferenceTree.ConsistencyShape(first, size) == shape) Assert.True(check.Valid);
                else Refused(check, $"{p.First} -> {size} claimed as {first} -> {size}");
            }
            for (var second = -1; second <= 2 * size + 2; second++)
            {
                if (second == size) continue;
                var check = p.Verify(second: second);
                if (second > p.First && ReferenceTree.ConsistencyShape(p.First, second) == shape) Assert.True(check.Valid);
                else Refused(check, $"{p.First} -> {size} claimed as {p.First} -> {second}");
            }
            Refused(p.Verify(second: long.MaxValue), $"{p.First} -> {size} claimed as {p.First} -> {long.MaxValue}");
        }
    }

    [Theory]
    [MemberData(nameof(SampleSizes))]
    public void Consistency_proof_with_a_hash_or_root_of_31_or_33_bytes_is_refused(int size)
    {
        foreach (var p in Consistencies(size))
        {
            for (var i = 0; i < p.Proof.Count; i++)
            {
                Refused(p.Verify(proof: With(p.Proof, i, p.Proof[i][..31])), $"{p.First} -> {size}, hash {i} of 31 bytes");
                Refused(p.Verify(proof: With(p.Proof, i, [.. p.Proof[i], 0])), $"{p.First} -> {size}, hash {i} of 33 bytes");
            }
            Refused(p.Verify(firstRoot: p.FirstRoot[..31]), $"{p.First} -> {size}, first root of 31 bytes");
            Refused(p.Verify(firstRoot: [.. p.FirstRoot, 0]), $"{p.First} -> {size}, first root of 33 bytes");
            Refused(p.Verify(secondRoot: p.SecondRoot[..31]), $"{p.First} -> {size}, second root of 31 bytes");
            Refused(p.Verify(secondRoot: [.. p.SecondRoot, 0]), $"{p.First} -> {size}, second root of 33 bytes");
        }
    }

    [Theory]
    [MemberData(nameof(SampleSizes))]
    public void A_tree_is_consistent_with_itself_only_by_an_empty_proof_and_equal_roots(int size)
    {
        var root = ReferenceTree.OfSize(size).Root();

        Assert.True(ProofVerifier.VerifyConsistency(size, size, root, root, []).Valid);
        Refused(ProofVerifier.VerifyConsistency(size, size, root, root, [root]), $"{size} -> {size} with a hash");
        Refused(ProofVerifier.VerifyConsistency(size, size, root, SomeHash, []), $"{size} -> {size} with another root");
        Refused(ProofVerifier.VerifyConsistency(size, size, root.AsSpan(0, 31), root.AsSpan(0, 31), []), $"{size} -> {size} with short roots");
    }

    [Fact]
    public void Consistency_with_a_first_size_of_zero_negative_or_beyond_the_second_is_refused()
    {
        var root = MerkleHash.Empty();
        foreach (var (first, second) in new (long, long)[] { (0, 0), (0, 1), (0, 5), (-1, 5), (2, 1), (6, 5), (long.MaxValue, 1), (long.MinValue, long.MaxValue) })
        {
            Refused(ProofVerifier.VerifyConsistency(first, second, root, root, []), $"{first} -> {second}");
            Refused(ProofVerifier.VerifyConsistency(first, second, root, root, [root]), $"{first} -> {second} with a hash");
        }
    }

    [Fact]
    public void Consistency_checks_of_huge_trees_answer_without_throwing()
    {
        var proof = Enumerable.Range(0, 126).Select(i => MerkleHash.Leaf([(byte)i])).ToList();

        foreach (var first in new[] { 1, 2, 3, long.MaxValue / 3, long.MaxValue - 1 })
        {
            Refused(ProofVerifier.VerifyConsistency(first, long.MaxValue, SomeHash, SomeHash, proof), $"{first} -> long.MaxValue");
            Refused(ProofVerifier.VerifyConsistency(first, long.MaxValue, SomeHash, SomeHash, proof[..3]), $"{first} -> long.MaxValue, short proof");
        }
    }
}
