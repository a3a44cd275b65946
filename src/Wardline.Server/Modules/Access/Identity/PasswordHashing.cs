using Microsoft.AspNetCore.Identity;
using Microsoft.Extensions.Options;

namespace Wardline.Server.Modules.Access.Identity;

/// <summary>
/// Password hashes in ASP.NET Core Identity's version-3 format: PBKDF2 with HMAC-SHA512, a 128-bit
/// random salt and a 256-bit subkey, the iteration count stored in the hash (so raising it later
/// only rehashes each password at its next successful sign-in).
/// </summary>
internal static class PasswordHashing
{
    /// <summary>
    /// OWASP's Password Storage Cheat Sheet figure for PBKDF2-HMAC-SHA512. The 600,000 often quoted is
    /// its figure for HMAC-SHA256 (used for the keyring passphrase): an SHA-512 iteration costs an
    /// attacker's GPU about three times as much, so 210,000 buys the same resistance. About 0.1 s of
    /// one core here, which also bounds how fast anyone can guess online.
    /// </summary>
    public const int Iterations = 210_000;

    private static readonly PasswordHasher<Credential> Hasher = new(Options.Create(new PasswordHasherOptions
    {
        CompatibilityMode = PasswordHasherCompatibilityMode.IdentityV3,
        IterationCount = Iterations,
    }));

    private static readonly Credential Nobody = new();

    // Verified instead of a stored hash when there is none (unknown name, token-only account), so the
    // answer takes as long as a real check and tells nothing about whether the account exists. Made
    // with the type, so the first check of any kind, not the first unknown name, pays for it.
    private static readonly string Dummy = Hasher.HashPassword(Nobody, Convert.ToHexString(Guid.NewGuid().ToByteArray()));

    public static string Hash(string password) => Hasher.HashPassword(Nobody, password);

    /// <summary>Checks <paramref name="password"/>; <paramref name="hash"/> null always fails, after the same work.</summary>
    public static PasswordVerificationResult Verify(string? hash, string password)
    {
        var result = Hasher.VerifyHashedPassword(Nobody, hash ?? Dummy, password);
        return hash is null ? PasswordVerificationResult.Failed : result;
    }

    /// <summary>The hasher's user type; the v3 format does not look at the user.</summary>
    private sealed class Credential;
}
