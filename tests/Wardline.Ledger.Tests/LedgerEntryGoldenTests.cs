namespace Wardline.Ledger.Tests;

/// <summary>Golden/*.json fix the canonical entry format byte for byte (see Golden/README.md).</summary>
public sealed class LedgerEntryGoldenTests
{
    public static TheoryData<string> Files => [.. GoldenEntries.ByFile.Keys.Order(StringComparer.Ordinal)];

    private static string Golden(string name) => Path.Combine(AppContext.BaseDirectory, "Golden", name);

    internal static byte[] GoldenBytes(string name) => File.ReadAllBytes(Golden(name));

    [Fact]
    public void There_is_a_golden_entry_of_every_type()
    {
        Assert.Equal(["access", "security", "system", "write"], GoldenEntries.ByFile.Values.Select(e => e.Type).Distinct().Order(StringComparer.Ordinal));
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Encode_produces_the_golden_bytes_exactly(string file)
    {
        var encoded = GoldenEntries.ByFile[file].Encode();

        Assert.Equal(GoldenBytes(file), encoded);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void Decode_of_the_golden_bytes_gives_back_the_entry(string file)
    {
        var decoded = LedgerEntry.Decode(GoldenBytes(file));

        LedgerEntryTests.AssertSameEntry(GoldenEntries.ByFile[file], decoded);
        Assert.Equal(GoldenBytes(file), decoded.Encode());
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void The_golden_leaf_hash_is_unchanged(string file)
    {
        var expected = File.ReadAllLines(Golden("leaf-hashes.txt"))
            .Select(line => line.Split("  "))
            .Single(parts => parts[1] == file)[0];

        Assert.Equal(expected, Hex.Of(MerkleHash.Leaf(GoldenBytes(file))));
        Assert.Equal(expected, Hex.Of(MerkleHash.Leaf(GoldenEntries.ByFile[file].Encode())));
    }

    [Fact]
    public void Every_golden_file_has_its_leaf_hash_listed()
    {
        var listed = File.ReadAllLines(Golden("leaf-hashes.txt")).Select(line => line.Split("  ")[1]).Order(StringComparer.Ordinal);

        Assert.Equal(GoldenEntries.ByFile.Keys.Order(StringComparer.Ordinal), listed);
    }

    [Theory]
    [MemberData(nameof(Files))]
    public void A_golden_file_is_printable_ascii_from_brace_to_brace(string file)
    {
        var bytes = GoldenBytes(file);

        Assert.All(bytes, b => Assert.InRange(b, (byte)0x20, (byte)0x7e));
        Assert.Equal((byte)'{', bytes[0]);
        Assert.Equal((byte)'}', bytes[^1]);
    }
}
