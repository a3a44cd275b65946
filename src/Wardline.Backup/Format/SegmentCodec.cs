using System.Buffers;
using System.Buffers.Binary;
using System.Security.Cryptography;
using System.Text;
using System.Text.Json;
using Wardline.Crypto;
using ZstdSharp;
using ZstdSharp.Unsafe;

namespace Wardline.Backup.Format;

/// <summary>
/// A segment object (docs/formats/backup.md, "Segment"): magic, a JSON header, and the zstd-compressed
/// payload encrypted with AES-256-GCM under a fresh data key wrapped by the keyring's active KEK. The header is
/// the AAD, and the data key is bound to the segment's name, so a segment renamed, moved or edited fails to open.
/// </summary>
internal static class SegmentCodec
{
    public const int FormatVersion = 1;

    private static ReadOnlySpan<byte> Magic => "WLBKSEG1"u8;

    /// <summary>Longest header accepted on read; a header is a few hundred bytes.</summary>
    private const int MaxHeader = 64 * 1024;

    /// <summary>Largest segment content accepted on read; writers make segments of a few tens of MB.</summary>
    public const int MaxPlainLength = 1 << 30;

    /// <summary>zstd level: 3 is zstd's default, fast on two cores and close to the best ratio on encrypted-body-heavy payloads.</summary>
    public static int CompressionLevel { get; set; } = 3;

    /// <summary>Seals <paramref name="payload"/> as the segment <paramref name="name"/>, compressed at <paramref name="level"/> (default <see cref="CompressionLevel"/>).</summary>
    public static byte[] Seal(EnvelopeCipher cipher, string name, string backupId, ReadOnlySpan<byte> payload, int? level = null) =>
        Seal(cipher, name, backupId, payload, level, pooled: false, out _);

    /// <summary>
    /// The same as <see cref="Seal(EnvelopeCipher, string, string, ReadOnlySpan{byte}, int?)"/>, into a buffer rented
    /// from the shared array pool: the segment is its first <paramref name="length"/> bytes, and the caller returns it
    /// to the pool once stored. For a database image's pieces, where a fresh array per piece costs page faults.
    /// </summary>
    public static byte[] SealPooled(EnvelopeCipher cipher, string name, string backupId, ReadOnlySpan<byte> payload, int? level, out int length) =>
        Seal(cipher, name, backupId, payload, level, pooled: true, out length);

    private static byte[] Seal(EnvelopeCipher cipher, string name, string backupId, ReadOnlySpan<byte> payload, int? level, bool pooled, out int length)
    {
        // Compressed into a pooled buffer, encrypted straight into the segment.
        var buffer = ArrayPool<byte>.Shared.Rent(Compressor.GetCompressBound(payload.Length));
        try
        {
            int compressed;
            using (var zstd = new Compressor(level ?? CompressionLevel))
            {
                compressed = zstd.Wrap(payload, buffer);
            }
            using var key = cipher.CreateDataKey(KeyContext(name));
            var header = JsonSerializer.SerializeToUtf8Bytes(new SegmentHeader(FormatVersion, name, backupId, "zstd", "aes-256-gcm",
                Convert.ToBase64String(key.Wrapped), payload.Length));
            var aad = Aad(header);
            length = aad.Length + EnvelopeCipher.EnvelopeLength(compressed);
            var segment = pooled ? ArrayPool<byte>.Shared.Rent(length) : new byte[length];
            aad.CopyTo(segment, 0);
            cipher.Encrypt(key.DataKey, buffer.AsSpan(0, compressed), aad, segment.AsSpan(aad.Length, length - aad.Length));
            return segment;
        }
        finally
        {
            ArrayPool<byte>.Shared.Return(buffer);
        }
    }

    /// <summary>
    /// Opens a segment read back as <paramref name="name"/>: checks the format, unwraps the data key (a KEK the
    /// keyring lacks is named), authenticates and decompresses. <see cref="BackupFormatException"/> on any failure.
    /// </summary>
    public static byte[] Open(EnvelopeCipher cipher, string name, ReadOnlySpan<byte> segment) =>
        Open(cipher, name, segment, pooled: false, out _);

    /// <summary>
    /// The same as <see cref="Open(EnvelopeCipher, string, ReadOnlySpan{byte})"/>, into a buffer rented from the shared
    /// array pool: the payload is its first <paramref name="length"/> bytes, and the caller returns it to the pool. For the
    /// 64 MB pieces of a database image, where a fresh array per piece costs more in page faults and zeroing than the work.
    /// </summary>
    public static byte[] OpenPooled(EnvelopeCipher cipher, string name, ReadOnlySpan<byte> segment, out int length) =>
        Open(cipher, name, segment, pooled: true, out length);

    private static byte[] Open(EnvelopeCipher cipher, string name, ReadOnlySpan<byte> segment, bool pooled, out int length)
    {
        if (segment.Length < Magic.Length + 4 || !segment.StartsWith(Magic)) throw new BackupFormatException($"segment {name} is not a Wardline segment (bad magic or truncated)");
        var headerLength = BinaryPrimitives.ReadInt32BigEndian(segment[Magic.Length..]);
        if (headerLength <= 0 || headerLength > MaxHeader || Magic.Length + 4 + headerLength > segment.Length)
            throw new BackupFormatException($"segment {name} has a bad header length (truncated?)");
        var aadLength = Magic.Length + 4 + headerLength;
        SegmentHeader header;
        try
        {
            header = JsonSerializer.Deserialize<SegmentHeader>(segment.Slice(Magic.Length + 4, headerLength))
                ?? throw new BackupFormatException($"segment {name} has an empty header");
        }
        catch (JsonException)
        {
            throw new BackupFormatException($"segment {name} has a malformed header");
        }
        if (header.Format != FormatVersion) throw new BackupFormatException($"segment {name} is format {header.Format}; this Wardline reads format {FormatVersion}");
        if (header.Name != name) throw new BackupFormatException($"segment {name} says it is {header.Name}: it was renamed or moved");
        if (header.PlainLength is < 0 or > MaxPlainLength) throw new BackupFormatException($"segment {name} declares {header.PlainLength} bytes of content, outside 0..{MaxPlainLength}");
        if (header.Compression != "zstd" || header.Cipher != "aes-256-gcm") throw new BackupFormatException($"segment {name} uses {header.Compression}/{header.Cipher}, which this Wardline does not read");
        byte[] wrapped;
        try
        {
            wrapped = Convert.FromBase64String(header.WrappedKey);
        }
        catch (FormatException)
        {
            throw new BackupFormatException($"segment {name} has a malformed wrapped key");
        }
        string kekId;
        try
        {
            kekId = cipher.WrappingKekId(wrapped);
        }
        catch (EnvelopeException)
        {
            throw new BackupFormatException($"segment {name} has a malformed wrapped key");
        }
        DataKey key;
        try
        {
            key = cipher.UnwrapDataKey(wrapped, KeyContext(name));
        }
        catch (EnvelopeException ex)
        {
            throw new BackupFormatException(ex.Message.Contains("unknown key-encryption key", StringComparison.Ordinal)
                ? $"segment {name} is encrypted under key-encryption key '{kekId}', which this keyring does not hold: restore with the keyring (or escrow copy) that made the backup"
                : $"segment {name}: its data key does not open with key-encryption key '{kekId}' of this keyring (altered, or another keyring with the same key id)");
        }
        var compressed = ArrayPool<byte>.Shared.Rent(Math.Max(0, segment.Length - aadLength));
        byte[]? payload = null;
        try
        {
            int compressedLength;
            using (key)
            {
                try
                {
                    compressedLength = EnvelopeCipher.PlaintextLength(segment.Length - aadLength);
                    cipher.Decrypt(key, segment[aadLength..], segment[..aadLength], compressed.AsSpan(0, compressedLength));
                }
                catch (EnvelopeException)
                {
                    throw new BackupFormatException($"segment {name} fails authentication: it was altered or truncated");
                }
            }
            // One call decodes any conformant content (one or several frames, with or without their content size, with
            // checksums) straight into the payload; content longer than the header's length does not fit and is refused.
            payload = pooled ? ArrayPool<byte>.Shared.Rent(header.PlainLength) : new byte[header.PlainLength];
            try
            {
                using var zstd = new Decompressor();
                if (zstd.Unwrap(compressed.AsSpan(0, compressedLength), payload.AsSpan(0, header.PlainLength)) != header.PlainLength)
                    throw new BackupFormatException($"segment {name} does not hold the {header.PlainLength} bytes its header says");
            }
            catch (ZstdException ex) when (ex.Code == ZSTD_ErrorCode.ZSTD_error_dstSize_tooSmall)
            {
                throw new BackupFormatException($"segment {name} does not hold the {header.PlainLength} bytes its header says");
            }
            catch (ZstdException)
            {
                throw new BackupFormatException($"segment {name} does not decompress");
            }
            length = header.PlainLength;
            var opened = payload;
            payload = null;
            return opened;
        }
        finally
        {
            // Not cleared, like the buffers Seal and the image writer pool: their content is the store's own, which the
            // same process holds in its page cache and database connections anyway.
            ArrayPool<byte>.Shared.Return(compressed);
            if (pooled && payload is not null) ArrayPool<byte>.Shared.Return(payload);
        }
    }

    /// <summary>SHA-256 of the whole object, as the manifest lists it.</summary>
    public static string Checksum(ReadOnlySpan<byte> segment) => Convert.ToHexStringLower(SHA256.HashData(segment));

    private static byte[] KeyContext(string name) => Encoding.UTF8.GetBytes("wardline.backup.segment/" + name);

    private static byte[] Aad(byte[] header)
    {
        var aad = new byte[Magic.Length + 4 + header.Length];
        Magic.CopyTo(aad);
        BinaryPrimitives.WriteInt32BigEndian(aad.AsSpan(Magic.Length), header.Length);
        header.CopyTo(aad, Magic.Length + 4);
        return aad;
    }

    private sealed record SegmentHeader(
        [property: System.Text.Json.Serialization.JsonPropertyName("format")] int Format,
        [property: System.Text.Json.Serialization.JsonPropertyName("name")] string Name,
        [property: System.Text.Json.Serialization.JsonPropertyName("backup")] string Backup,
        [property: System.Text.Json.Serialization.JsonPropertyName("compression")] string Compression,
        [property: System.Text.Json.Serialization.JsonPropertyName("cipher")] string Cipher,
        [property: System.Text.Json.Serialization.JsonPropertyName("wrappedKey")] string WrappedKey,
        [property: System.Text.Json.Serialization.JsonPropertyName("plainLength")] int PlainLength);
}
