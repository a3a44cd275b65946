using System.Security.Cryptography;
using System.Text;
using OtpNet;
using QRCoder;
using Wardline.Server.Modules.Records;

namespace Wardline.Server.Modules.Access.Identity;

/// <summary>What an authenticator app needs to enrol: the secret (for typing in), the otpauth:// URI and it as a QR code.</summary>
/// <param name="Secret">Base32, as authenticator apps take it when typed in.</param>
/// <param name="QrPng">The URI as a PNG image (for an &lt;img src="data:image/png;base64,..."&gt;).</param>
/// <param name="QrSvg">The URI as an SVG document.</param>
internal sealed record MfaEnrolment(string Secret, string Uri, byte[] QrPng, string QrSvg);

/// <summary>
/// Time-based one-time passwords per RFC 6238 as every authenticator app reads them: 30-second steps,
/// 6 digits, HMAC-SHA-1 (RFC 6238's default; SHA-256/512 are ignored by several apps, and with
/// HOTP's truncation SHA-1 is not the weak point), a 160-bit secret (RFC 4226's recommendation).
/// A code is accepted one step either side of now, for clock drift and typing time.
/// </summary>
internal static class Totp
{
    public const string Issuer = "Wardline";
    public const int Digits = 6;
    public const int StepSeconds = 30;
    private const int SecretBytes = 20;

    public static byte[] NewSecret() => RandomNumberGenerator.GetBytes(SecretBytes);

    public static MfaEnrolment Enrolment(string account, byte[] secret)
    {
        var base32 = Base32Encoding.ToString(secret);
        var uri = new OtpUri(OtpType.Totp, base32, account, Issuer, OtpHashMode.Sha1, Digits, StepSeconds).ToString();
        using var generator = new QRCodeGenerator();
        using var data = generator.CreateQrCode(uri, QRCodeGenerator.ECCLevel.M);
        return new MfaEnrolment(base32, uri, new PngByteQRCode(data).GetGraphic(6), new SvgQRCode(data).GetGraphic(6));
    }

    /// <summary>
    /// The time step <paramref name="code"/> belongs to, if it is right within one step of <paramref name="now"/>;
    /// the caller must still refuse a step at or before the last one used (each code works once).
    /// Spaces inside the code are ignored ("123 456" as apps show it).
    /// </summary>
    public static long? Match(byte[] secret, string code, DateTimeOffset now)
    {
        var digits = code.Replace(" ", "", StringComparison.Ordinal);
        if (digits.Length != Digits || !digits.All(char.IsAsciiDigit)) return null;
        var totp = new OtpNet.Totp(secret, StepSeconds, OtpHashMode.Sha1, Digits);
        return totp.VerifyTotp(now.UtcDateTime, digits, out var step, new VerificationWindow(previous: 1, future: 1)) ? step : null;
    }
}

/// <summary>
/// Seals TOTP secrets at rest with the store's keyring, as resource bodies are: each account's secret
/// has its own data key wrapped by the active key-encryption key, and both the wrapped key and the
/// sealed secret are bound to the account name, so a secret copied onto another account's row does
/// not open. The key context uses a type no FHIR resource can have (it holds a colon).
/// </summary>
internal sealed class MfaSecrets(RecordKeys keys)
{
    private const string KeyType = "wardline:account-mfa";

    public (byte[] WrappedKey, byte[] Sealed) Seal(string account, byte[] secret)
    {
        using var key = keys.Cipher.CreateDataKey(WrapContext(account));
        return (key.Wrapped, keys.Cipher.Encrypt(key.DataKey, secret, Context(account)));
    }

    /// <summary>Throws <see cref="Wardline.Crypto.EnvelopeException"/> if the secret was tampered with or moved.</summary>
    public byte[] Open(string account, byte[] wrappedKey, byte[] sealedSecret)
    {
        using var key = keys.Unwrap(KeyType, account, wrappedKey);
        return keys.Cipher.Decrypt(key, sealedSecret, Context(account));
    }

    /// <summary>What the account's data key is wrapped under (also for <c>keys rotate</c>, which re-wraps it).</summary>
    internal static byte[] WrapContext(string account) => RecordKeys.KeyContext(KeyType, account);

    private static byte[] Context(string account) => Encoding.UTF8.GetBytes(KeyType + "/" + account + "/secret");
}
