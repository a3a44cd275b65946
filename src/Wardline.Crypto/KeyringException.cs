namespace Wardline.Crypto;

/// <summary>
/// The keyring file is missing, unreadable, corrupt, or its passphrase is missing or wrong.
/// Messages name the file, never key material.
/// </summary>
public sealed class KeyringException : Exception
{
    /// <summary>Creates the exception with a message.</summary>
    public KeyringException(string message) : base(message)
    {
    }

    /// <summary>Creates the exception with a message and the underlying cause.</summary>
    public KeyringException(string message, Exception innerException) : base(message, innerException)
    {
    }

    /// <summary>Creates the exception with a generic message.</summary>
    public KeyringException() : base("keyring error")
    {
    }
}
