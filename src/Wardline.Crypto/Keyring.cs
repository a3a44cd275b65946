using System.Diagnostics.CodeAnalysis;
using System.Security.Cryptography;

namespace Wardline.Crypto;

/// <summary>
/// The key-encryption keys (KEKs) and the blind-index key, kept in a key file outside the database
/// (format: docs/formats/envelope.md). Instances are immutable snapshots of the file: after
/// <see cref="Rotate"/> or when <see cref="IsStale"/> turns true, load a new instance and build new
/// <see cref="EnvelopeCipher"/>/<see cref="BlindIndex"/> objects from it.
/// </summary>
public sealed class Keyring
{
    /// <summary>KEK and index key length in bytes (AES-256 / HMAC-SHA256).</summary>
    internal const int KeyLength = 32;

    /// <summary>Longest KEK id; it must fit the one-byte length field of a wrapped data key.</summary>
    internal const int MaxKekIdLength = 64;

    private readonly IReadOnlyList<KekEntry> _keks;
    private readonly Dictionary<string, byte[]> _keysById;
    private readonly byte[] _indexKey;
    private readonly bool _isProtected;
    private readonly DateTime _loadedWriteTimeUtc;
    private readonly byte[] _fileHash;

    private Keyring(string path, KeyringData data, bool isProtected, DateTime loadedWriteTimeUtc, byte[] fileHash)
    {
        Path = path;
        ActiveKekId = data.ActiveKekId;
        _keks = data.Keks;
        _keysById = data.Keks.ToDictionary(k => k.Id, k => k.Key, StringComparer.Ordinal);
        KekIds = data.Keks.Select(k => k.Id).ToArray();
        _indexKey = data.IndexKey;
        _isProtected = isProtected;
        _loadedWriteTimeUtc = loadedWriteTimeUtc;
        _fileHash = fileHash;
    }

    /// <summary>Full path of the key file this instance was loaded from.</summary>
    public string Path { get; }

    /// <summary>Id of the KEK that wraps new data keys.</summary>
    public string ActiveKekId { get; }

    /// <summary>Ids of all KEKs, oldest first; retired ones are kept so old wrapped data keys still unwrap.</summary>
    public IReadOnlyList<string> KekIds { get; }

    /// <summary>The blind-index HMAC key; for <see cref="BlindIndex"/> only.</summary>
    internal byte[] IndexKey => _indexKey;

    /// <summary>Looks up a KEK by id; for <see cref="EnvelopeCipher"/> only.</summary>
    internal bool TryGetKek(string id, [NotNullWhen(true)] out byte[]? key) => _keysById.TryGetValue(id, out key);

    /// <summary>
    /// Loads the keyring at <paramref name="path"/>, or creates it (one fresh KEK, one fresh index key,
    /// mode 0600, parent folder 0700 if missing) when no file exists. A non-empty
    /// <paramref name="passphrase"/> protects a newly created file.
    /// </summary>
    public static Keyring LoadOrCreate(string path, string? passphrase)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var fullPath = System.IO.Path.GetFullPath(path);
        if (File.Exists(fullPath))
        {
            return Load(fullPath, passphrase);
        }

        var kek = NewKek(retired: false);
        var data = new KeyringData(kek.Id, [kek], RandomNumberGenerator.GetBytes(KeyLength));
        var content = KeyringFile.Serialize(data, passphrase);
        try
        {
            KeyringFile.WriteAtomically(fullPath, content, overwrite: false);
        }
        catch (IOException) when (File.Exists(fullPath))
        {
            // Another process created it first; theirs wins so both use the same keys.
            return Load(fullPath, passphrase);
        }

        return new Keyring(fullPath, data, IsProtected(passphrase), File.GetLastWriteTimeUtc(fullPath), SHA256.HashData(content));
    }

    /// <summary>
    /// Loads the keyring at <paramref name="path"/>. Throws <see cref="KeyringException"/> when the file is
    /// missing, unreadable or corrupt, or when it is protected and the passphrase is missing or wrong.
    /// The passphrase is ignored for an unprotected file.
    /// </summary>
    public static Keyring Load(string path, string? passphrase)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        var fullPath = System.IO.Path.GetFullPath(path);

        // Taken before reading, so a write racing with this load makes IsStale() true rather than hiding it.
        var writeTime = File.GetLastWriteTimeUtc(fullPath);
        byte[] content;
        try
        {
            content = File.ReadAllBytes(fullPath);
        }
        catch (Exception ex) when (ex is FileNotFoundException or DirectoryNotFoundException)
        {
            throw new KeyringException($"no keyring at {fullPath}");
        }
        catch (Exception ex) when (ex is IOException or UnauthorizedAccessException)
        {
            throw new KeyringException($"cannot read keyring {fullPath}: {ex.Message}", ex);
        }

        try
        {
            var data = KeyringFile.Parse(content, fullPath, passphrase, out var isProtected);
            return new Keyring(fullPath, data, isProtected, writeTime, SHA256.HashData(content));
        }
        finally
        {
            // An unprotected file holds base64 keys; don't leave a copy for the GC to keep around.
            CryptographicOperations.ZeroMemory(content);
        }
    }

    /// <summary>
    /// True when the key file on disk was modified (or removed) after this instance was loaded,
    /// e.g. by <c>wardline keys rotate</c> in another process. Cheap: one stat call.
    /// </summary>
    public bool IsStale() => File.GetLastWriteTimeUtc(Path) != _loadedWriteTimeUtc;

    /// <summary>
    /// Adds a new KEK, makes it active and marks the older ones retired (kept for unwrapping until
    /// data keys are re-wrapped), saves the file atomically and returns the new instance.
    /// Protection is preserved: a protected keyring is re-encrypted under <paramref name="passphrase"/>,
    /// which must open the current file; for an unprotected keyring the passphrase is ignored.
    /// Throws <see cref="KeyringException"/> if the file changed on disk since this instance was loaded,
    /// so a concurrent rotation cannot silently drop a KEK.
    /// </summary>
    public Keyring Rotate(string? passphrase)
    {
        // Re-reading also proves the passphrase opens the current file, so a typo cannot re-encrypt
        // the keyring under a passphrase nobody knows.
        var current = Load(Path, _isProtected ? passphrase : null);
        if (!CryptographicOperations.FixedTimeEquals(current._fileHash, _fileHash))
        {
            throw new KeyringException($"the keyring at {Path} changed on disk since it was loaded; reload it and retry");
        }

        var keks = _keks.Select(k => k with { Retired = true }).Append(NewKek(retired: false)).ToArray();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var kek in keks)
        {
            if (!ids.Add(kek.Id))
            {
                // Random 8-hex-digit ids collide with negligible probability; refuse rather than shadow a key.
                throw new KeyringException($"generated key-encryption key id '{kek.Id}' already exists in {Path}; retry");
            }
        }

        var data = new KeyringData(keks[^1].Id, keks, _indexKey);
        var content = KeyringFile.Serialize(data, _isProtected ? passphrase : null);
        KeyringFile.WriteAtomically(Path, content, overwrite: true);
        return new Keyring(Path, data, _isProtected, File.GetLastWriteTimeUtc(Path), SHA256.HashData(content));
    }

    /// <summary>
    /// Writes a passphrase-protected copy of this keyring to <paramref name="path"/> for key escrow
    /// (same format, mode 0600, atomic). Refuses to overwrite an existing file.
    /// </summary>
    public void ExportEscrow(string path, string escrowPassphrase)
    {
        ArgumentException.ThrowIfNullOrEmpty(path);
        ArgumentException.ThrowIfNullOrEmpty(escrowPassphrase);
        var fullPath = System.IO.Path.GetFullPath(path);
        if (File.Exists(fullPath))
        {
            throw new KeyringException($"escrow file {fullPath} already exists; choose another path");
        }

        var content = KeyringFile.Serialize(new KeyringData(ActiveKekId, _keks, _indexKey), escrowPassphrase);
        try
        {
            KeyringFile.WriteAtomically(fullPath, content, overwrite: false);
        }
        catch (IOException ex) when (File.Exists(fullPath))
        {
            throw new KeyringException($"escrow file {fullPath} already exists; choose another path", ex);
        }
    }

    /// <summary>KEK ids are embedded in wrapped data keys and error messages, so keep them short and plain.</summary>
    internal static bool IsValidKekId(string id) =>
        id.Length is > 0 and <= MaxKekIdLength
        && id.All(c => char.IsAsciiLetterOrDigit(c) || c is '-' or '_' or '.');

    private static bool IsProtected(string? passphrase) => !string.IsNullOrEmpty(passphrase);

    private static string NewKekId() => "kek-" + RandomNumberGenerator.GetHexString(8, lowercase: true);

    private static KekEntry NewKek(bool retired) =>
        new(NewKekId(), DateTime.UtcNow, RandomNumberGenerator.GetBytes(KeyLength), retired);
}

/// <summary>One key-encryption key as stored in the keyring file.</summary>
internal sealed record KekEntry(string Id, DateTime Created, byte[] Key, bool Retired);

/// <summary>The inner keyring document.</summary>
internal sealed record KeyringData(string ActiveKekId, IReadOnlyList<KekEntry> Keks, byte[] IndexKey);
