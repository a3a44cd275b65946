using System.Buffers;
using System.Collections.Frozen;
using System.Globalization;
using System.Text;

namespace Wardline.Server.Modules.Access.Identity;

internal enum PasswordProblem
{
    TooShort,
    TooLong,
    NotPrintable,
    Common,
    Repetitive,
    ContainsName,
}

/// <summary>Why a password was refused, in words for the person choosing it. Never contains the password.</summary>
internal sealed record PasswordRejection(PasswordProblem Problem, string Message);

/// <summary>
/// Password rules after NIST SP 800-63B (5.1.1.2): length, not composition. At least 12 and at most
/// 128 characters, counted as Unicode code points (as 800-63B counts them), so a passphrase of
/// words, spaces, accents or emoji is welcome; no rules about digits or symbols, no expiry. Refused:
/// control characters and broken Unicode, passwords on the common/breached list the product ships
/// (Resources/common-passwords.txt), also with digits or symbols added before or after, one short
/// pattern repeated, and the account's own names.
/// </summary>
/// <remarks>
/// Passwords are not Unicode-normalised before hashing (800-63B recommends NFKC): the server runs with
/// invariant globalization, where the runtime cannot normalise. A password typed with a composed
/// accent and one typed with a combining accent are therefore different passwords.
/// </remarks>
internal static class PasswordPolicy
{
    public const int MinLength = 12;
    public const int MaxLength = 128;

    private static readonly FrozenSet<string> Common = LoadCommon();

    private static readonly char[] NotLetters = [.. Enumerable.Range(0x21, 0x5E).Select(c => (char)c).Where(c => !char.IsAsciiLetter(c))];

    /// <summary>Null when <paramref name="password"/> may be used by the account named <paramref name="name"/>.</summary>
    public static PasswordRejection? Check(string password, string name, string display)
    {
        ArgumentNullException.ThrowIfNull(password);
        var length = 0;
        var rest = password.AsSpan();
        while (!rest.IsEmpty)
        {
            if (Rune.DecodeFromUtf16(rest, out var rune, out var used) != OperationStatus.Done || !IsPrintable(rune))
            {
                return new(PasswordProblem.NotPrintable,
                    "The password may hold any printable characters, spaces included, but no control characters or broken Unicode.");
            }
            rest = rest[used..];
            length++;
        }
        if (length < MinLength)
            return new(PasswordProblem.TooShort, $"The password must be at least {MinLength} characters long; a few words with spaces make a good one.");
        if (length > MaxLength)
            return new(PasswordProblem.TooLong, $"The password must be at most {MaxLength} characters long.");

        var core = Core(password);
        // "Password1234!" is "password" with the digits and symbols people add to pass composition rules.
        var word = core.Trim(NotLetters);
        if (Common.Contains(core) || Common.Contains(password.ToLowerInvariant()) || (word.Length > 0 && Common.Contains(word)))
            return new(PasswordProblem.Common, "The password is on the list of common or breached passwords; choose another.");
        if (IsRepetition(core))
            return new(PasswordProblem.Repetitive, "The password is one short pattern repeated; choose another.");
        var nameCore = Core(name);
        if ((nameCore.Length >= 3 && core.Contains(nameCore, StringComparison.Ordinal)) || core == Core(display))
            return new(PasswordProblem.ContainsName, "The password must not contain the user name or be the display name.");
        return null;
    }

    /// <summary>What the comparisons look at: lower case, without whitespace ("Pass Word" and "password" are the same guess).</summary>
    private static string Core(string text)
    {
        var b = new StringBuilder(text.Length);
        foreach (var rune in text.EnumerateRunes())
        {
            if (!Rune.IsWhiteSpace(rune)) b.Append(Rune.ToLowerInvariant(rune));
        }
        return b.ToString();
    }

    private static bool IsPrintable(Rune rune) => Rune.GetUnicodeCategory(rune) is not
        (UnicodeCategory.Control or UnicodeCategory.OtherNotAssigned or UnicodeCategory.Surrogate or UnicodeCategory.LineSeparator or UnicodeCategory.ParagraphSeparator);

    /// <summary>"aaaaaaaaaaaa", "abcabcabcabc", "passwordpassword": a unit of at most half the length, repeated.</summary>
    private static bool IsRepetition(string s)
    {
        for (var unit = 1; unit <= s.Length / 2; unit++)
        {
            if (s.Length % unit != 0) continue;
            var repeated = true;
            for (var i = unit; i < s.Length && repeated; i++) repeated = s[i] == s[i - unit];
            if (repeated) return true;
        }
        return false;
    }

    private static FrozenSet<string> LoadCommon()
    {
        using var stream = typeof(PasswordPolicy).Assembly.GetManifestResourceStream("Wardline.Server.common-passwords.txt")
            ?? throw new InvalidOperationException("The common-password list is missing from the assembly.");
        using var reader = new StreamReader(stream, Encoding.UTF8);
        var set = new HashSet<string>(StringComparer.Ordinal);
        while (reader.ReadLine() is { } line)
        {
            if (line.Length > 0) set.Add(line.ToLowerInvariant());
        }
        return set.ToFrozenSet(StringComparer.Ordinal);
    }
}
