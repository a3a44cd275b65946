using System.Buffers;
using System.Security.Cryptography;
using System.Text.Json;

namespace Wardline.Crypto;

/// <summary>Reads and writes the keyring file format (docs/formats/envelope.md) and writes it atomically.</summary>
internal static class KeyringFile
{
    internal const string FormatName = "wardline-keyring";
    internal const int FormatVersion = 1;
    internal const string KdfName = "pbkdf2-sha256";
    internal const int KdfIterations = 600_000;

    // Lower bound on load: refuse weak escrow copies; upper bound: a corrupt number must not hang the server.
    private const int MinKdfIterations = 100_000;
    private const int MaxKdfIterations = 10_000_000;
    private const int SaltSize = 16;
    private const int NonceSize = 12;
    private const int TagSize = 16;

    /// <summary>Associated data of the protected inner document: binds it to this format and version.</summary>
    internal static ReadOnlySpan<byte> ProtectedAad => "wardline-keyring/1"u8;

    /// <summary>Serializes the file; protected (AES-256-GCM under PBKDF2) when the passphrase is non-empty.</summary>
    internal static byte[] Serialize(KeyringData data, string? passphrase)
    {
        var buffer = new ArrayBufferWriter<byte>();
        try
        {
            using (var writer = new Utf8JsonWriter(buffer, new JsonWriterOptions { Indented = true }))
            {
                writer.WriteStartObject();
                writer.WriteString("format", FormatName);
                writer.WriteNumber("version", FormatVersion);
                if (string.IsNullOrEmpty(passphrase))
                {
                    writer.WriteBoolean("protected", false);
                    writer.WritePropertyName("keyring");
                    WriteInner(writer, data);
                }
                else
                {
                    writer.WriteBoolean("protected", true);
                    WriteProtected(writer, data, passphrase);
                }

                writer.WriteEndObject();
            }

            buffer.Write("\n"u8);
            return buffer.WrittenSpan.ToArray();
        }
        finally
        {
            buffer.Clear(); // zeroes the written bytes
        }
    }

    /// <summary>Parses a keyring file; every failure becomes a <see cref="KeyringException"/> naming <paramref name="path"/>.</summary>
    internal static KeyringData Parse(byte[] content, string path, string? passphrase, out bool isProtected)
    {
        try
        {
            using var document = JsonDocument.Parse(content);
            var root = document.RootElement;
            if (root.ValueKind != JsonValueKind.Object || GetString(root, "format") != FormatName)
            {
                throw new FormatException("not a wardline keyring file");
            }

            var version = GetInt(root, "version");
            if (version != FormatVersion)
            {
                throw new FormatException($"unsupported keyring format version {version}");
            }

            isProtected = GetProperty(root, "protected", JsonValueKind.True, JsonValueKind.False).GetBoolean();
            if (!isProtected)
            {
                return ReadInner(GetProperty(root, "keyring", JsonValueKind.Object));
            }

            if (string.IsNullOrEmpty(passphrase))
            {
                throw new KeyringException($"the keyring at {path} is protected by a passphrase; set WARDLINE_KEYRING_PASSPHRASE");
            }

            var plaintext = DecryptProtected(root, path, passphrase);
            try
            {
                using var inner = JsonDocument.Parse(plaintext);
                return ReadInner(inner.RootElement);
            }
            finally
            {
                CryptographicOperations.ZeroMemory(plaintext);
            }
        }
        catch (JsonException ex)
        {
            // The JSON parser's own message can quote file content (possibly key material); report the position only.
            throw new KeyringException($"keyring {path} is corrupt: not valid JSON (line {ex.LineNumber + 1})");
        }
        catch (FormatException ex)
        {
            throw new KeyringException($"keyring {path} is corrupt: {ex.Message}");
        }
    }

    /// <summary>
    /// Writes <paramref name="content"/> to a 0600 temp file in the target folder, fsyncs it and renames it
    /// over <paramref name="path"/>, so readers see the old or the new file, never a partial or world-readable one.
    /// With <paramref name="overwrite"/> false the rename fails with <see cref="IOException"/> if the target exists.
    /// </summary>
    internal static void WriteAtomically(string path, ReadOnlySpan<byte> content, bool overwrite)
    {
        var directory = Path.GetDirectoryName(path) ?? throw new ArgumentException("path has no parent folder", nameof(path));
        if (!Directory.Exists(directory))
        {
            if (OperatingSystem.IsWindows())
            {
                Directory.CreateDirectory(directory);
            }
            else
            {
                Directory.CreateDirectory(directory, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            }
        }

        var tempPath = Path.Combine(directory, $".{Path.GetFileName(path)}.{RandomNumberGenerator.GetHexString(8, lowercase: true)}.tmp");
        var options = new FileStreamOptions { Mode = FileMode.CreateNew, Access = FileAccess.Write, Share = FileShare.None };
        if (!OperatingSystem.IsWindows())
        {
            options.UnixCreateMode = UnixFileMode.UserRead | UnixFileMode.UserWrite; // 0600 from the first byte
        }

        try
        {
            using (var stream = new FileStream(tempPath, options))
            {
                stream.Write(content);
                stream.Flush(flushToDisk: true);
            }

            // Not fsyncing the folder: .NET has no portable API for it; the rename is still atomic.
            File.Move(tempPath, path, overwrite);
        }
        catch
        {
            File.Delete(tempPath); // no-op if already moved or never created
            throw;
        }
    }

    private static void WriteInner(Utf8JsonWriter writer, KeyringData data)
    {
        writer.WriteStartObject();
        writer.WriteString("activeKek", data.ActiveKekId);
        writer.WriteStartArray("keks");
        foreach (var kek in data.Keks)
        {
            writer.WriteStartObject();
            writer.WriteString("id", kek.Id);
            writer.WriteString("created", kek.Created);
            writer.WriteBase64String("key", kek.Key);
            writer.WriteBoolean("retired", kek.Retired);
            writer.WriteEndObject();
        }

        writer.WriteEndArray();
        writer.WriteBase64String("indexKey", data.IndexKey);
        writer.WriteEndObject();
    }

    private static void WriteProtected(Utf8JsonWriter writer, KeyringData data, string passphrase)
    {
        var inner = new ArrayBufferWriter<byte>();
        var salt = RandomNumberGenerator.GetBytes(SaltSize);
        var nonce = RandomNumberGenerator.GetBytes(NonceSize);
        var key = Rfc2898DeriveBytes.Pbkdf2(passphrase, salt, KdfIterations, HashAlgorithmName.SHA256, Keyring.KeyLength);
        try
        {
            using (var innerWriter = new Utf8JsonWriter(inner))
            {
                WriteInner(innerWriter, data);
            }

            var ciphertext = new byte[inner.WrittenCount + TagSize];
            using (var aes = new AesGcm(key, TagSize))
            {
                aes.Encrypt(nonce, inner.WrittenSpan, ciphertext.AsSpan(0, inner.WrittenCount), ciphertext.AsSpan(inner.WrittenCount), ProtectedAad);
            }

            writer.WriteStartObject("kdf");
            writer.WriteString("name", KdfName);
            writer.WriteNumber("iterations", KdfIterations);
            writer.WriteBase64String("salt", salt);
            writer.WriteEndObject();
            writer.WriteBase64String("nonce", nonce);
            writer.WriteBase64String("ciphertext", ciphertext);
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
            inner.Clear();
        }
    }

    private static byte[] DecryptProtected(JsonElement root, string path, string passphrase)
    {
        var kdf = GetProperty(root, "kdf", JsonValueKind.Object);
        if (GetString(kdf, "name") != KdfName)
        {
            throw new FormatException("unsupported key derivation function");
        }

        var iterations = GetInt(kdf, "iterations");
        if (iterations is < MinKdfIterations or > MaxKdfIterations)
        {
            throw new FormatException($"kdf iterations {iterations} outside {MinKdfIterations}..{MaxKdfIterations}");
        }

        var salt = GetBase64(kdf, "salt");
        var nonce = GetBase64(root, "nonce");
        var ciphertext = GetBase64(root, "ciphertext");
        if (salt.Length < SaltSize || nonce.Length != NonceSize || ciphertext.Length < TagSize)
        {
            throw new FormatException("salt, nonce or ciphertext has the wrong length");
        }

        var key = Rfc2898DeriveBytes.Pbkdf2(passphrase, salt, iterations, HashAlgorithmName.SHA256, Keyring.KeyLength);
        var plaintextLength = ciphertext.Length - TagSize;
        var plaintext = new byte[plaintextLength];
        try
        {
            using var aes = new AesGcm(key, TagSize);
            aes.Decrypt(nonce, ciphertext.AsSpan(0, plaintextLength), ciphertext.AsSpan(plaintextLength), plaintext, ProtectedAad);
            return plaintext;
        }
        catch (AuthenticationTagMismatchException)
        {
            // GCM cannot tell a wrong passphrase from a damaged ciphertext; the wrong passphrase is far more likely.
            throw new KeyringException($"wrong passphrase for keyring {path} (or its ciphertext is damaged)");
        }
        finally
        {
            CryptographicOperations.ZeroMemory(key);
        }
    }

    private static KeyringData ReadInner(JsonElement inner)
    {
        if (inner.ValueKind != JsonValueKind.Object)
        {
            throw new FormatException("keyring is not an object");
        }

        var active = GetString(inner, "activeKek");
        var keks = new List<KekEntry>();
        var ids = new HashSet<string>(StringComparer.Ordinal);
        foreach (var element in GetProperty(inner, "keks", JsonValueKind.Array).EnumerateArray())
        {
            if (element.ValueKind != JsonValueKind.Object)
            {
                throw new FormatException("a key-encryption key entry is not an object");
            }

            var id = GetString(element, "id");
            if (!Keyring.IsValidKekId(id) || !ids.Add(id))
            {
                throw new FormatException("invalid or duplicate key-encryption key id");
            }

            if (!GetProperty(element, "created", JsonValueKind.String).TryGetDateTime(out var created))
            {
                throw new FormatException($"key-encryption key '{id}' has an invalid created date");
            }

            var key = GetBase64(element, "key");
            if (key.Length != Keyring.KeyLength)
            {
                throw new FormatException($"key-encryption key '{id}' is not {Keyring.KeyLength} bytes");
            }

            var retired = GetProperty(element, "retired", JsonValueKind.True, JsonValueKind.False).GetBoolean();
            keks.Add(new KekEntry(id, DateTime.SpecifyKind(created.ToUniversalTime(), DateTimeKind.Utc), key, retired));
        }

        if (!ids.Contains(active))
        {
            throw new FormatException("the active key-encryption key is not in the keyring");
        }

        var indexKey = GetBase64(inner, "indexKey");
        if (indexKey.Length != Keyring.KeyLength)
        {
            throw new FormatException($"the index key is not {Keyring.KeyLength} bytes");
        }

        return new KeyringData(active, keks, indexKey);
    }

    private static JsonElement GetProperty(JsonElement element, string name, JsonValueKind kind, JsonValueKind alternativeKind = JsonValueKind.Undefined)
    {
        if (!element.TryGetProperty(name, out var value) || (value.ValueKind != kind && value.ValueKind != alternativeKind))
        {
            throw new FormatException($"missing or mistyped field '{name}'");
        }

        return value;
    }

    private static string GetString(JsonElement element, string name) =>
        GetProperty(element, name, JsonValueKind.String).GetString()!;

    private static int GetInt(JsonElement element, string name) =>
        GetProperty(element, name, JsonValueKind.Number).TryGetInt32(out var value)
            ? value
            : throw new FormatException($"field '{name}' is not a 32-bit integer");

    private static byte[] GetBase64(JsonElement element, string name) =>
        GetProperty(element, name, JsonValueKind.String).TryGetBytesFromBase64(out var bytes)
            ? bytes
            : throw new FormatException($"field '{name}' is not base64");
}
