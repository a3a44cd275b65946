using System.Security.Cryptography;
using System.Text;
using Wardline.Backup.Format;
using Wardline.Crypto;

namespace Wardline.Backup.Tests.Format;

public sealed class SegmentCodecTests : IDisposable
{
    private const string Name = "segments/20261129-000000000-00000001/ledger-0000000000000000-0000000000000010.seg";
    private readonly string _folder = Directory.CreateTempSubdirectory("wardline-seg-").FullName;
    private readonly Keyring _keyring;
    private readonly EnvelopeCipher _cipher;

    public SegmentCodecTests()
    {
        _keyring = Keyring.LoadOrCreate(Path.Combine(_folder, "keyring.json"), null);
        _cipher = new EnvelopeCipher(_keyring);
    }

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private static byte[] Payload()
    {
        var block = new RowBlock("ledger_entries", "insert", ["idx", "type", "entry", "permitted", "weight"], []);
        for (var i = 0; i < 100; i++) block.Rows.Add([(long)i, "access", Encoding.UTF8.GetBytes($"{{\"v\":1,\"n\":{i}}}"), i % 2 == 0 ? 1L : null, i * 0.5]);
        var facts = new RowBlock("access_facts", "upsert", ["rid", "department"], ["rid"]);
        facts.Keys.Add([5L]);
        facts.Keys.Add([long.MinValue]);
        facts.Rows.Add([5L, "Ünïcødé ward 🏥"]);
        using var ms = new MemoryStream();
        RowCodec.Write(ms, block);
        RowCodec.Write(ms, facts);
        return ms.ToArray();
    }

    [Fact]
    public void A_sealed_segment_opens_to_the_same_rows()
    {
        var payload = Payload();

        var opened = SegmentCodec.Open(_cipher, Name, SegmentCodec.Seal(_cipher, Name, "20261129-000000000-00000001", payload));

        Assert.Equal(payload, opened);
        var blocks = RowCodec.ReadAll(opened);
        Assert.Equal(100, blocks[0].Rows.Count);
        Assert.Equal(new object?[] { 3L, "access", Encoding.UTF8.GetBytes("{\"v\":1,\"n\":3}"), null, 1.5 }, blocks[0].Rows[3]);
        Assert.Equal([5L, long.MinValue], blocks[1].Keys.Select(k => k[0]));
        Assert.Equal("Ünïcødé ward 🏥", blocks[1].Rows[0][1]);
    }

    [Fact]
    public void A_segment_opened_into_a_pooled_buffer_holds_the_same_payload()
    {
        var payload = Payload();
        var segment = SegmentCodec.Seal(_cipher, Name, "b", payload);

        var buffer = SegmentCodec.OpenPooled(_cipher, Name, segment, out var length);
        try
        {
            Assert.Equal(payload.Length, length);
            Assert.True(buffer.Length >= length);
            Assert.Equal(payload, buffer.AsSpan(0, length).ToArray());
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    [Fact]
    public void A_segment_sealed_into_a_pooled_buffer_is_an_ordinary_segment()
    {
        var payload = Payload();

        var buffer = SegmentCodec.SealPooled(_cipher, Name, "b", payload, level: 1, out var length);
        try
        {
            Assert.True(buffer.Length >= length);
            Assert.Equal(payload, SegmentCodec.Open(_cipher, Name, buffer.AsSpan(0, length)));
            Assert.Throws<BackupFormatException>(() => SegmentCodec.Open(_cipher, Name, buffer.AsSpan(0, length - 1)));
        }
        finally
        {
            System.Buffers.ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    [Fact]
    public void A_damaged_segment_opened_into_a_pooled_buffer_is_refused_and_named()
    {
        var segment = SegmentCodec.Seal(_cipher, Name, "b", Payload());
        foreach (var position in new[] { 0, 20, segment.Length / 2, segment.Length - 1 })
        {
            var altered = (byte[])segment.Clone();
            altered[position] ^= 0x01;

            var ex = Assert.Throws<BackupFormatException>(() => SegmentCodec.OpenPooled(_cipher, Name, altered, out _));

            Assert.Contains(Name, ex.Message, StringComparison.Ordinal);
        }
        Assert.Throws<BackupFormatException>(() => SegmentCodec.OpenPooled(_cipher, Name, segment.AsSpan(0, segment.Length - 1), out _));
    }

    [Fact]
    public void A_segment_holds_no_plaintext()
    {
        var segment = SegmentCodec.Seal(_cipher, Name, "b", Encoding.UTF8.GetBytes("Myocardial infarction of Alex Carter, MRN 123456"));

        Assert.DoesNotContain("Carter", Encoding.Latin1.GetString(segment), StringComparison.Ordinal);
        Assert.DoesNotContain("123456", Encoding.Latin1.GetString(segment), StringComparison.Ordinal);
    }

    [Fact]
    public void Every_changed_byte_of_a_segment_is_refused_and_the_segment_named()
    {
        var segment = SegmentCodec.Seal(_cipher, Name, "b", Payload());
        // The magic, the header length, the header, and the body: each position is authenticated or checked.
        foreach (var position in new[] { 0, 9, 20, segment.Length / 2, segment.Length - 1 })
        {
            var altered = (byte[])segment.Clone();
            altered[position] ^= 0x01;

            var ex = Assert.Throws<BackupFormatException>(() => SegmentCodec.Open(_cipher, Name, altered));

            Assert.Contains(Name, ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_truncated_segment_is_refused()
    {
        var segment = SegmentCodec.Seal(_cipher, Name, "b", Payload());

        foreach (var length in new[] { 0, 5, 11, 40, segment.Length - 1 })
        {
            var ex = Assert.Throws<BackupFormatException>(() => SegmentCodec.Open(_cipher, Name, segment.AsSpan(0, length)));
            Assert.Contains(Name, ex.Message, StringComparison.Ordinal);
        }
    }

    [Fact]
    public void A_segment_read_under_another_name_is_refused_as_moved()
    {
        var segment = SegmentCodec.Seal(_cipher, Name, "b", Payload());

        var ex = Assert.Throws<BackupFormatException>(() => SegmentCodec.Open(_cipher, "segments/x/ledger-other.seg", segment));

        Assert.Contains("renamed or moved", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_keyring_without_the_segments_key_is_named_as_such()
    {
        var segment = SegmentCodec.Seal(_cipher, Name, "b", Payload());
        var other = Keyring.LoadOrCreate(Path.Combine(_folder, "other.json"), null);

        var ex = Assert.Throws<BackupFormatException>(() => SegmentCodec.Open(new EnvelopeCipher(other), Name, segment));

        Assert.Contains(_keyring.ActiveKekId, ex.Message, StringComparison.Ordinal);
        Assert.Contains("does not hold", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void A_segment_still_opens_after_the_keyring_rotates()
    {
        var segment = SegmentCodec.Seal(_cipher, Name, "b", Payload());

        var rotated = _keyring.Rotate(null);

        Assert.Equal(Payload(), SegmentCodec.Open(new EnvelopeCipher(rotated), Name, segment));
    }

    [Fact]
    public void Malformed_payloads_are_refused_not_crashed_on()
    {
        var payload = Payload();
        var rng = new Random(5);
        for (var i = 0; i < 500; i++)
        {
            var bad = payload.AsSpan(0, rng.Next(payload.Length)).ToArray();
            if (bad.Length > 0) bad[rng.Next(bad.Length)] ^= (byte)(1 << rng.Next(8));
            try
            {
                RowCodec.ReadAll(bad);
            }
            catch (BackupFormatException)
            {
                // Expected for most inputs; anything else (IndexOutOfRange, OutOfMemory, ...) fails the test.
            }
        }
        Assert.Throws<BackupFormatException>(() => RowCodec.ReadAll([(byte)'B', 0xFF, 0xFF, 0xFF, 0xFF, 0x0F]));
    }
}
