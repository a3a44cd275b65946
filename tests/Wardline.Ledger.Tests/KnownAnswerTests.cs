using System.Text;

namespace Wardline.Ledger.Tests;

/// <summary>
/// The reference tree of certificate-transparency (eight leaves, used since RFC 6962's reference code) and its
/// published answers. Sources, copied hash for hash:
/// - roots for sizes 1..8: google/certificate-transparency cpp/merkletree/merkle_tree_test.cc (kTestRoots), as
///   repeated in google/trillian testonly/compact_merkle_tree.go and transparency-dev/merkle proof/verify_test.go (roots);
/// - inclusion and consistency proofs: transparency-dev/merkle proof/verify_test.go (inclusionProofs, consistencyProofs;
///   there a leaf is numbered from 1, here from 0);
/// - single hashes: transparency-dev/merkle rfc6962/rfc6962_test.go (TestRFC6962Hasher).
/// </summary>
public sealed class KnownAnswerTests
{
    private static readonly byte[][] Leaves =
    [
        [],
        Hex.Bytes("00"),
        Hex.Bytes("10"),
        Hex.Bytes("2021"),
        Hex.Bytes("3031"),
        Hex.Bytes("40414243"),
        Hex.Bytes("5051525354555657"),
        Hex.Bytes("606162636465666768696a6b6c6d6e6f"),
    ];

    private static readonly string[] Roots =
    [
        "6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d",
        "fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125",
        "aeb6bcfe274b70a14fb067a5e5578264db0fa9b51af5e0ba159158f329e06e77",
        "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7",
        "4e3bbb1f7b478dcfe71fb631631519a3bca12c9aefca1612bfce4c13a86264d4",
        "76e67dadbcdf1e10e1b74ddc608abd2f98dfb16fbce75277b5232a127f2087ef",
        "ddb89be403809e325750d3d263cd78929c2942b7942a34b77e122c9594a74c8c",
        "5dc9da79a70659a9ad559cb701ded9a2ab9d823aad2f4960cfe370eff4604328",
    ];

    /// <summary>(leaf index from 0, tree size, proof).</summary>
    public static TheoryData<int, int, string[]> InclusionProofs => new()
    {
        { 0, 1, [] },
        { 0, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"] },
        { 5, 8, ["bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"] },
        { 2, 3, ["fac54203e7cc696cf0dfcb42c92a1d9dbaf70ad9e621f4bd8d98662f00e3c125"] },
        { 1, 5, ["6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"] },
    };

    /// <summary>(first size, second size, proof).</summary>
    public static TheoryData<int, int, string[]> ConsistencyProofs => new()
    {
        { 1, 1, [] },
        { 1, 8, ["96a296d224f285c67bee93c30f8a309157f0daa35dc5b87e410b78630a09cfc7", "5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "6b47aaf29ee3c2af9af889bc1fb9254dabd31177f16232dd6aab035ca39bf6e4"] },
        { 6, 8, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "ca854ea128ed050b41b35ffc1b87b8eb2bde461e9e3b5596ece6b9d5975a0ae0", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"] },
        { 2, 5, ["5f083f0a1a33ca076a95279832580db3e0ef4584bdff1f54c8a360f50de3031e", "bc1a0643b12e4d2d7c77918f44e0f4f79a838b6cf9ec5b5c283e1f4d88599e6b"] },
        { 6, 7, ["0ebc5d3437fbe2db158b9f126a1d118e308181031d0a949f8dededebc558ef6a", "b08693ec2e721597130641e8211e7eedccb4c26413963eee6c1e2ed16ffb1a5f", "d37ee418976dd95753c1c73862b9398fa2a2cf9b4ff0fdfe8b30cd95209614b7"] },
    };

    public static TheoryData<int> Sizes => [1, 2, 3, 4, 5, 6, 7, 8];

    private static LedgerTree Tree(int size) => new(Leaves.Take(size));

    [Fact]
    public void The_empty_tree_hashes_to_sha256_of_nothing()
    {
        Assert.Equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Hex.Of(MerkleHash.Empty()));
        Assert.Equal("e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855", Hex.Of(new CompactTree().Root()));
    }

    [Fact]
    public void The_empty_leaf_hashes_differently_from_the_empty_tree()
    {
        Assert.Equal("6e340b9cffb37a989ca544e6bb780a2c78901d3fb33738768511a30617afa01d", Hex.Of(MerkleHash.Leaf([])));
    }

    [Fact]
    public void A_leaf_hashes_with_the_zero_prefix()
    {
        Assert.Equal("395aa064aa4c29f7010acfe3f25db9485bbd4b91897b6ad7ad547639252b4d56", Hex.Of(MerkleHash.Leaf("L123456"u8)));
    }

    [Fact]
    public void A_leaf_hashes_the_same_into_a_span_as_into_a_new_array_even_when_large()
    {
        foreach (var length in new[] { 0, 1, 2047, 2048, 2049, 100_000 })
        {
            var entry = Enumerable.Range(0, length).Select(i => (byte)i).ToArray();
            var into = new byte[MerkleHash.Size];
            MerkleHash.Leaf(entry, into);
            Assert.Equal(ReferenceTree.LeafHash(entry), into);
            Assert.Equal(ReferenceTree.LeafHash(entry), MerkleHash.Leaf(entry));
        }
    }

    [Fact]
    public void The_reference_implementation_itself_matches_the_published_node_hash()
    {
        // The published node vector hashes two 4-byte children; the kernel only takes 32-byte hashes, so it is checked on the reference.
        Assert.Equal("aa217fe888e47007fa15edab33c2b492a722cb106c64667fc2b044444de66bbb", Hex.Of(ReferenceTree.NodeHash(Encoding.ASCII.GetBytes("N123"), Encoding.ASCII.GetBytes("N456"))));
    }

    [Fact]
    public void A_node_of_children_that_are_not_32_bytes_is_refused_rather_than_hashed_wrongly()
    {
        Assert.Throws<ArgumentException>(() => MerkleHash.Node("N123"u8, "N456"u8));
        Assert.Throws<ArgumentException>(() => MerkleHash.Node(new byte[32], new byte[31]));
        Assert.Throws<ArgumentException>(() => MerkleHash.Node(new byte[33], new byte[32]));
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void The_compact_tree_reaches_the_published_root(int size)
    {
        var tree = new CompactTree();
        foreach (var leaf in Leaves.Take(size)) tree.Append(MerkleHash.Leaf(leaf));

        Assert.Equal(Roots[size - 1], Hex.Of(tree.Root()));
    }

    [Theory]
    [MemberData(nameof(Sizes))]
    public void Range_hash_over_the_whole_tree_is_the_published_root(int size)
    {
        Assert.Equal(Roots[size - 1], Hex.Of(Tree(size).Hash(0, size)));
        Assert.Equal(Roots[size - 1], Hex.Of(new ReferenceTree(Leaves.Take(size)).Root()));
    }

    [Theory]
    [MemberData(nameof(InclusionProofs))]
    public void The_published_inclusion_proof_is_made_and_accepted(int index, int size, string[] proof)
    {
        var tree = Tree(size);

        Assert.Equal(proof, Hex.Of(tree.InclusionProof(index)));
        var check = ProofVerifier.VerifyInclusion(index, size, MerkleHash.Leaf(Leaves[index]), [.. proof.Select(Hex.Bytes)], Hex.Bytes(Roots[size - 1]));
        Assert.True(check.Valid, check.Problem);
        Assert.Null(check.Problem);
    }

    [Theory]
    [MemberData(nameof(ConsistencyProofs))]
    public void The_published_consistency_proof_is_made_and_accepted(int first, int second, string[] proof)
    {
        var tree = Tree(second);

        Assert.Equal(proof, Hex.Of(tree.ConsistencyProof(first)));
        var check = ProofVerifier.VerifyConsistency(first, second, Hex.Bytes(Roots[first - 1]), Hex.Bytes(Roots[second - 1]), [.. proof.Select(Hex.Bytes)]);
        Assert.True(check.Valid, check.Problem);
    }

    [Theory]
    [MemberData(nameof(InclusionProofs))]
    public void The_published_inclusion_proof_is_refused_against_the_wrong_leaf(int index, int size, string[] proof)
    {
        var wrongLeaf = MerkleHash.Leaf(Leaves[(index + 1) % Leaves.Length]);

        var check = ProofVerifier.VerifyInclusion(index, size, wrongLeaf, [.. proof.Select(Hex.Bytes)], Hex.Bytes(Roots[size - 1]));

        Assert.False(check.Valid);
        Assert.False(string.IsNullOrEmpty(check.Problem));
    }
}
