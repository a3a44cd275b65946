using System.Security.Cryptography;
using System.Text;
using System.Xml.Linq;
using Microsoft.AspNetCore.DataProtection.XmlEncryption;
using Microsoft.Extensions.DependencyInjection;
using Wardline.Crypto;
using Wardline.Server.Modules.Records;

namespace Wardline.Server.Modules.Console;

/// <summary>
/// Seals the secret part of each Data Protection key (its <c>&lt;masterKey&gt;</c>) under the keyring, the way
/// <c>TokenKeys</c> seals the OAuth keys: AES-256-GCM under a fresh data key wrapped by the keyring's active KEK.
/// Data Protection stores the result in place of the secret, inside an <c>&lt;encryptedSecret&gt;</c> element naming
/// <see cref="KeyringXmlDecryptor"/>, so the key ring in the database holds dates and algorithm names, never a key.
/// </summary>
internal sealed class KeyringXmlEncryptor(RecordKeys keys) : IXmlEncryptor
{
    /// <summary>The context the data key is wrapped with and the secret sealed with: a sealed secret opens only as one.</summary>
    internal const string KeyType = "wardline:dataprotection-key";

    internal const string Purpose = "master-key";

    /// <summary>The element that replaces the secret (namespaced, so it is never mistaken for one of Data Protection's).</summary>
    internal static readonly XNamespace Namespace = "urn:wardline:keyring";

    internal static readonly XName SealedName = Namespace + "sealedSecret";

    internal static readonly XName WrappedKeyName = Namespace + "wrappedKey";

    internal static readonly XName ValueName = Namespace + "value";

    public EncryptedXmlInfo Encrypt(XElement plaintextElement)
    {
        ArgumentNullException.ThrowIfNull(plaintextElement);
        // Sized so it never grows (a key's secret is a few hundred bytes): a grown stream would leave copies unzeroed.
        using var stream = new MemoryStream(16 * 1024);
        plaintextElement.Save(stream, SaveOptions.DisableFormatting);
        var buffer = stream.GetBuffer();
        try
        {
            var cipher = keys.Cipher;
            using var key = cipher.CreateDataKey(WrapContext);
            var sealedSecret = cipher.Encrypt(key.DataKey, buffer.AsSpan(0, checked((int)stream.Length)), Context);
            var element = new XElement(SealedName,
                new XComment(" Sealed under the Wardline keyring: AES-256-GCM under a data key wrapped by a key-encryption key. "),
                new XElement(WrappedKeyName, Convert.ToBase64String(key.Wrapped)),
                new XElement(ValueName, Convert.ToBase64String(sealedSecret)));
            return new EncryptedXmlInfo(element, typeof(KeyringXmlDecryptor));
        }
        finally
        {
            CryptographicOperations.ZeroMemory(buffer);
        }
    }

    /// <summary>Opens a secret <see cref="Encrypt"/> sealed (the decryptor's work, here beside its format).</summary>
    internal static XElement Open(RecordKeys keys, XElement encryptedElement)
    {
        ArgumentNullException.ThrowIfNull(encryptedElement);
        if (encryptedElement.Name != SealedName
            || encryptedElement.Element(WrappedKeyName)?.Value is not { } wrappedText
            || encryptedElement.Element(ValueName)?.Value is not { } sealedText)
        {
            throw new EnvelopeException("malformed sealed Data Protection secret");
        }
        byte[] wrapped, sealedSecret;
        try
        {
            wrapped = Convert.FromBase64String(wrappedText);
            sealedSecret = Convert.FromBase64String(sealedText);
        }
        catch (FormatException ex)
        {
            throw new EnvelopeException("malformed sealed Data Protection secret (not base64)", ex);
        }
        // Throws EnvelopeException under another keyring, or if the row was tampered with.
        using var dataKey = keys.Unwrap(KeyType, Purpose, wrapped);
        var plaintext = keys.Cipher.Decrypt(dataKey, sealedSecret, Context);
        try
        {
            using var stream = new MemoryStream(plaintext, writable: false);
            return XElement.Load(stream);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(plaintext);
        }
    }

    /// <summary>What each key's data key is wrapped under (also for <c>keys rotate</c>, which re-wraps it).</summary>
    internal static byte[] WrapContext => RecordKeys.KeyContext(KeyType, Purpose);

    private static byte[] Context => Encoding.UTF8.GetBytes(KeyType + "/" + Purpose);
}

/// <summary>
/// Opens what <see cref="KeyringXmlEncryptor"/> sealed. Data Protection creates it by the type name stored in each
/// key (with the server's services), so this type keeps its name and namespace: renamed, every stored key would be
/// unreadable, and the console would make a new one (signing everyone out). A secret another keyring sealed throws
/// <see cref="EnvelopeException"/>: Data Protection logs it as an error naming the key and the KEK id, never uses the
/// key, and makes a new one if it has no other.
/// </summary>
internal sealed class KeyringXmlDecryptor : IXmlDecryptor
{
    private readonly RecordKeys _keys;

    /// <summary>The constructor Data Protection's activator calls.</summary>
    public KeyringXmlDecryptor(IServiceProvider services)
    {
        ArgumentNullException.ThrowIfNull(services);
        _keys = services.GetRequiredService<RecordKeys>();
    }

    public XElement Decrypt(XElement encryptedElement) => KeyringXmlEncryptor.Open(_keys, encryptedElement);
}
