using System.Text;
using Microsoft.Extensions.Logging;
using Wardline.Crypto;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Records;

/// <summary>
/// The keyring in use by this process. `wardline keys rotate` rewrites the key file from another
/// process; we notice (at most one file-time check a second) and reload, so a running server
/// wraps new data keys with the new key-encryption key and can unwrap re-wrapped ones.
/// </summary>
internal sealed class RecordKeys
{
    private readonly string? _passphrase;
    private readonly ILogger _logger;
    private volatile State _state;
    private long _nextCheck;

    public RecordKeys(Keyring keyring, string? passphrase, ILogger<RecordKeys> logger)
    {
        _passphrase = passphrase;
        _logger = logger;
        _state = new State(keyring, new EnvelopeCipher(keyring));
        Blind = new BlindIndex(keyring);
    }

    /// <summary>The blind-index key never changes with rotation (re-keying it would mean re-indexing every resource).</summary>
    public BlindIndex Blind { get; }

    public EnvelopeCipher Cipher
    {
        get
        {
            var now = Environment.TickCount64;
            if (now >= Interlocked.Read(ref _nextCheck))
            {
                Interlocked.Exchange(ref _nextCheck, now + 1000);
                if (_state.Keyring.IsStale())
                {
                    Reload();
                }
            }
            return _state.Cipher;
        }
    }

    public string ActiveKekId => _state.Keyring.ActiveKekId;

    /// <summary>The keyring as last loaded (backups derive their manifest key from it and check it holds the keys a backup needs).</summary>
    public Keyring Keyring => _state.Keyring;

    public void Reload()
    {
        var k = Keyring.Load(_state.Keyring.Path, _passphrase);
        _state = new State(k, new EnvelopeCipher(k));
        Log.KeyringReloaded(_logger, k.ActiveKekId);
    }

    public static byte[] KeyContext(string type, string id) => Encoding.UTF8.GetBytes(type + "/" + id);

    public static byte[] BodyContext(string type, string id, int version) =>
        Encoding.UTF8.GetBytes(type + "/" + id + "/" + version.ToString(System.Globalization.CultureInfo.InvariantCulture));

    /// <summary>Decrypts a stored version's body (null for a deletion tombstone).</summary>
    public byte[]? Open(StoredVersion v)
    {
        if (v.Body is null)
        {
            return null;
        }
        using var key = Unwrap(v.Type, v.Id, v.WrappedKey);
        return _state.Cipher.Decrypt(key, v.Body, BodyContext(v.Type, v.Id, v.Version));
    }

    /// <summary>Unwraps a resource's data key, loading the keyring first if a rotation this process has not seen yet wrapped it.</summary>
    public DataKey Unwrap(string type, string id, byte[] wrapped)
    {
        var cipher = Cipher;
        if (!_state.Keyring.KekIds.Contains(cipher.WrappingKekId(wrapped)))
        {
            Reload();
            cipher = _state.Cipher;
        }
        return cipher.UnwrapDataKey(wrapped, KeyContext(type, id));
    }

    private sealed record State(Keyring Keyring, EnvelopeCipher Cipher);
}
