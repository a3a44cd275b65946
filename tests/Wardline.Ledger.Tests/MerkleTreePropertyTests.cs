namespace Wardline.Ledger.Tests;

/// <summary>
/// For every tree of 1..70 leaves and every leaf or pair of sizes, the kernel's proofs equal those of the naive
/// RFC 9162 reference (<see cref="ReferenceTree"/>) and the verifier accepts them.
/// </summary>
public sealed class MerkleTreePropertyTests
{
    public const int MaxSize = 70;

    public static TheoryData<int> AllSizes => [.. Enumerable.Range(1, MaxSize)];

    [Theory]
    [MemberData(nameof(AllSizes))]
    public void Range_hash_of_the_whole_tree_is_the_reference_root(int size)
    {
        Assert.Equal(ReferenceTree.OfSize(size).Root(), LedgerTree.OfSize(size).Hash(0, size));
    }

    [Theory]
    [MemberData(nameof(AllSizes))]
    public void Range_hash_of_every_range_is_the_reference_mth(int size)
    {
        var reference = ReferenceTree.OfSize(size);
        var tree = LedgerTree.OfSize(size);

        for (var start = 0; start < size; start++)
        {
            for (var end = start + 1; end <= size; end++)
            {
                Assert.Equal(reference.Mth(start, end), tree.Hash(start, end));
            }
        }
    }

    [Theory]
    [MemberData(nameof(AllSizes))]
    public void Inclusion_proof_of_every_leaf_equals_the_reference_path_and_is_accepted(int size)
    {
        var reference = ReferenceTree.OfSize(size);
        var tree = LedgerTree.OfSize(size);
        var root = reference.Root();

        for (var index = 0; index < size; index++)
        {
            var proof = tree.InclusionProof(index);
            Assert.Equal(Hex.Of(reference.Path(index)), Hex.Of(proof));

            var check = ProofVerifier.VerifyInclusion(index, size, ReferenceTree.LeafHash(reference.Entry(index)), proof, root);
            Assert.True(check.Valid, $"leaf {index} of {size}: {check.Problem}");
        }
    }

    [Theory]
    [MemberData(nameof(AllSizes))]
    public void Consistency_proof_from_every_smaller_size_equals_the_reference_proof_and_is_accepted(int second)
    {
        var reference = ReferenceTree.OfSize(second);
        var tree = LedgerTree.OfSize(second);
        var secondRoot = reference.Root();

        for (var first = 1; first <= second; first++)
        {
            var proof = tree.ConsistencyProof(first);
            Assert.Equal(Hex.Of(reference.Proof(first)), Hex.Of(proof));

            var check = ProofVerifier.VerifyConsistency(first, second, reference.Mth(0, first), secondRoot, proof);
            Assert.True(check.Valid, $"{first} -> {second}: {check.Problem}");
        }
    }

    [Theory]
    [MemberData(nameof(AllSizes))]
    public void Split_is_the_largest_power_of_two_below_the_size(int size)
    {
        if (size == 1)
        {
            Assert.Throws<ArgumentOutOfRangeException>(() => MerkleTree.Split(1));
            return;
        }
        Assert.Equal(ReferenceTree.K(size), MerkleTree.Split(size));
    }

    [Fact]
    public void Split_handles_sizes_near_the_top_of_the_range()
    {
        Assert.Equal(1L << 62, MerkleTree.Split(long.MaxValue));
        Assert.Equal(1L << 61, MerkleTree.Split(1L << 62));
        Assert.Equal(1L << 62, MerkleTree.Split((1L << 62) + 1));
    }

    [Theory]
    [MemberData(nameof(AllSizes))]
    public void Complete_subtrees_of_every_range_are_aligned_powers_of_two_that_tile_it(int size)
    {
        for (var start = 0; start < size; start++)
        {
            for (var end = start + 1; end <= size; end++)
            {
                var next = (long)start;
                foreach (var (level, index) in MerkleTree.CompleteSubtrees(start, end))
                {
                    Assert.Equal(next, index << level);
                    next = (index + 1) << level;
                }
                Assert.Equal(end, next);
            }
        }
    }

    [Fact]
    public void Proof_shapes_refuse_positions_outside_the_tree()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => MerkleTree.InclusionRanges(0, 0));
        Assert.Throws<ArgumentOutOfRangeException>(() => MerkleTree.InclusionRanges(-1, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => MerkleTree.InclusionRanges(5, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => MerkleTree.ConsistencyRanges(0, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => MerkleTree.ConsistencyRanges(6, 5));
        Assert.Throws<ArgumentOutOfRangeException>(() => MerkleTree.RangeHash(3, 3, (_, _) => new byte[32]));
    }

    [Fact]
    public void Proof_shapes_of_a_huge_tree_stay_logarithmic_and_cover_it()
    {
        const long size = (1L << 40) + 12345;

        foreach (var index in new[] { 0, size / 2, size - 1 })
        {
            var ranges = MerkleTree.InclusionRanges(index, size);
            Assert.InRange(ranges.Count, 1, 41);
            // The leaf and its proof's subtrees tile the whole tree.
            Assert.Equal(size - 1, ranges.Sum(r => r.End - r.Start));
            Assert.DoesNotContain(ranges, r => r.Start <= index && index < r.End);
        }
        Assert.Equal(41, MerkleTree.InclusionRanges(0, size).Count);
        Assert.InRange(MerkleTree.ConsistencyRanges(size / 3, size).Count, 1, 2 * 41);
    }
}
