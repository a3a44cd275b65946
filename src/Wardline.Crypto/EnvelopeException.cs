using System.Security.Cryptography;

namespace Wardline.Crypto;

/// <summary>
/// A wrapped data key or body envelope could not be opened: malformed, wrapped by an unknown
/// key-encryption key, or failed authentication (tampered, wrong key, or wrong associated data).
/// Derives from <see cref="CryptographicException"/>; messages never include content or key material.
/// </summary>
public sealed class EnvelopeException : CryptographicException
{
    /// <summary>Creates the exception with a message.</summary>
    public EnvelopeException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the underlying cause.</summary>
    public EnvelopeException(string message, Exception innerException) : base(message, innerException)
    {
    }

    /// <summary>Creates the exception with a generic message.</summary>
    public EnvelopeException() : base("envelope error")
    {
    }
}
