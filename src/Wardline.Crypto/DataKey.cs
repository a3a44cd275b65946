using System.Security.Cryptography;

namespace Wardline.Crypto;

/// <summary>
/// A plaintext 256-bit data-encryption key (DEK). Dispose it as soon as the body is
/// encrypted or decrypted: disposal zeroes the key bytes.
/// </summary>
public sealed class DataKey : IDisposable
{
    /// <summary>DEK length in bytes (AES-256).</summary>
    internal const int Length = 32;

    private readonly byte[] _key;
    private bool _disposed;

    /// <summary>Takes ownership of <paramref name="key"/> (no copy; it is zeroed on dispose).</summary>
    internal DataKey(byte[] key)
    {
        if (key.Length != Length)
        {
            throw new ArgumentException($"a data key is {Length} bytes", nameof(key));
        }

        _key = key;
    }

    /// <summary>The key bytes; throws once disposed so a zeroed key is never used silently.</summary>
    internal ReadOnlySpan<byte> Bytes
    {
        get
        {
            ObjectDisposedException.ThrowIf(_disposed, this);
            return _key;
        }
    }

    /// <summary>Zeroes the key bytes.</summary>
    public void Dispose()
    {
        if (!_disposed)
        {
            CryptographicOperations.ZeroMemory(_key);
            _disposed = true;
        }
    }
}
