using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;

namespace Wardline.Ledger;

/// <summary>
/// A signed statement "the ledger had <see cref="Size"/> entries with root <see cref="Root"/> at
/// <see cref="Timestamp"/>" (docs/formats/ledger-entry.md). Published outside the database, it pins the
/// ledger: a later tree must be consistent with it, so a rollback or a rewrite is found.
/// Signed with ECDSA P-256 / SHA-256 over <see cref="SignedBytes"/>; the signature is IEEE P1363 (r || s).
/// </summary>
public sealed record TreeHead(long Size, byte[] Root, DateTimeOffset Timestamp, string KeyId, byte[] Signature)
{
    /// <summary>The exact bytes that are signed: a context line, then size, root (hex) and time (Unix ms), each on its own line.</summary>
    public static byte[] SignedBytes(long size, ReadOnlySpan<byte> root, DateTimeOffset timestamp) =>
        Encoding.ASCII.GetBytes(string.Create(CultureInfo.InvariantCulture,
            $"wardline.tree-head.v1\n{size}\n{Convert.ToHexStringLower(root)}\n{timestamp.ToUnixTimeMilliseconds()}\n"));

    /// <summary>Whether <paramref name="publicKey"/> (SubjectPublicKeyInfo DER) signed this head.</summary>
    public bool IsSignedBy(byte[] publicKey)
    {
        if (Root.Length != MerkleHash.Size || KeyId != TreeHeadSigner.KeyIdOf(publicKey)) return false;
        using var key = ECDsa.Create();
        try
        {
            key.ImportSubjectPublicKeyInfo(publicKey, out _);
        }
        catch (CryptographicException)
        {
            return false;
        }
        return key.VerifyData(SignedBytes(Size, Root, Timestamp), Signature, HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
    }

    public byte[] ToJson()
    {
        var buffer = new System.Buffers.ArrayBufferWriter<byte>(256);
        using (var w = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = false }))
        {
            w.WriteStartObject();
            w.WriteNumber("size", Size);
            w.WriteString("root", Convert.ToHexStringLower(Root));
            w.WriteString("timestamp", LedgerEntry.FormatTime(Timestamp));
            w.WriteNumber("timestampMs", Timestamp.ToUnixTimeMilliseconds());
            w.WriteString("keyId", KeyId);
            w.WriteString("signature", Convert.ToBase64String(Signature));
            w.WriteEndObject();
        }
        return buffer.WrittenSpan.ToArray();
    }

    public static TreeHead FromJson(ReadOnlySpan<byte> json)
    {
        try
        {
            using var doc = JsonDocument.Parse(json.ToArray());
            var e = doc.RootElement;
            var root = Convert.FromHexString(e.GetProperty("root").GetString()!);
            if (root.Length != MerkleHash.Size) throw new FormatException("the root is not 32 bytes");
            var size = e.GetProperty("size").GetInt64();
            if (size < 0) throw new FormatException("the size is negative");
            return new TreeHead(size, root, DateTimeOffset.FromUnixTimeMilliseconds(e.GetProperty("timestampMs").GetInt64()),
                e.GetProperty("keyId").GetString() ?? throw new FormatException("the key id is missing"), Convert.FromBase64String(e.GetProperty("signature").GetString()!));
        }
        catch (Exception ex) when (ex is JsonException or FormatException or KeyNotFoundException or InvalidOperationException or ArgumentException)
        {
            throw new LedgerFormatException($"Not a tree head: {ex.Message}", ex);
        }
    }
}

/// <summary>Signs tree heads with one ECDSA P-256 key. The key's id is the first 16 hex digits of SHA-256 over its public key.</summary>
public sealed class TreeHeadSigner : IDisposable
{
    private readonly ECDsa _key;

    private TreeHeadSigner(ECDsa key)
    {
        _key = key;
        PublicKey = key.ExportSubjectPublicKeyInfo();
        KeyId = KeyIdOf(PublicKey);
    }

    public static TreeHeadSigner Create() => new(ECDsa.Create(ECCurve.NamedCurves.nistP256));

    /// <summary>From a PKCS#8 private key (as kept sealed by the keyring).</summary>
    public static TreeHeadSigner Import(ReadOnlySpan<byte> pkcs8)
    {
        var key = ECDsa.Create();
        key.ImportPkcs8PrivateKey(pkcs8, out _);
        // KeySize alone would let in other 256-bit curves (brainpoolP256r1): the curve itself must be P-256.
        var curve = key.ExportParameters(includePrivateParameters: false).Curve;
        if (!curve.IsNamed || curve.Oid.Value != ECCurve.NamedCurves.nistP256.Oid.Value)
        {
            key.Dispose();
            throw new CryptographicException("A tree head key must be ECDSA P-256.");
        }
        return new TreeHeadSigner(key);
    }

    public byte[] PublicKey { get; }

    public string KeyId { get; }

    public byte[] ExportPrivateKey() => _key.ExportPkcs8PrivateKey();

    public TreeHead Sign(long size, byte[] root, DateTimeOffset timestamp)
    {
        var at = DateTimeOffset.FromUnixTimeMilliseconds(timestamp.ToUnixTimeMilliseconds());
        var signature = _key.SignData(TreeHead.SignedBytes(size, root, at), HashAlgorithmName.SHA256, DSASignatureFormat.IeeeP1363FixedFieldConcatenation);
        return new TreeHead(size, root, at, KeyId, signature);
    }

    public static string KeyIdOf(byte[] publicKey) => Convert.ToHexStringLower(SHA256.HashData(publicKey))[..16];

    public void Dispose() => _key.Dispose();
}
