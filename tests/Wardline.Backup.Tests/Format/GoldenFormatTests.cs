using System.Security.Cryptography;
using Wardline.Backup.Format;
using Wardline.Crypto;

namespace Wardline.Backup.Tests.Format;

/// <summary>Today's code still reads the segment and manifest an independent implementation of docs/formats/backup.md wrote (Golden/README.md).</summary>
public sealed class GoldenFormatTests
{
    private const string SegmentName = "segments/20250101-000000000-00000000/table-golden.seg";
    private const string ManifestName = "manifests/0000000000000007-20250101-000000000-00000000.json";

    private static string Golden(string file) => Path.Combine(AppContext.BaseDirectory, "Golden", file);

    private static Keyring GoldenKeyring() => Keyring.Load(Golden("keyring.json"), null);

    [Fact]
    public void The_golden_segment_opens_and_gives_its_rows()
    {
        var payload = SegmentCodec.Open(new EnvelopeCipher(GoldenKeyring()), SegmentName, File.ReadAllBytes(Golden("segment.seg")));
        var blocks = RowCodec.ReadAll(payload);

        Assert.Equal(3, blocks.Count);
        var cursors = blocks[0];
        Assert.Equal(("ledger_export_cursors", "replace"), (cursors.Table, cursors.Mode));
        Assert.Equal(["name", "acknowledged", "updated"], cursors.Columns);
        Assert.Equal(new object?[] { "siem-golden", -1L, 1735689600000L }, cursors.Rows[0]);
        Assert.Equal(new object?[] { "jsonl-golden", 41L, null }, cursors.Rows[1]);
        var facts = blocks[1];
        Assert.Equal(("access_facts", "upsert"), (facts.Table, facts.Mode));
        Assert.Equal(["rid"], facts.KeyColumns);
        Assert.Equal([7L, 8L], facts.Keys.Select(k => k[0]));
        Assert.Equal(new object?[] { 7L, "cardiology", "PSY HIV", 0L, 1L, null }, facts.Rows[0]);
        var nodes = blocks[2];
        Assert.Equal(("ledger_nodes", "insert"), (nodes.Table, nodes.Mode));
        Assert.Equal(Enumerable.Range(0, 32).Select(i => (byte)i).ToArray(), (byte[])nodes.Rows[0][2]!);
    }

    [Fact]
    public void The_golden_manifest_authenticates_and_describes_the_golden_segment()
    {
        var keyring = GoldenKeyring();
        var manifest = Manifest.Open(new ContentAuthenticator(keyring, "backup.manifest"), ManifestName, File.ReadAllBytes(Golden("manifest.json")));
        var segment = File.ReadAllBytes(Golden("segment.seg"));
        var payload = SegmentCodec.Open(new EnvelopeCipher(keyring), SegmentName, segment);

        Assert.Equal(("20250101-000000000-00000000", "full", 7L, 8), (manifest.Id, manifest.Kind, manifest.LedgerSize, manifest.Schema));
        Assert.Equal(new DateTimeOffset(2025, 1, 1, 0, 0, 0, TimeSpan.Zero), manifest.Created);
        Assert.Equal(["kek-golden-1", "kek-golden-2"], manifest.Keks);
        var o = Assert.Single(manifest.Objects);
        Assert.Equal(SegmentName, o.Name);
        Assert.Equal(segment.Length, o.Bytes);
        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(segment)), o.Sha256);
        Assert.Equal(SegmentCodec.Checksum(segment), o.Sha256);
        Assert.Equal(Convert.ToHexStringLower(new ContentAuthenticator(keyring, "backup.fingerprint").Tag(payload)), o.Fingerprint);
        Assert.Equal(ManifestName, manifest.Name);
    }
}
