namespace Wardline.Ledger.Tests;

public sealed class CompactTreeTests
{
    private const int MaxSize = MerkleTreePropertyTests.MaxSize;

    private static readonly ReferenceTree Reference = ReferenceTree.OfSize(MaxSize);

    private static byte[] Leaf(int i) => ReferenceTree.LeafHash(Reference.Entry(i));

    [Fact]
    public void Root_equals_the_reference_mth_after_every_append()
    {
        var tree = new CompactTree();
        Assert.Equal(Reference.Mth(0, 0), tree.Root());

        for (var i = 0; i < MaxSize; i++)
        {
            tree.Append(Leaf(i));
            Assert.Equal(i + 1, tree.Size);
            Assert.Equal(Hex.Of(Reference.Mth(0, i + 1)), Hex.Of(tree.Root()));
        }
    }

    [Fact]
    public void The_frontier_holds_the_reference_hashes_of_the_complete_subtrees_largest_first()
    {
        var tree = new CompactTree();
        for (var size = 0; size <= MaxSize; size++)
        {
            var levels = CompactTree.FrontierOf(size);
            Assert.Equal(System.Numerics.BitOperations.PopCount((ulong)size), levels.Count);
            Assert.Equal(levels.Select(l => l.Level).OrderDescending(), levels.Select(l => l.Level));
            var expected = levels.Select(l => Hex.Of(Reference.Mth((int)(l.Index << l.Level), (int)((l.Index + 1) << l.Level))));
            Assert.Equal(expected, Hex.Of(tree.Frontier));
            if (size < MaxSize) tree.Append(Leaf(size));
        }
    }

    [Fact]
    public void A_tree_resumed_from_its_frontier_continues_exactly_as_the_original()
    {
        for (var size = 0; size <= MaxSize; size++)
        {
            var original = new CompactTree();
            for (var i = 0; i < size; i++) original.Append(Leaf(i));
            var resumed = new CompactTree(size, original.Frontier);
            Assert.Equal(original.Root(), resumed.Root());

            for (var i = size; i < MaxSize; i++)
            {
                var fromOriginal = new List<(int, long, string)>();
                var fromResumed = new List<(int, long, string)>();
                original.Append(Leaf(i), (l, x, h) => fromOriginal.Add((l, x, Hex.Of(h))));
                resumed.Append(Leaf(i), (l, x, h) => fromResumed.Add((l, x, Hex.Of(h))));

                Assert.Equal(original.Size, resumed.Size);
                Assert.Equal(fromOriginal, fromResumed);
                Assert.Equal(Hex.Of(original.Frontier), Hex.Of(resumed.Frontier));
                Assert.Equal(Hex.Of(Reference.Mth(0, i + 1)), Hex.Of(resumed.Root()));
            }
        }
    }

    [Fact]
    public void A_clone_goes_its_own_way()
    {
        var tree = new CompactTree();
        for (var i = 0; i < 5; i++) tree.Append(Leaf(i));
        var clone = tree.Clone();

        clone.Append(Leaf(5));

        Assert.Equal(5, tree.Size);
        Assert.Equal(Reference.Mth(0, 5), tree.Root());
        Assert.Equal(Reference.Mth(0, 6), clone.Root());
        Assert.Equal(Reference.Mth(0, 0), new CompactTree().Clone().Root());
    }

    [Fact]
    public void Completed_reports_exactly_the_complete_subtrees_above_the_leaves_with_their_reference_hashes()
    {
        var tree = new CompactTree();
        var reported = new List<(int Level, long Index, string Hash)>();

        for (var i = 0; i < MaxSize; i++)
        {
            var now = new List<(int Level, long Index, string Hash)>();
            tree.Append(Leaf(i), (level, index, hash) => now.Add((level, index, Hex.Of(hash))));

            // Appending leaf i completes the subtree at level L ending at leaf i for every L >= 1 with 2^L dividing i + 1, lowest first.
            var expectedLevels = Enumerable.Range(1, 7).TakeWhile(l => (i + 1) % (1 << l) == 0).ToList();
            Assert.Equal(expectedLevels, now.Select(c => c.Level));
            reported.AddRange(now);
        }

        var expected = new List<(int, long, string)>();
        for (var level = 1; 1 << level <= MaxSize; level++)
        {
            for (long index = 0; (index + 1) << level <= MaxSize; index++)
            {
                expected.Add((level, index, Hex.Of(Reference.Mth((int)(index << level), (int)((index + 1) << level)))));
            }
        }
        Assert.Equal(expected.Order(), reported.Order());
    }

    [Fact]
    public void Appending_subtrees_built_elsewhere_gives_the_same_tree_and_reports_as_appending_their_leaves()
    {
        // Every way of cutting 0..MaxSize into aligned pieces the size of a power of two, one piece per step: the greedy
        // cut (the largest piece that fits the alignment and the remaining leaves) and the cut into pieces of at most 4.
        foreach (var limit in new[] { 64, 4, 1 })
        {
            var byLeaf = new CompactTree();
            var bySubtree = new CompactTree();
            var size = 0;
            while (size < MaxSize)
            {
                var level = 0;
                while ((1 << (level + 1)) <= limit && size % (1 << (level + 1)) == 0 && size + (1 << (level + 1)) <= MaxSize) level++;
                var piece = new CompactTree();
                for (var i = size; i < size + (1 << level); i++) piece.Append(Leaf(i));
                Assert.Equal([level], piece.Subtrees.Select(s => s.Level));

                var fromLeaves = new List<(int, long, string)>();
                for (var i = size; i < size + (1 << level); i++) byLeaf.Append(Leaf(i), (l, x, h) => { if (l > level) fromLeaves.Add((l, x, Hex.Of(h))); });
                var fromSubtree = new List<(int, long, string)>();
                bySubtree.AppendSubtree(level, piece.Subtrees[0].Hash, (l, x, h) => fromSubtree.Add((l, x, Hex.Of(h))));

                size += 1 << level;
                Assert.Equal(size, bySubtree.Size);
                Assert.Equal(fromLeaves, fromSubtree);
                Assert.Equal(Hex.Of(Reference.Mth(0, size)), Hex.Of(bySubtree.Root()));
                Assert.Equal(Hex.Of(byLeaf.Frontier), Hex.Of(bySubtree.Frontier));
                Assert.Equal(CompactTree.FrontierOf(size).Select(f => f.Level), bySubtree.Subtrees.Select(s => s.Level));
            }
        }
    }

    [Fact]
    public void A_subtree_that_cannot_begin_at_the_trees_size_is_refused_and_changes_nothing()
    {
        var tree = new CompactTree();
        for (var i = 0; i < 6; i++) tree.Append(Leaf(i));
        var four = new CompactTree();
        for (var i = 6; i < 10; i++) four.Append(Leaf(i));

        Assert.Throws<ArgumentException>(() => tree.AppendSubtree(2, four.Root())); // 6 is not a multiple of 4
        Assert.Throws<ArgumentException>(() => tree.AppendSubtree(1, new byte[31]));
        Assert.Throws<ArgumentOutOfRangeException>(() => tree.AppendSubtree(-1, four.Root()));
        Assert.Throws<ArgumentOutOfRangeException>(() => tree.AppendSubtree(63, four.Root()));
        Assert.Equal(6, tree.Size);
        Assert.Equal(Hex.Of(Reference.Mth(0, 6)), Hex.Of(tree.Root()));
    }

    [Fact]
    public void Appending_a_leaf_hash_that_is_not_32_bytes_is_refused_and_changes_nothing()
    {
        var tree = new CompactTree();
        tree.Append(Leaf(0));

        Assert.Throws<ArgumentException>(() => tree.Append(new byte[31]));
        Assert.Throws<ArgumentException>(() => tree.Append(new byte[33]));
        Assert.Equal(1, tree.Size);
        Assert.Equal(Reference.Mth(0, 1), tree.Root());
    }

    [Fact]
    public void Resuming_from_a_frontier_of_the_wrong_shape_is_refused()
    {
        var tree = new CompactTree();
        for (var i = 0; i < 6; i++) tree.Append(Leaf(i));
        var frontier = tree.Frontier; // 6 = 4 + 2: two hashes

        Assert.Throws<ArgumentException>(() => new CompactTree(7, frontier));
        Assert.Throws<ArgumentException>(() => new CompactTree(6, [frontier[0]]));
        Assert.Throws<ArgumentException>(() => new CompactTree(6, [frontier[0], new byte[31]]));
        Assert.Throws<ArgumentException>(() => new CompactTree(0, frontier));
    }

    [Fact]
    public void Resuming_a_tree_of_negative_size_is_refused()
    {
        Assert.Throws<ArgumentOutOfRangeException>(() => new CompactTree(-1, []));
        Assert.Throws<ArgumentOutOfRangeException>(() => new CompactTree(long.MinValue, []));
    }
}
