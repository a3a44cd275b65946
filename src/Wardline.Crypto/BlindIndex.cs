using System.Buffers;
using System.Security.Cryptography;
using System.Text;

namespace Wardline.Crypto;

/// <summary>
/// Deterministic, keyed search tokens for equality lookups on encrypted fields:
/// HMAC-SHA256(index key, UTF-8(field + U+001F + value)) truncated to 16 bytes.
/// Deterministic by design, so equal values are visible as equal to anyone holding the database.
/// The index key is not rotated by <c>keys rotate</c>; changing it requires re-indexing.
/// </summary>
public sealed class BlindIndex
{
    private const int IndexLength = 16;
    private const int MaxStackInput = 512;
    private const char Separator = '\u001f';

    private readonly byte[] _key;

    /// <summary>Creates an index over <paramref name="keyring"/>'s index key.</summary>
    public BlindIndex(Keyring keyring)
    {
        ArgumentNullException.ThrowIfNull(keyring);
        _key = keyring.IndexKey;
    }

    /// <summary>
    /// Computes the 16-byte index value of <paramref name="normalizedValue"/> in <paramref name="field"/>.
    /// Pass a value through <see cref="Normalize"/> first when matching should ignore case and accents.
    /// The field name is part of the input, so equal values in different fields give unrelated tokens.
    /// </summary>
    public byte[] Compute(string field, string normalizedValue)
    {
        ArgumentException.ThrowIfNullOrEmpty(field);
        ArgumentNullException.ThrowIfNull(normalizedValue);
        if (field.Contains(Separator, StringComparison.Ordinal))
        {
            // Keeps field + separator + value unambiguous.
            throw new ArgumentException("a blind-index field name must not contain U+001F", nameof(field));
        }

        var fieldLength = Encoding.UTF8.GetByteCount(field);
        var inputLength = fieldLength + 1 + Encoding.UTF8.GetByteCount(normalizedValue);
        byte[]? rented = null;
        Span<byte> input = inputLength <= MaxStackInput ? stackalloc byte[MaxStackInput] : (rented = ArrayPool<byte>.Shared.Rent(inputLength));
        input = input[..inputLength];
        try
        {
            Encoding.UTF8.GetBytes(field, input);
            input[fieldLength] = (byte)Separator;
            Encoding.UTF8.GetBytes(normalizedValue, input[(fieldLength + 1)..]);
            Span<byte> mac = stackalloc byte[HMACSHA256.HashSizeInBytes];
            HMACSHA256.HashData(_key, input, mac);
            return mac[..IndexLength].ToArray();
        }
        finally
        {
            // The input is a plaintext search value (e.g. a patient name); don't leave it in pooled memory.
            CryptographicOperations.ZeroMemory(input);
            if (rented is not null)
            {
                ArrayPool<byte>.Shared.Return(rented);
            }
        }
    }

    /// <summary>
    /// Normalizes text for matching: Unicode NFKD, combining marks (accents) removed, lower-cased
    /// (invariant), whitespace runs collapsed to one space, trimmed. "José  MÜLLER" becomes "jose muller".
    /// NFKD comes from a frozen table (Unicode 14.0) rather than the runtime, which cannot normalize
    /// in invariant-globalization mode; the output is therefore stable across hosts.
    /// </summary>
    public static string Normalize(string text)
    {
        ArgumentNullException.ThrowIfNull(text);
        var builder = new StringBuilder(text.Length);
        var pendingSpace = false;
        foreach (var rune in text.EnumerateRunes())
        {
            if (TextFolding.TryFold(rune, out var folded))
            {
                foreach (var part in folded.EnumerateRunes())
                {
                    Append(builder, part, ref pendingSpace);
                }
            }
            else if (Rune.GetUnicodeCategory(rune) != System.Globalization.UnicodeCategory.NonSpacingMark)
            {
                Append(builder, rune, ref pendingSpace);
            }
        }

        return builder.ToString();
    }

    private static void Append(StringBuilder builder, Rune rune, ref bool pendingSpace)
    {
        if (Rune.IsWhiteSpace(rune))
        {
            pendingSpace = builder.Length > 0; // drops leading whitespace; trailing is never flushed
            return;
        }

        if (pendingSpace)
        {
            builder.Append(' ');
            pendingSpace = false;
        }

        builder.Append(Rune.ToLowerInvariant(rune).ToString());
    }
}
