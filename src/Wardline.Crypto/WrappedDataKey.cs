namespace Wardline.Crypto;

/// <summary>
/// A freshly created data key: the plaintext <see cref="DataKey"/> for immediate use and the
/// <see cref="Wrapped"/> blob to store next to the ciphertext. Disposing disposes the data key.
/// </summary>
public sealed class WrappedDataKey : IDisposable
{
    internal WrappedDataKey(DataKey dataKey, byte[] wrapped)
    {
        DataKey = dataKey;
        Wrapped = wrapped;
    }

    /// <summary>The plaintext data key; never store it.</summary>
    public DataKey DataKey { get; }

    /// <summary>The data key encrypted under the active KEK ("WLK1" format, see docs/formats/envelope.md).</summary>
    public byte[] Wrapped { get; }

    /// <summary>Zeroes the plaintext data key.</summary>
    public void Dispose() => DataKey.Dispose();
}
