using System.Security.Cryptography;
using System.Text;

namespace Wardline.Ledger.Tests;

public sealed class TreeHeadTests
{
    private static readonly byte[] Root = ReferenceTree.OfSize(70).Root();

    private static readonly DateTimeOffset At = new(2026, 11, 29, 4, 5, 6, 789, TimeSpan.Zero);

    private static byte[] Flip(byte[] bytes, int bit)
    {
        var copy = (byte[])bytes.Clone();
        copy[bit / 8] ^= (byte)(1 << (bit % 8));
        return copy;
    }

    [Fact]
    public void A_signed_head_is_signed_by_its_signer()
    {
        using var signer = TreeHeadSigner.Create();

        var head = signer.Sign(70, Root, At);

        Assert.Equal(70, head.Size);
        Assert.Equal(Root, head.Root);
        Assert.Equal(At, head.Timestamp);
        Assert.Equal(signer.KeyId, head.KeyId);
        Assert.Equal(64, head.Signature.Length); // P1363 r || s
        Assert.True(head.IsSignedBy(signer.PublicKey));
    }

    [Fact]
    public void The_key_id_is_the_first_16_hex_digits_of_sha256_over_the_public_key()
    {
        using var signer = TreeHeadSigner.Create();

        Assert.Equal(Convert.ToHexStringLower(SHA256.HashData(signer.PublicKey))[..16], signer.KeyId);
        Assert.Matches("^[0-9a-f]{16}$", signer.KeyId);
    }

    [Fact]
    public void The_signed_bytes_are_the_documented_lines()
    {
        var bytes = TreeHead.SignedBytes(70, Root, At);

        Assert.Equal($"wardline.tree-head.v1\n70\n{Hex.Of(Root)}\n{At.ToUnixTimeMilliseconds()}\n", Encoding.ASCII.GetString(bytes));
    }

    [Fact]
    public void The_timestamp_is_signed_to_the_millisecond()
    {
        using var signer = TreeHeadSigner.Create();

        var head = signer.Sign(1, Root, At.AddTicks(9999).ToOffset(TimeSpan.FromHours(2)));

        Assert.Equal(At.ToUnixTimeMilliseconds(), head.Timestamp.ToUnixTimeMilliseconds());
        Assert.Equal(At, head.Timestamp);
        Assert.True(head.IsSignedBy(signer.PublicKey));
    }

    [Fact]
    public void A_head_survives_its_json_round_trip_and_still_verifies()
    {
        using var signer = TreeHeadSigner.Create();
        var head = signer.Sign(70, Root, At);

        var back = TreeHead.FromJson(head.ToJson());

        Assert.Equal(head.Size, back.Size);
        Assert.Equal(head.Root, back.Root);
        Assert.Equal(head.Timestamp, back.Timestamp);
        Assert.Equal(head.KeyId, back.KeyId);
        Assert.Equal(head.Signature, back.Signature);
        Assert.True(back.IsSignedBy(signer.PublicKey));
        Assert.Equal(head.ToJson(), back.ToJson());
    }

    [Fact]
    public void The_json_names_every_part_of_the_head()
    {
        using var signer = TreeHeadSigner.Create();
        var head = signer.Sign(70, Root, At);

        using var json = System.Text.Json.JsonDocument.Parse(head.ToJson());
        var e = json.RootElement;

        Assert.Equal(70, e.GetProperty("size").GetInt64());
        Assert.Equal(Hex.Of(Root), e.GetProperty("root").GetString());
        Assert.Equal("2026-11-29T04:05:06.789Z", e.GetProperty("timestamp").GetString());
        Assert.Equal(At.ToUnixTimeMilliseconds(), e.GetProperty("timestampMs").GetInt64());
        Assert.Equal(signer.KeyId, e.GetProperty("keyId").GetString());
        Assert.Equal(Convert.ToBase64String(head.Signature), e.GetProperty("signature").GetString());
    }

    [Fact]
    public void A_head_with_any_bit_of_its_root_flipped_is_not_signed_by_the_key()
    {
        using var signer = TreeHeadSigner.Create();
        var head = signer.Sign(70, Root, At);

        for (var bit = 0; bit < 256; bit++) Assert.False((head with { Root = Flip(Root, bit) }).IsSignedBy(signer.PublicKey), $"root bit {bit}");
    }

    [Fact]
    public void A_head_with_any_bit_of_its_size_flipped_is_not_signed_by_the_key()
    {
        using var signer = TreeHeadSigner.Create();
        var head = signer.Sign(70, Root, At);

        for (var bit = 0; bit < 64; bit++) Assert.False((head with { Size = head.Size ^ (1L << bit) }).IsSignedBy(signer.PublicKey), $"size bit {bit}");
    }

    [Fact]
    public void A_head_with_any_bit_of_its_timestamp_flipped_is_not_signed_by_the_key()
    {
        using var signer = TreeHeadSigner.Create();
        var head = signer.Sign(70, Root, At);
        var ms = At.ToUnixTimeMilliseconds();

        for (var bit = 0; bit < 40; bit++)
        {
            var other = DateTimeOffset.FromUnixTimeMilliseconds(ms ^ (1L << bit));
            Assert.False((head with { Timestamp = other }).IsSignedBy(signer.PublicKey), $"timestamp bit {bit}");
        }
    }

    [Fact]
    public void A_head_with_any_bit_of_its_signature_flipped_is_not_signed_by_the_key()
    {
        using var signer = TreeHeadSigner.Create();
        var head = signer.Sign(70, Root, At);

        for (var bit = 0; bit < head.Signature.Length * 8; bit++) Assert.False((head with { Signature = Flip(head.Signature, bit) }).IsSignedBy(signer.PublicKey), $"signature bit {bit}");
    }

    [Fact]
    public void A_head_with_a_truncated_extended_or_empty_signature_or_root_is_not_signed_by_the_key()
    {
        using var signer = TreeHeadSigner.Create();
        var head = signer.Sign(70, Root, At);

        Assert.False((head with { Signature = head.Signature[..63] }).IsSignedBy(signer.PublicKey));
        Assert.False((head with { Signature = [.. head.Signature, 0] }).IsSignedBy(signer.PublicKey));
        Assert.False((head with { Signature = [] }).IsSignedBy(signer.PublicKey));
        Assert.False((head with { Root = Root[..31] }).IsSignedBy(signer.PublicKey));
        Assert.False((head with { Root = [.. Root, 0] }).IsSignedBy(signer.PublicKey));
    }

    [Fact]
    public void A_head_is_not_signed_by_another_key_even_under_that_keys_id()
    {
        using var signer = TreeHeadSigner.Create();
        using var other = TreeHeadSigner.Create();
        var head = signer.Sign(70, Root, At);

        Assert.NotEqual(signer.KeyId, other.KeyId);
        Assert.False(head.IsSignedBy(other.PublicKey));
        Assert.False((head with { KeyId = other.KeyId }).IsSignedBy(other.PublicKey));
        Assert.False((head with { KeyId = other.KeyId }).IsSignedBy(signer.PublicKey));
    }

    [Fact]
    public void A_public_key_that_is_not_an_ec_key_is_answered_no_without_throwing()
    {
        using var signer = TreeHeadSigner.Create();
        using var rsa = RSA.Create(2048);
        var rsaKey = rsa.ExportSubjectPublicKeyInfo();
        byte[] garbage = [1, 2, 3];

        foreach (var key in new[] { rsaKey, garbage, [] })
        {
            var head = signer.Sign(70, Root, At) with { KeyId = TreeHeadSigner.KeyIdOf(key) };
            Assert.False(head.IsSignedBy(key));
        }
    }

    [Fact]
    public void An_imported_private_key_keeps_its_key_id_and_signs_for_the_same_public_key()
    {
        using var signer = TreeHeadSigner.Create();

        using var imported = TreeHeadSigner.Import(signer.ExportPrivateKey());

        Assert.Equal(signer.KeyId, imported.KeyId);
        Assert.Equal(signer.PublicKey, imported.PublicKey);
        Assert.True(imported.Sign(70, Root, At).IsSignedBy(signer.PublicKey));
        Assert.True(signer.Sign(70, Root, At).IsSignedBy(imported.PublicKey));
    }

    [Fact]
    public void Import_refuses_a_p384_key()
    {
        using var p384 = ECDsa.Create(ECCurve.NamedCurves.nistP384);

        Assert.Throws<CryptographicException>(() => TreeHeadSigner.Import(p384.ExportPkcs8PrivateKey()));
    }

    [Fact]
    public void Import_refuses_a_256_bit_key_on_another_curve()
    {
        using var brainpool = ECDsa.Create(ECCurve.NamedCurves.brainpoolP256r1);

        Assert.Throws<CryptographicException>(() => TreeHeadSigner.Import(brainpool.ExportPkcs8PrivateKey()));
    }

    [Fact]
    public void Import_refuses_a_key_that_is_not_an_ec_key_or_not_a_key()
    {
        using var rsa = RSA.Create(2048);

        Assert.ThrowsAny<CryptographicException>(() => TreeHeadSigner.Import(rsa.ExportPkcs8PrivateKey()));
        Assert.ThrowsAny<CryptographicException>(() => TreeHeadSigner.Import([1, 2, 3]));
        Assert.ThrowsAny<CryptographicException>(() => TreeHeadSigner.Import([]));
    }

    public static TheoryData<string> Garbage => new()
    {
        "",
        "garbage",
        "[]",
        "null",
        "{}",
        "{\"size\":1",
        "{\"size\":1,\"root\":\"ROOT\",\"timestampMs\":0,\"keyId\":\"k\"}",
        "{\"size\":1,\"root\":\"ROOT\",\"timestampMs\":0,\"signature\":\"AAAA\"}",
        "{\"size\":1,\"root\":\"ROOT\",\"keyId\":\"k\",\"signature\":\"AAAA\"}",
        "{\"size\":1,\"timestampMs\":0,\"keyId\":\"k\",\"signature\":\"AAAA\"}",
        "{\"root\":\"ROOT\",\"timestampMs\":0,\"keyId\":\"k\",\"signature\":\"AAAA\"}",
        "{\"size\":-1,\"root\":\"ROOT\",\"timestampMs\":0,\"keyId\":\"k\",\"signature\":\"AAAA\"}",
        "{\"size\":\"1\",\"root\":\"ROOT\",\"timestampMs\":0,\"keyId\":\"k\",\"signature\":\"AAAA\"}",
        "{\"size\":1.5,\"root\":\"ROOT\",\"timestampMs\":0,\"keyId\":\"k\",\"signature\":\"AAAA\"}",
        "{\"size\":1e400,\"root\":\"ROOT\",\"timestampMs\":0,\"keyId\":\"k\",\"signature\":\"AAAA\"}",
        "{\"size\":1,\"root\":\"abc\",\"timestampMs\":0,\"keyId\":\"k\",\"signature\":\"AAAA\"}",
        "{\"size\":1,\"root\":\"zz\",\"timestampMs\":0,\"keyId\":\"k\",\"signature\":\"AAAA\"}",
        "{\"size\":1,\"root\":\"00\",\"timestampMs\":0,\"keyId\":\"k\",\"signature\":\"AAAA\"}",
        "{\"size\":1,\"root\":\"ROOT00\",\"timestampMs\":0,\"keyId\":\"k\",\"signature\":\"AAAA\"}",
        "{\"size\":1,\"root\":null,\"timestampMs\":0,\"keyId\":\"k\",\"signature\":\"AAAA\"}",
        "{\"size\":1,\"root\":5,\"timestampMs\":0,\"keyId\":\"k\",\"signature\":\"AAAA\"}",
        "{\"size\":1,\"root\":\"ROOT\",\"timestampMs\":\"0\",\"keyId\":\"k\",\"signature\":\"AAAA\"}",
        "{\"size\":1,\"root\":\"ROOT\",\"timestampMs\":999999999999999999,\"keyId\":\"k\",\"signature\":\"AAAA\"}",
        "{\"size\":1,\"root\":\"ROOT\",\"timestampMs\":0,\"keyId\":null,\"signature\":\"AAAA\"}",
        "{\"size\":1,\"root\":\"ROOT\",\"timestampMs\":0,\"keyId\":7,\"signature\":\"AAAA\"}",
        "{\"size\":1,\"root\":\"ROOT\",\"timestampMs\":0,\"keyId\":\"k\",\"signature\":\"not base64!\"}",
        "{\"size\":1,\"root\":\"ROOT\",\"timestampMs\":0,\"keyId\":\"k\",\"signature\":null}",
        "{\"size\":1,\"root\":\"ROOT\",\"timestampMs\":0,\"keyId\":\"k\",\"signature\":\"AAAA\"",
    };

    [Theory]
    [MemberData(nameof(Garbage))]
    public void From_json_of_garbage_throws_a_ledger_format_exception(string text)
    {
        var json = Encoding.UTF8.GetBytes(text.Replace("ROOT", Hex.Of(Root), StringComparison.Ordinal));

        Assert.Throws<LedgerFormatException>(() => TreeHead.FromJson(json));
    }

    [Fact]
    public void The_garbage_cases_differ_from_a_good_head_only_where_they_mean_to()
    {
        // The template the garbage is cut from is itself a readable head.
        var good = Encoding.UTF8.GetBytes($"{{\"size\":1,\"root\":\"{Hex.Of(Root)}\",\"timestampMs\":0,\"keyId\":\"k\",\"signature\":\"AAAA\"}}");

        var head = TreeHead.FromJson(good);

        Assert.Equal(1, head.Size);
        Assert.Equal("k", head.KeyId);
        Assert.Equal(DateTimeOffset.UnixEpoch, head.Timestamp);
    }

    [Fact]
    public void From_json_of_bytes_that_are_not_utf8_throws_a_ledger_format_exception()
    {
        Assert.Throws<LedgerFormatException>(() => TreeHead.FromJson([0x7B, 0xFF, 0x7D]));
        Assert.Throws<LedgerFormatException>(() => TreeHead.FromJson([0xC0, 0xAF]));
    }
}
