using System.Text;

namespace Wardline.Crypto.Tests;

public sealed class EnvelopeCipherTests : IDisposable
{
    private static readonly byte[] Context = "Patient/p1"u8.ToArray();
    private static readonly byte[] Aad = "Patient/p1/_history/1"u8.ToArray();
    private static readonly byte[] Body = "{\"resourceType\":\"Patient\",\"id\":\"p1\",\"name\":[{\"family\":\"Secret\"}]}"u8.ToArray();

    private readonly TempDirectory _temp = new();
    private readonly Keyring _keyring;
    private readonly EnvelopeCipher _cipher;

    public EnvelopeCipherTests()
    {
        _keyring = Keyring.LoadOrCreate(_temp.File("keyring.json"), passphrase: null);
        _cipher = new EnvelopeCipher(_keyring);
    }

    public void Dispose() => _temp.Dispose();

    [Fact]
    public void Decrypt_returns_what_Encrypt_was_given()
    {
        using var key = _cipher.CreateDataKey(Context);
        var envelope = _cipher.Encrypt(key.DataKey, Body, Aad);
        Assert.Equal(Body, _cipher.Decrypt(key.DataKey, envelope, Aad));
    }

    [Fact]
    public void Encrypt_into_a_caller_buffer_writes_an_envelope_Decrypt_opens()
    {
        using var key = _cipher.CreateDataKey(Context);
        var buffer = new byte[3 + EnvelopeCipher.EnvelopeLength(Body.Length)];

        _cipher.Encrypt(key.DataKey, Body, Aad, buffer.AsSpan(3));

        Assert.Equal(new byte[3], buffer[..3]);
        Assert.Equal(Body, _cipher.Decrypt(key.DataKey, buffer.AsSpan(3), Aad));
        Assert.Equal(_cipher.Encrypt(key.DataKey, Body, Aad).Length, buffer.Length - 3);
    }

    [Fact]
    public void Encrypt_into_a_buffer_of_the_wrong_length_or_over_the_plaintext_is_refused()
    {
        using var key = _cipher.CreateDataKey(Context);
        var shared = new byte[EnvelopeCipher.EnvelopeLength(Body.Length) + Body.Length];
        Body.CopyTo(shared, 0);

        Assert.Throws<ArgumentException>(() => _cipher.Encrypt(key.DataKey, Body, Aad, new byte[EnvelopeCipher.EnvelopeLength(Body.Length) - 1]));
        Assert.Throws<ArgumentException>(() => _cipher.Encrypt(key.DataKey, Body, Aad, new byte[EnvelopeCipher.EnvelopeLength(Body.Length) + 1]));
        Assert.Throws<ArgumentException>(() => _cipher.Encrypt(key.DataKey, shared.AsSpan(0, Body.Length), Aad, shared.AsSpan(Body.Length - 1, EnvelopeCipher.EnvelopeLength(Body.Length))));
    }

    [Fact]
    public void Decrypt_into_a_caller_buffer_returns_what_Encrypt_was_given()
    {
        using var key = _cipher.CreateDataKey(Context);
        var envelope = _cipher.Encrypt(key.DataKey, Body, Aad);
        var buffer = new byte[Body.Length + 5];

        Assert.Equal(Body.Length, EnvelopeCipher.PlaintextLength(envelope.Length));
        _cipher.Decrypt(key.DataKey, envelope, Aad, buffer.AsSpan(2, Body.Length));

        Assert.Equal(Body, buffer[2..^3]);
        Assert.Equal(new byte[2], buffer[..2]);
        Assert.Equal(new byte[3], buffer[^3..]);
    }

    [Fact]
    public void Decrypt_into_a_buffer_of_the_wrong_length_or_over_the_envelope_is_refused()
    {
        using var key = _cipher.CreateDataKey(Context);
        var envelope = _cipher.Encrypt(key.DataKey, Body, Aad);
        var shared = new byte[envelope.Length + Body.Length];
        envelope.CopyTo(shared, 0);

        Assert.Throws<ArgumentException>(() => _cipher.Decrypt(key.DataKey, envelope, Aad, new byte[Body.Length - 1]));
        Assert.Throws<ArgumentException>(() => _cipher.Decrypt(key.DataKey, envelope, Aad, new byte[Body.Length + 1]));
        Assert.Throws<ArgumentException>(() => _cipher.Decrypt(key.DataKey, shared.AsSpan(0, envelope.Length), Aad, shared.AsSpan(envelope.Length - 1, Body.Length)));
        Assert.Throws<EnvelopeException>(() => EnvelopeCipher.PlaintextLength(EnvelopeCipher.EnvelopeLength(0) - 1));
    }

    [Fact]
    public void A_tampered_envelope_decrypted_into_a_caller_buffer_fails_and_leaves_no_plaintext()
    {
        using var key = _cipher.CreateDataKey(Context);
        var envelope = _cipher.Encrypt(key.DataKey, Body, Aad);
        envelope[^1] ^= 0x01;
        var buffer = Enumerable.Repeat((byte)0xAA, Body.Length).ToArray();

        Assert.Throws<EnvelopeException>(() => _cipher.Decrypt(key.DataKey, envelope, Aad, buffer));

        Assert.All(buffer, b => Assert.Equal(0, b));
    }

    [Fact]
    public void Empty_body_round_trips()
    {
        using var key = _cipher.CreateDataKey(Context);
        var envelope = _cipher.Encrypt(key.DataKey, [], Aad);
        Assert.Empty(_cipher.Decrypt(key.DataKey, envelope, Aad));
    }

    [Fact]
    public void Unwrapped_data_key_decrypts_what_the_created_key_encrypted()
    {
        using var created = _cipher.CreateDataKey(Context);
        var envelope = _cipher.Encrypt(created.DataKey, Body, Aad);
        using var unwrapped = _cipher.UnwrapDataKey(created.Wrapped, Context);
        Assert.Equal(Body, _cipher.Decrypt(unwrapped, envelope, Aad));
    }

    [Fact]
    public void Envelope_is_magic_nonce_ciphertext_and_tag()
    {
        using var key = _cipher.CreateDataKey(Context);
        var envelope = _cipher.Encrypt(key.DataKey, Body, Aad);
        Assert.Equal("WLE1"u8.ToArray(), envelope[..4]);
        Assert.Equal(4 + 12 + Body.Length + 16, envelope.Length);
    }

    [Fact]
    public void Wrapped_key_is_magic_kek_id_nonce_ciphertext_and_tag()
    {
        using var key = _cipher.CreateDataKey(Context);
        var id = Encoding.UTF8.GetBytes(_keyring.ActiveKekId);
        Assert.Equal("WLK1"u8.ToArray(), key.Wrapped[..4]);
        Assert.Equal(id.Length, key.Wrapped[4]);
        Assert.Equal(id, key.Wrapped[5..(5 + id.Length)]);
        Assert.Equal(4 + 1 + id.Length + 12 + 32 + 16, key.Wrapped.Length);
        Assert.Equal(_keyring.ActiveKekId, _cipher.WrappingKekId(key.Wrapped));
    }

    [Fact]
    public void Encrypting_twice_uses_a_fresh_nonce()
    {
        using var key = _cipher.CreateDataKey(Context);
        var first = _cipher.Encrypt(key.DataKey, Body, Aad);
        var second = _cipher.Encrypt(key.DataKey, Body, Aad);
        Assert.NotEqual(first[4..16], second[4..16]);
    }

    [Fact]
    public void Decrypt_fails_when_any_byte_of_the_envelope_is_tampered()
    {
        using var key = _cipher.CreateDataKey(Context);
        var envelope = _cipher.Encrypt(key.DataKey, Body, Aad);
        for (var i = 0; i < envelope.Length; i++)
        {
            var tampered = (byte[])envelope.Clone();
            tampered[i] ^= 0x01;
            Assert.Throws<EnvelopeException>(() => _cipher.Decrypt(key.DataKey, tampered, Aad));
        }
    }

    [Fact]
    public void Decrypt_fails_when_the_envelope_is_truncated()
    {
        using var key = _cipher.CreateDataKey(Context);
        var envelope = _cipher.Encrypt(key.DataKey, Body, Aad);
        for (var length = 0; length < envelope.Length; length++)
        {
            Assert.Throws<EnvelopeException>(() => _cipher.Decrypt(key.DataKey, envelope.AsSpan(0, length), Aad));
        }
    }

    [Fact]
    public void UnwrapDataKey_fails_when_any_byte_of_the_wrapped_key_is_tampered()
    {
        using var key = _cipher.CreateDataKey(Context);
        for (var i = 0; i < key.Wrapped.Length; i++)
        {
            var tampered = (byte[])key.Wrapped.Clone();
            tampered[i] ^= 0x01;
            Assert.Throws<EnvelopeException>(() => _cipher.UnwrapDataKey(tampered, Context));
        }
    }

    [Fact]
    public void Decrypt_fails_when_body_is_moved_to_another_resource()
    {
        using var key = _cipher.CreateDataKey(Context);
        var envelope = _cipher.Encrypt(key.DataKey, Body, Aad);
        Assert.Throws<EnvelopeException>(() => _cipher.Decrypt(key.DataKey, envelope, "Patient/p2/_history/1"u8));
        Assert.Throws<EnvelopeException>(() => _cipher.Decrypt(key.DataKey, envelope, "Patient/p1/_history/2"u8));
    }

    [Fact]
    public void Decrypt_fails_under_another_data_key()
    {
        using var key = _cipher.CreateDataKey(Context);
        using var other = _cipher.CreateDataKey(Context);
        var envelope = _cipher.Encrypt(key.DataKey, Body, Aad);
        Assert.Throws<EnvelopeException>(() => _cipher.Decrypt(other.DataKey, envelope, Aad));
    }

    [Fact]
    public void Decrypt_failure_is_a_CryptographicException_that_names_no_content()
    {
        using var key = _cipher.CreateDataKey(Context);
        var envelope = _cipher.Encrypt(key.DataKey, Body, Aad);
        var ex = Assert.ThrowsAny<System.Security.Cryptography.CryptographicException>(
            () => _cipher.Decrypt(key.DataKey, envelope, "Patient/p2"u8));
        Assert.Contains("failed authentication", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("Secret", ex.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("p2", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnwrapDataKey_fails_when_the_wrapped_key_is_moved_to_another_resource()
    {
        using var key = _cipher.CreateDataKey(Context);
        var ex = Assert.Throws<EnvelopeException>(() => _cipher.UnwrapDataKey(key.Wrapped, "Patient/p2"u8));
        Assert.Contains("failed authentication", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void UnwrapDataKey_names_an_unknown_key_encryption_key()
    {
        var otherKeyring = Keyring.LoadOrCreate(_temp.File("other.json"), passphrase: null);
        using var key = new EnvelopeCipher(otherKeyring).CreateDataKey(Context);
        var ex = Assert.Throws<EnvelopeException>(() => _cipher.UnwrapDataKey(key.Wrapped, Context));
        Assert.Equal($"data key wrapped by unknown key-encryption key '{otherKeyring.ActiveKekId}'", ex.Message);
    }

    [Fact]
    public void Rotate_keeps_old_wrapped_keys_unwrappable_and_Rewrap_moves_them_to_the_new_kek()
    {
        using var key = _cipher.CreateDataKey(Context);
        var envelope = _cipher.Encrypt(key.DataKey, Body, Aad);

        var rotated = _keyring.Rotate(passphrase: null);
        var cipher = new EnvelopeCipher(rotated);
        Assert.NotEqual(_keyring.ActiveKekId, rotated.ActiveKekId);

        using (var oldKey = cipher.UnwrapDataKey(key.Wrapped, Context))
        {
            Assert.Equal(Body, cipher.Decrypt(oldKey, envelope, Aad));
        }

        var rewrapped = cipher.Rewrap(key.Wrapped, Context);
        Assert.Equal(_keyring.ActiveKekId, cipher.WrappingKekId(key.Wrapped));
        Assert.Equal(rotated.ActiveKekId, cipher.WrappingKekId(rewrapped));
        using var newKey = cipher.UnwrapDataKey(rewrapped, Context);
        Assert.Equal(Body, cipher.Decrypt(newKey, envelope, Aad));

        // The old keyring snapshot does not know the new KEK.
        Assert.Throws<EnvelopeException>(() => _cipher.UnwrapDataKey(rewrapped, Context));
    }

    [Fact]
    public void Associated_data_longer_than_the_stack_buffer_round_trips()
    {
        var context = Encoding.UTF8.GetBytes(new string('c', 1000));
        var aad = Encoding.UTF8.GetBytes(new string('a', 5000));
        using var key = _cipher.CreateDataKey(context);
        var envelope = _cipher.Encrypt(key.DataKey, Body, aad);
        using var unwrapped = _cipher.UnwrapDataKey(key.Wrapped, context);
        Assert.Equal(Body, _cipher.Decrypt(unwrapped, envelope, aad));
        Assert.Throws<EnvelopeException>(() => _cipher.Decrypt(unwrapped, envelope, aad.AsSpan(1)));
    }

    [Fact]
    public void A_disposed_data_key_cannot_be_used()
    {
        var key = _cipher.CreateDataKey(Context);
        key.Dispose();
        Assert.Throws<ObjectDisposedException>(() => _cipher.Encrypt(key.DataKey, Body, Aad));
    }

    [Fact]
    public void One_cipher_can_be_used_from_many_threads()
    {
        Parallel.For(0, 200, i =>
        {
            var aad = Encoding.UTF8.GetBytes($"Patient/{i}/_history/1");
            using var key = _cipher.CreateDataKey(aad);
            var envelope = _cipher.Encrypt(key.DataKey, Body, aad);
            using var unwrapped = _cipher.UnwrapDataKey(key.Wrapped, aad);
            Assert.Equal(Body, _cipher.Decrypt(unwrapped, envelope, aad));
        });
    }
}
