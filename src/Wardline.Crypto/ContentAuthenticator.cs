using System.Security.Cryptography;
using System.Text;

namespace Wardline.Crypto;

/// <summary>
/// Keyed tags (HMAC-SHA256) that prove a document came from a holder of this keyring and was not changed:
/// backup manifests, and the fingerprints by which a backup recognises a table it already shipped without
/// publishing a plain hash of its content. The key is derived with HKDF-SHA256 from the keyring's index key
/// (which never rotates, so a tag made before a KEK rotation still verifies after it, and an escrowed copy of the
/// keyring verifies every backup) with the purpose in the info, so each purpose has an unrelated key
/// (docs/formats/envelope.md, "Derived keys").
/// </summary>
public sealed class ContentAuthenticator
{
    /// <summary>Length of a tag in bytes.</summary>
    public const int TagLength = 32;

    private readonly byte[] _key;

    /// <summary>Derives the key for <paramref name="purpose"/> (ASCII letters, digits, '.', '-'), e.g. "backup.manifest".</summary>
    public ContentAuthenticator(Keyring keyring, string purpose)
    {
        ArgumentNullException.ThrowIfNull(keyring);
        ArgumentException.ThrowIfNullOrEmpty(purpose);
        if (!purpose.All(c => char.IsAsciiLetterOrDigit(c) || c is '.' or '-'))
        {
            throw new ArgumentException("a purpose is made of ASCII letters, digits, '.' and '-'", nameof(purpose));
        }
        _key = HKDF.DeriveKey(HashAlgorithmName.SHA256, keyring.IndexKey, TagLength, salt: [], info: Encoding.ASCII.GetBytes("wardline.derived.v1/" + purpose));
    }

    /// <summary>The tag of <paramref name="content"/>.</summary>
    public byte[] Tag(ReadOnlySpan<byte> content) => HMACSHA256.HashData(_key, content);

    /// <summary>True when <paramref name="tag"/> is this key's tag of <paramref name="content"/> (compared in constant time).</summary>
    public bool Verify(ReadOnlySpan<byte> content, ReadOnlySpan<byte> tag) =>
        tag.Length == TagLength && CryptographicOperations.FixedTimeEquals(Tag(content), tag);
}
