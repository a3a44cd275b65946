using System.Text.Json;

namespace Wardline.Crypto.Tests;

public sealed class KeyringTests : IDisposable
{
    private const string Passphrase = "correct horse battery staple";
    private const UnixFileMode OwnerReadWrite = UnixFileMode.UserRead | UnixFileMode.UserWrite;

    private readonly TempDirectory _temp = new();

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void LoadOrCreate_creates_a_key_file_only_its_owner_can_read()
    {
        var path = Path.Combine(_temp.Path, "keys", "nested", "keyring.json");
        var keyring = Keyring.LoadOrCreate(path, passphrase: null);

        Assert.True(File.Exists(path));
        Assert.Equal(Path.GetFullPath(path), keyring.Path);
        Assert.Equal([keyring.ActiveKekId], keyring.KekIds);
        Assert.Equal(32, keyring.IndexKey.Length);
        Assert.True(keyring.TryGetKek(keyring.ActiveKekId, out var kek));
        Assert.Equal(32, kek.Length);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(path));
            Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute, File.GetUnixFileMode(Path.GetDirectoryName(path)!));
        }

        Assert.Equal([path], Directory.GetFiles(Path.GetDirectoryName(path)!)); // no temp file left behind
    }

    [Fact]
    public void Unprotected_key_file_has_the_documented_shape()
    {
        var path = _temp.File("keyring.json");
        var keyring = Keyring.LoadOrCreate(path, passphrase: null);
        using var json = JsonDocument.Parse(File.ReadAllBytes(path));
        var root = json.RootElement;
        Assert.Equal("wardline-keyring", root.GetProperty("format").GetString());
        Assert.Equal(1, root.GetProperty("version").GetInt32());
        Assert.False(root.GetProperty("protected").GetBoolean());
        var inner = root.GetProperty("keyring");
        Assert.Equal(keyring.ActiveKekId, inner.GetProperty("activeKek").GetString());
        var kek = Assert.Single(inner.GetProperty("keks").EnumerateArray());
        Assert.Equal(keyring.ActiveKekId, kek.GetProperty("id").GetString());
        Assert.False(kek.GetProperty("retired").GetBoolean());
        Assert.Equal(32, kek.GetProperty("key").GetBytesFromBase64().Length);
        Assert.Equal(DateTimeKind.Utc, kek.GetProperty("created").GetDateTime().Kind);
        Assert.Equal(32, inner.GetProperty("indexKey").GetBytesFromBase64().Length);
    }

    [Fact]
    public void LoadOrCreate_loads_an_existing_keyring_instead_of_replacing_it()
    {
        var path = _temp.File("keyring.json");
        var first = Keyring.LoadOrCreate(path, passphrase: null);
        var second = Keyring.LoadOrCreate(path, passphrase: null);
        Assert.Equal(first.ActiveKekId, second.ActiveKekId);
        Assert.Equal(first.IndexKey, second.IndexKey);
    }

    [Fact]
    public void Load_of_a_missing_file_says_there_is_no_keyring()
    {
        var path = _temp.File("absent.json");
        var ex = Assert.Throws<KeyringException>(() => Keyring.Load(path, passphrase: null));
        Assert.Equal($"no keyring at {path}", ex.Message);
    }

    [Fact]
    public void Protected_keyring_round_trips_with_its_passphrase()
    {
        var path = _temp.File("keyring.json");
        var created = Keyring.LoadOrCreate(path, Passphrase);
        var loaded = Keyring.Load(path, Passphrase);

        Assert.Equal(created.ActiveKekId, loaded.ActiveKekId);
        Assert.Equal(created.IndexKey, loaded.IndexKey);
        using var json = JsonDocument.Parse(File.ReadAllBytes(path));
        Assert.True(json.RootElement.GetProperty("protected").GetBoolean());
        Assert.Equal("pbkdf2-sha256", json.RootElement.GetProperty("kdf").GetProperty("name").GetString());
        Assert.Equal(600_000, json.RootElement.GetProperty("kdf").GetProperty("iterations").GetInt32());
        Assert.Equal(16, json.RootElement.GetProperty("kdf").GetProperty("salt").GetBytesFromBase64().Length);
        Assert.Equal(12, json.RootElement.GetProperty("nonce").GetBytesFromBase64().Length);
        Assert.False(json.RootElement.TryGetProperty("keyring", out _));
        Assert.DoesNotContain(created.ActiveKekId, File.ReadAllText(path), StringComparison.Ordinal);
    }

    [Fact]
    public void Load_with_a_wrong_passphrase_says_the_passphrase_is_wrong()
    {
        var path = _temp.File("keyring.json");
        Keyring.LoadOrCreate(path, Passphrase);
        var ex = Assert.Throws<KeyringException>(() => Keyring.Load(path, "wrong"));
        Assert.StartsWith($"wrong passphrase for keyring {path}", ex.Message, StringComparison.Ordinal);
    }

    [Theory]
    [InlineData(null)]
    [InlineData("")]
    public void Load_of_a_protected_keyring_without_passphrase_names_the_environment_variable(string? passphrase)
    {
        var path = _temp.File("keyring.json");
        Keyring.LoadOrCreate(path, Passphrase);
        var ex = Assert.Throws<KeyringException>(() => Keyring.Load(path, passphrase));
        Assert.Equal($"the keyring at {path} is protected by a passphrase; set WARDLINE_KEYRING_PASSPHRASE", ex.Message);
    }

    [Theory]
    [InlineData("")]
    [InlineData("not json")]
    [InlineData("[]")]
    [InlineData("""{"format":"something-else","version":1,"protected":false,"keyring":{}}""")]
    [InlineData("""{"format":"wardline-keyring","version":2,"protected":false,"keyring":{}}""")]
    [InlineData("""{"format":"wardline-keyring","version":1,"protected":false}""")]
    [InlineData("""{"format":"wardline-keyring","version":1,"protected":false,"keyring":{"activeKek":"k1","keks":[],"indexKey":"AAAA"}}""")]
    [InlineData("""{"format":"wardline-keyring","version":1,"protected":true,"kdf":{"name":"pbkdf2-sha256","iterations":1,"salt":"AAAAAAAAAAAAAAAAAAAAAA=="},"nonce":"AAAAAAAAAAAAAAAA","ciphertext":"AAAAAAAAAAAAAAAAAAAAAA=="}""")]
    public void Load_of_a_corrupt_file_says_it_is_corrupt(string content)
    {
        var path = _temp.File("keyring.json");
        File.WriteAllText(path, content);
        var ex = Assert.Throws<KeyringException>(() => Keyring.Load(path, Passphrase));
        Assert.StartsWith($"keyring {path} is corrupt: ", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Corrupt_file_messages_contain_no_key_material()
    {
        var path = _temp.File("keyring.json");
        Keyring.LoadOrCreate(path, passphrase: null);
        var text = File.ReadAllText(path);
        using var json = JsonDocument.Parse(text);
        var indexKey = json.RootElement.GetProperty("keyring").GetProperty("indexKey").GetString()!;

        // Break the JSON right after the index key and make the key itself the wrong length.
        File.WriteAllText(path, text.Replace($"\"{indexKey}\"", $"\"{indexKey}\" garbage", StringComparison.Ordinal));
        var syntax = Assert.Throws<KeyringException>(() => Keyring.Load(path, passphrase: null));
        File.WriteAllText(path, text.Replace(indexKey, indexKey[..20], StringComparison.Ordinal));
        var length = Assert.Throws<KeyringException>(() => Keyring.Load(path, passphrase: null));

        foreach (var ex in new[] { syntax, length })
        {
            Assert.DoesNotContain(indexKey[..8], ex.ToString(), StringComparison.Ordinal);
        }
    }

    [Fact]
    public void Rotate_adds_an_active_kek_and_retires_the_old_ones()
    {
        var path = _temp.File("keyring.json");
        var original = Keyring.LoadOrCreate(path, passphrase: null);
        var rotated = original.Rotate(passphrase: null);
        var reloaded = Keyring.Load(path, passphrase: null);

        Assert.Equal([original.ActiveKekId], original.KekIds); // instances are immutable
        Assert.Equal([original.ActiveKekId, rotated.ActiveKekId], rotated.KekIds);
        Assert.Equal(rotated.KekIds, reloaded.KekIds);
        Assert.Equal(rotated.ActiveKekId, reloaded.ActiveKekId);
        Assert.Equal(original.IndexKey, reloaded.IndexKey); // the index key is never rotated

        using var json = JsonDocument.Parse(File.ReadAllBytes(path));
        var retired = json.RootElement.GetProperty("keyring").GetProperty("keks").EnumerateArray()
            .Select(k => k.GetProperty("retired").GetBoolean()).ToArray();
        Assert.Equal([true, false], retired);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(path));
        }

        Assert.Equal([path], Directory.GetFiles(_temp.Path));
    }

    [Fact]
    public void Rotate_of_a_protected_keyring_keeps_it_protected()
    {
        var path = _temp.File("keyring.json");
        var rotated = Keyring.LoadOrCreate(path, Passphrase).Rotate(Passphrase);
        Assert.Throws<KeyringException>(() => Keyring.Load(path, passphrase: null));
        Assert.Equal(rotated.KekIds, Keyring.Load(path, Passphrase).KekIds);
    }

    [Fact]
    public void Rotate_with_a_wrong_passphrase_fails_and_leaves_the_file_alone()
    {
        var path = _temp.File("keyring.json");
        var keyring = Keyring.LoadOrCreate(path, Passphrase);
        var before = File.ReadAllBytes(path);
        var ex = Assert.Throws<KeyringException>(() => keyring.Rotate("typo"));
        Assert.StartsWith("wrong passphrase", ex.Message, StringComparison.Ordinal);
        Assert.Equal(before, File.ReadAllBytes(path));
    }

    [Fact]
    public void Rotate_fails_when_the_file_changed_since_it_was_loaded()
    {
        var path = _temp.File("keyring.json");
        var first = Keyring.LoadOrCreate(path, passphrase: null);
        var second = Keyring.Load(path, passphrase: null);
        var rotated = first.Rotate(passphrase: null);

        var ex = Assert.Throws<KeyringException>(() => second.Rotate(passphrase: null));
        Assert.Contains("changed on disk", ex.Message, StringComparison.Ordinal);
        Assert.Equal(rotated.KekIds, Keyring.Load(path, passphrase: null).KekIds);
    }

    [Fact]
    public void IsStale_turns_true_when_another_process_rotates_the_keyring()
    {
        var path = _temp.File("keyring.json");
        var server = Keyring.LoadOrCreate(path, passphrase: null);
        Assert.False(server.IsStale());

        var rotated = Keyring.Load(path, passphrase: null).Rotate(passphrase: null);
        File.SetLastWriteTimeUtc(path, DateTime.UtcNow.AddSeconds(1)); // don't depend on file system timestamp resolution

        Assert.True(server.IsStale());
        Assert.False(Keyring.Load(path, passphrase: null).IsStale());
        Assert.Equal(rotated.ActiveKekId, Keyring.Load(path, passphrase: null).ActiveKekId);
    }

    [Fact]
    public void ExportEscrow_writes_a_protected_copy_that_opens_with_the_escrow_passphrase()
    {
        var keyring = Keyring.LoadOrCreate(_temp.File("keyring.json"), passphrase: null).Rotate(passphrase: null);
        var escrowPath = _temp.File("escrow.json");
        keyring.ExportEscrow(escrowPath, "escrow secret");

        Assert.Throws<KeyringException>(() => Keyring.Load(escrowPath, passphrase: null));
        var escrow = Keyring.Load(escrowPath, "escrow secret");
        Assert.Equal(keyring.KekIds, escrow.KekIds);
        Assert.Equal(keyring.ActiveKekId, escrow.ActiveKekId);
        Assert.Equal(keyring.IndexKey, escrow.IndexKey);
        if (!OperatingSystem.IsWindows())
        {
            Assert.Equal(OwnerReadWrite, File.GetUnixFileMode(escrowPath));
        }

        Assert.Throws<KeyringException>(() => keyring.ExportEscrow(escrowPath, "escrow secret"));
    }
}
