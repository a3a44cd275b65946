namespace Wardline.Crypto.Tests;

/// <summary>
/// Pins the on-disk formats: files in Golden/ were produced by an independent implementation of
/// docs/formats/envelope.md and must keep decrypting. Never regenerate them to make these pass.
/// </summary>
public sealed class GoldenFormatTests
{
    private const string GoldenPassphrase = "correct horse battery staple";
    private const string ExpectedBody = """{"resourceType":"Patient","id":"golden-1","name":[{"family":"Müller","given":["José"]}]}""";

    private static readonly byte[] Context = "Patient/golden-1"u8.ToArray();
    private static readonly byte[] Aad = "Patient/golden-1/_history/1"u8.ToArray();

    private static string Golden(string name) => Path.Combine(AppContext.BaseDirectory, "Golden", name);

    [Fact]
    public void Golden_keyring_loads_with_its_keks_and_index_key()
    {
        var keyring = Keyring.Load(Golden("keyring.json"), passphrase: null);
        Assert.Equal("kek-golden-2", keyring.ActiveKekId);
        Assert.Equal(["kek-golden-1", "kek-golden-2"], keyring.KekIds);
        Assert.True(keyring.TryGetKek("kek-golden-1", out var retired));
        Assert.Equal(Enumerable.Range(0x00, 32).Select(b => (byte)b), retired);
        Assert.Equal(Enumerable.Range(0x40, 32).Select(b => (byte)b), keyring.IndexKey);
    }

    [Fact]
    public void Golden_wrapped_key_and_envelope_decrypt_to_the_expected_body()
    {
        var cipher = new EnvelopeCipher(Keyring.Load(Golden("keyring.json"), passphrase: null));
        var wrapped = File.ReadAllBytes(Golden("wrapped-key.bin"));

        Assert.Equal("kek-golden-1", cipher.WrappingKekId(wrapped));
        using var key = cipher.UnwrapDataKey(wrapped, Context);
        Assert.Equal(Enumerable.Range(0x60, 32).Select(b => (byte)b), key.Bytes.ToArray());
        var body = cipher.Decrypt(key, File.ReadAllBytes(Golden("envelope.bin")), Aad);
        Assert.Equal(ExpectedBody, System.Text.Encoding.UTF8.GetString(body));
    }

    [Fact]
    public void Golden_protected_keyring_opens_with_its_passphrase_and_unwraps_the_golden_key()
    {
        var keyring = Keyring.Load(Golden("keyring-protected.json"), GoldenPassphrase);
        Assert.Equal(["kek-golden-1", "kek-golden-2"], keyring.KekIds);
        var cipher = new EnvelopeCipher(keyring);
        using var key = cipher.UnwrapDataKey(File.ReadAllBytes(Golden("wrapped-key.bin")), Context);
        var body = cipher.Decrypt(key, File.ReadAllBytes(Golden("envelope.bin")), Aad);
        Assert.Equal(ExpectedBody, System.Text.Encoding.UTF8.GetString(body));
    }

    [Fact]
    public void Golden_blind_index_value_is_unchanged()
    {
        var index = new BlindIndex(Keyring.Load(Golden("keyring.json"), passphrase: null));
        var value = index.Compute("name", BlindIndex.Normalize("José  MÜLLER"));
        Assert.Equal("5d775c5d86d7f1e10d67c44a4094f198", Convert.ToHexStringLower(value));
    }
}
