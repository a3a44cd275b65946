using System.Buffers;
using System.Security.Cryptography;

namespace Wardline.Ledger;

/// <summary>
/// RFC 9162 §2.1.1 hashing with SHA-256: a leaf is SHA-256(0x00 || entry), an interior node
/// SHA-256(0x01 || left || right). The prefixes keep a leaf from ever being taken for a node.
/// </summary>
public static class MerkleHash
{
    public const int Size = 32;

    /// <summary>The root of the empty tree: SHA-256 of nothing.</summary>
    public static byte[] Empty() => SHA256.HashData(ReadOnlySpan<byte>.Empty);

    public static byte[] Leaf(ReadOnlySpan<byte> entry)
    {
        var hash = new byte[Size];
        Leaf(entry, hash);
        return hash;
    }

    /// <summary>Hashes into <paramref name="destination"/> without allocating: the verifier's inner loop.</summary>
    public static void Leaf(ReadOnlySpan<byte> entry, Span<byte> destination)
    {
        // One contiguous buffer and one digest call.
        var length = entry.Length + 1;
        var rented = length > 2048 ? ArrayPool<byte>.Shared.Rent(length) : null;
        var buffer = rented is null ? stackalloc byte[length] : rented.AsSpan(0, length);
        buffer[0] = 0x00;
        entry.CopyTo(buffer[1..]);
        Sha256.Hash(buffer, destination);
        if (rented is not null) ArrayPool<byte>.Shared.Return(rented);
    }

    public static byte[] Node(ReadOnlySpan<byte> left, ReadOnlySpan<byte> right)
    {
        // Shorter children would be hashed zero-padded, a wrong hash rather than an error.
        if (left.Length != Size || right.Length != Size) throw new ArgumentException("A node's children must be 32-byte hashes.");
        Span<byte> buffer = stackalloc byte[1 + 2 * Size];
        buffer[0] = 0x01;
        left.CopyTo(buffer[1..]);
        right.CopyTo(buffer[(1 + Size)..]);
        var hash = new byte[Size];
        Sha256.Hash(buffer, hash);
        return hash;
    }
}
