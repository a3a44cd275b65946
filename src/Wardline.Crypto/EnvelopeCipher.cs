using System.Buffers;
using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;
using System.Text;

namespace Wardline.Crypto;

/// <summary>
/// Envelope encryption with AES-256-GCM: data keys (DEKs) wrapped by the keyring's KEKs, and resource
/// bodies encrypted under DEKs. Formats are specified byte by byte in docs/formats/envelope.md.
/// Thread-safe: it holds no mutable state and creates an <see cref="AesGcm"/> per call
/// (<see cref="AesGcm"/> itself is not thread-safe). Bound to one <see cref="Keyring"/> snapshot.
/// </summary>
public sealed class EnvelopeCipher
{
    private const int NonceSize = 12;
    private const int TagSize = 16;
    private const int MagicSize = 4;
    private const int MaxStackAad = 256;

    // Strict decoding: a malformed id in a blob is reported as malformed, not silently replaced.
    private static readonly UTF8Encoding StrictUtf8 = new(encoderShouldEmitUTF8Identifier: false, throwOnInvalidBytes: true);

    private readonly Keyring _keyring;
    private readonly byte[] _activeKek;
    private readonly byte[] _activeKekIdUtf8;

    /// <summary>Creates a cipher that wraps new data keys under <paramref name="keyring"/>'s active KEK.</summary>
    public EnvelopeCipher(Keyring keyring)
    {
        ArgumentNullException.ThrowIfNull(keyring);
        _keyring = keyring;
        if (!keyring.TryGetKek(keyring.ActiveKekId, out var activeKek))
        {
            throw new ArgumentException("the keyring has no active key-encryption key", nameof(keyring));
        }

        _activeKek = activeKek;
        _activeKekIdUtf8 = Encoding.UTF8.GetBytes(keyring.ActiveKekId);
    }

    private static ReadOnlySpan<byte> KeyMagic => "WLK1"u8;

    private static ReadOnlySpan<byte> BodyMagic => "WLE1"u8;

    /// <summary>
    /// Creates a fresh 256-bit data key and wraps it under the active KEK. <paramref name="context"/>
    /// (e.g. the resource identity) is authenticated, so the wrapped key only unwraps with the same context.
    /// </summary>
    public WrappedDataKey CreateDataKey(ReadOnlySpan<byte> context)
    {
        var dataKey = new DataKey(RandomNumberGenerator.GetBytes(DataKey.Length));
        try
        {
            return new WrappedDataKey(dataKey, Wrap(dataKey.Bytes, context));
        }
        catch
        {
            dataKey.Dispose();
            throw;
        }
    }

    /// <summary>
    /// Unwraps a data key with whichever KEK wrapped it (active or retired). Throws
    /// <see cref="EnvelopeException"/> if the blob is malformed, the KEK is unknown, or authentication fails.
    /// </summary>
    public DataKey UnwrapDataKey(ReadOnlySpan<byte> wrapped, ReadOnlySpan<byte> context)
    {
        var kekId = ReadWrappedHeader(wrapped, out var idLength);
        if (!_keyring.TryGetKek(kekId, out var kek))
        {
            throw new EnvelopeException($"data key wrapped by unknown key-encryption key '{kekId}'");
        }

        var body = wrapped[(MagicSize + 1 + idLength)..];
        var dek = new byte[DataKey.Length];
        var aadLength = MagicSize + idLength + context.Length;
        byte[]? rented = null;
        Span<byte> aad = aadLength <= MaxStackAad ? stackalloc byte[MaxStackAad] : (rented = ArrayPool<byte>.Shared.Rent(aadLength));
        try
        {
            aad = BuildKeyAad(aad, wrapped.Slice(MagicSize + 1, idLength), context);
            using var aes = new AesGcm(kek, TagSize);
            aes.Decrypt(body[..NonceSize], body.Slice(NonceSize, DataKey.Length), body[(NonceSize + DataKey.Length)..], dek, aad);
            return new DataKey(dek);
        }
        catch (AuthenticationTagMismatchException ex)
        {
            throw new EnvelopeException(
                $"wrapped data key failed authentication under key-encryption key '{kekId}' (tampered, or the context does not match)", ex);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>Unwraps with whichever KEK wrapped the data key and wraps it again under the active KEK.</summary>
    public byte[] Rewrap(ReadOnlySpan<byte> wrapped, ReadOnlySpan<byte> context)
    {
        using var dataKey = UnwrapDataKey(wrapped, context);
        return Wrap(dataKey.Bytes, context);
    }

    /// <summary>Reads the id of the KEK that wrapped a data key from the blob header (no decryption).</summary>
    [SuppressMessage("Performance", "CA1822:Mark members as static", Justification = "Instance API so callers only need the cipher.")]
    public string WrappingKekId(ReadOnlySpan<byte> wrapped) => ReadWrappedHeader(wrapped, out _);

    /// <summary>
    /// Encrypts a body under <paramref name="key"/> with a random 96-bit nonce. <paramref name="associatedData"/>
    /// (the resource type/id/version) is authenticated, so a body moved to another resource fails to decrypt.
    /// </summary>
    public byte[] Encrypt(DataKey key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData)
    {
        var envelope = new byte[EnvelopeLength(plaintext.Length)];
        Encrypt(key, plaintext, associatedData, envelope);
        return envelope;
    }

    /// <summary>Length of the body envelope of a plaintext of <paramref name="plaintextLength"/> bytes.</summary>
    public static int EnvelopeLength(int plaintextLength) => MagicSize + NonceSize + plaintextLength + TagSize;

    /// <summary>
    /// The same as <see cref="Encrypt(DataKey, ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>, written into
    /// <paramref name="envelope"/>, which must be exactly <see cref="EnvelopeLength"/> bytes and not overlap the plaintext.
    /// </summary>
    public void Encrypt(DataKey key, ReadOnlySpan<byte> plaintext, ReadOnlySpan<byte> associatedData, Span<byte> envelope)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (envelope.Length != EnvelopeLength(plaintext.Length)) throw new ArgumentException("the envelope must be exactly EnvelopeLength(plaintext) bytes", nameof(envelope));
        if (envelope.Overlaps(plaintext)) throw new ArgumentException("the envelope must not overlap the plaintext", nameof(envelope));
        BodyMagic.CopyTo(envelope);
        var nonce = envelope.Slice(MagicSize, NonceSize);
        RandomNumberGenerator.Fill(nonce);

        var aadLength = MagicSize + associatedData.Length;
        byte[]? rented = null;
        Span<byte> aad = aadLength <= MaxStackAad ? stackalloc byte[MaxStackAad] : (rented = ArrayPool<byte>.Shared.Rent(aadLength));
        try
        {
            aad = BuildBodyAad(aad, associatedData);
            using var aes = new AesGcm(key.Bytes, TagSize);
            aes.Encrypt(nonce, plaintext, envelope.Slice(MagicSize + NonceSize, plaintext.Length), envelope[^TagSize..], aad);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// Decrypts a body envelope. Throws <see cref="EnvelopeException"/> (naming no content) if it is malformed,
    /// tampered, or was encrypted under another data key or other associated data.
    /// </summary>
    public byte[] Decrypt(DataKey key, ReadOnlySpan<byte> envelope, ReadOnlySpan<byte> associatedData)
    {
        var plaintext = new byte[PlaintextLength(envelope.Length)];
        Decrypt(key, envelope, associatedData, plaintext);
        return plaintext;
    }

    /// <summary>Length of the plaintext a body envelope of <paramref name="envelopeLength"/> bytes holds; malformed if too short.</summary>
    public static int PlaintextLength(int envelopeLength) =>
        envelopeLength >= MagicSize + NonceSize + TagSize
            ? envelopeLength - MagicSize - NonceSize - TagSize
            : throw new EnvelopeException("malformed body envelope (bad magic or too short)");

    /// <summary>
    /// The same as <see cref="Decrypt(DataKey, ReadOnlySpan{byte}, ReadOnlySpan{byte})"/>, written into
    /// <paramref name="plaintext"/>, which must be exactly <see cref="PlaintextLength"/> bytes and not overlap the
    /// envelope. On failure the plaintext buffer is cleared.
    /// </summary>
    public void Decrypt(DataKey key, ReadOnlySpan<byte> envelope, ReadOnlySpan<byte> associatedData, Span<byte> plaintext)
    {
        ArgumentNullException.ThrowIfNull(key);
        if (envelope.Length < MagicSize + NonceSize + TagSize || !envelope.StartsWith(BodyMagic))
        {
            throw new EnvelopeException("malformed body envelope (bad magic or too short)");
        }
        if (plaintext.Length != PlaintextLength(envelope.Length)) throw new ArgumentException("the plaintext buffer must be exactly PlaintextLength(envelope) bytes", nameof(plaintext));
        if (plaintext.Overlaps(envelope)) throw new ArgumentException("the plaintext buffer must not overlap the envelope", nameof(plaintext));

        var aadLength = MagicSize + associatedData.Length;
        byte[]? rented = null;
        Span<byte> aad = aadLength <= MaxStackAad ? stackalloc byte[MaxStackAad] : (rented = ArrayPool<byte>.Shared.Rent(aadLength));
        try
        {
            aad = BuildBodyAad(aad, associatedData);
            using var aes = new AesGcm(key.Bytes, TagSize);
            aes.Decrypt(envelope.Slice(MagicSize, NonceSize), envelope.Slice(MagicSize + NonceSize, plaintext.Length), envelope[^TagSize..], plaintext, aad);
        }
        catch (AuthenticationTagMismatchException ex)
        {
            plaintext.Clear();
            throw new EnvelopeException(
                "body envelope failed authentication (tampered, wrong data key, or associated data of another resource)", ex);
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>Wrapped key = "WLK1" | id length | id | nonce | ciphertext | tag; AAD = "WLK1" || id || context.</summary>
    private byte[] Wrap(ReadOnlySpan<byte> dek, ReadOnlySpan<byte> context)
    {
        var idLength = _activeKekIdUtf8.Length;
        var blob = new byte[MagicSize + 1 + idLength + NonceSize + DataKey.Length + TagSize];
        KeyMagic.CopyTo(blob);
        blob[MagicSize] = (byte)idLength;
        _activeKekIdUtf8.CopyTo(blob, MagicSize + 1);
        var body = blob.AsSpan(MagicSize + 1 + idLength);
        var nonce = body[..NonceSize];
        RandomNumberGenerator.Fill(nonce);

        var aadLength = MagicSize + idLength + context.Length;
        byte[]? rented = null;
        Span<byte> aad = aadLength <= MaxStackAad ? stackalloc byte[MaxStackAad] : (rented = ArrayPool<byte>.Shared.Rent(aadLength));
        try
        {
            aad = BuildKeyAad(aad, _activeKekIdUtf8, context);
            using var aes = new AesGcm(_activeKek, TagSize);
            aes.Encrypt(nonce, dek, body.Slice(NonceSize, DataKey.Length), body[(NonceSize + DataKey.Length)..], aad);
            return blob;
        }
        finally
        {
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>Validates the wrapped-key layout and returns the KEK id; throws <see cref="EnvelopeException"/> if malformed.</summary>
    private static string ReadWrappedHeader(ReadOnlySpan<byte> wrapped, out int idLength)
    {
        if (wrapped.Length < MagicSize + 1 || !wrapped.StartsWith(KeyMagic))
        {
            throw new EnvelopeException("malformed wrapped data key (bad magic or too short)");
        }

        idLength = wrapped[MagicSize];
        if (wrapped.Length != MagicSize + 1 + idLength + NonceSize + DataKey.Length + TagSize)
        {
            throw new EnvelopeException("malformed wrapped data key (wrong length)");
        }

        string id;
        try
        {
            id = StrictUtf8.GetString(wrapped.Slice(MagicSize + 1, idLength));
        }
        catch (DecoderFallbackException)
        {
            throw new EnvelopeException("malformed wrapped data key (key-encryption key id is not UTF-8)");
        }

        // Ids end up in messages and logs; only accept the plain ids a keyring can contain.
        return Keyring.IsValidKekId(id) ? id : throw new EnvelopeException("malformed wrapped data key (invalid key-encryption key id)");
    }

    private static Span<byte> BuildKeyAad(Span<byte> buffer, ReadOnlySpan<byte> kekId, ReadOnlySpan<byte> context)
    {
        KeyMagic.CopyTo(buffer);
        kekId.CopyTo(buffer[MagicSize..]);
        context.CopyTo(buffer[(MagicSize + kekId.Length)..]);
        return buffer[..(MagicSize + kekId.Length + context.Length)];
    }

    private static Span<byte> BuildBodyAad(Span<byte> buffer, ReadOnlySpan<byte> associatedData)
    {
        BodyMagic.CopyTo(buffer);
        associatedData.CopyTo(buffer[MagicSize..]);
        return buffer[..(MagicSize + associatedData.Length)];
    }
}
