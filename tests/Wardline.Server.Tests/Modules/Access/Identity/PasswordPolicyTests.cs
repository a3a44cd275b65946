using Wardline.Server.Modules.Access.Identity;

namespace Wardline.Server.Tests.Modules.Access.Identity;

/// <summary>NIST SP 800-63B password rules: length and a blocklist, not composition.</summary>
public sealed class PasswordPolicyTests
{
    private static PasswordProblem? Problem(string password, string name = "dr.onco", string display = "Dr. Oliver Okafor") =>
        PasswordPolicy.Check(password, name, display)?.Problem;

    [Theory]
    [InlineData("correct horse battery staple")]
    [InlineData("twelve chars")]
    [InlineData("grüße aus köln, 2026")]
    [InlineData("пароль для больницы")]
    [InlineData("病院のパスワードです十二")]
    [InlineData("🐱🐶🐭🐹🐰🦊🐻🐼🐨🐯🦁🐮")]
    [InlineData("  spaces count too  ")]
    [InlineData("ALLCAPSNOTDIGITS")]
    public void Any_printable_unicode_passphrase_of_12_or_more_characters_is_accepted(string password)
    {
        Assert.Null(PasswordPolicy.Check(password, "dr.onco", "Dr. Oliver Okafor"));
    }

    [Fact]
    public void Length_counts_code_points_so_twelve_emoji_are_twelve_characters_and_eleven_are_too_few()
    {
        const string emoji = "🐱🐶🐭🐹🐰🦊🐻🐼🐨🐯🦁";
        Assert.Equal(22, emoji.Length); // UTF-16 units, which are not what is counted
        Assert.Equal(PasswordProblem.TooShort, Problem(emoji));
        Assert.Null(Problem(emoji + "🐮"));
    }

    [Fact]
    public void Eleven_characters_are_too_short_and_twelve_are_enough()
    {
        Assert.Equal(PasswordProblem.TooShort, Problem("abcdefghjkm"));
        Assert.Null(Problem("abcdefghjkmn"));
        Assert.Equal(PasswordProblem.TooShort, Problem(""));
    }

    [Fact]
    public void At_most_128_characters_are_accepted()
    {
        var words = string.Concat(Enumerable.Range(0, 50).Select(i => (char)('a' + (i * 7 % 26)) + "x" + (char)('a' + (i * 11 % 26))));
        Assert.Null(Problem(words[..128]));
        Assert.Equal(PasswordProblem.TooLong, Problem(words[..129]));
    }

    [Theory]
    [InlineData("administrator")]
    [InlineData("Administrator")]
    [InlineData("InfiniaAdmin")]
    [InlineData("servicetech1")]
    [InlineData("Password1234!")]
    [InlineData("123qwerty2026")]
    [InlineData("!!sunshine!!!")]
    [InlineData("Pass Word 1234")]
    public void Common_and_breached_passwords_are_refused_also_with_digits_symbols_or_spaces_added(string password)
    {
        Assert.Equal(PasswordProblem.Common, Problem(password));
    }

    [Theory]
    [InlineData("aaaaaaaaaaaa")]
    [InlineData("abcabcabcabc")]
    [InlineData("passwordpassword")]
    [InlineData("12 12 12 12 12 12")]
    public void One_short_pattern_repeated_is_refused(string password)
    {
        Assert.Equal(PasswordProblem.Repetitive, Problem(password));
    }

    [Theory]
    [InlineData("dr.onco-is-my-name")]
    [InlineData("DR.ONCO rules the ward")]
    [InlineData("Dr. Oliver Okafor")]
    [InlineData("dr.oliverokafor")]
    public void The_user_name_or_display_name_is_refused(string password)
    {
        Assert.Equal(PasswordProblem.ContainsName, Problem(password));
    }

    [Theory]
    [InlineData("tab\tinside the password")]
    [InlineData("newline\ninside password")]
    [InlineData("nul\0inside the password")]
    public void Control_characters_are_refused(string password)
    {
        Assert.Equal(PasswordProblem.NotPrintable, Problem(password));
    }

    [Fact]
    public void Broken_unicode_is_refused()
    {
        // Built at run time: an attribute argument cannot carry a lone surrogate.
        Assert.Equal(PasswordProblem.NotPrintable, Problem("lone " + '\ud800' + " surrogate password"));
        Assert.Equal(PasswordProblem.NotPrintable, Problem("reversed pair " + '\udc00' + '\ud800' + " in here"));
        Assert.Equal(PasswordProblem.NotPrintable, Problem("unassigned code point " + char.ConvertFromUtf32(0x0378)));
    }

    [Theory]
    [InlineData("short")]
    [InlineData("Password1234!")]
    [InlineData("aaaaaaaaaaaa")]
    [InlineData("dr.onco-is-my-name")]
    [InlineData("tab\tinside the password")]
    public void A_refusal_explains_itself_without_echoing_the_password(string password)
    {
        var rejection = PasswordPolicy.Check(password, "dr.onco", "Dr. Oliver Okafor");

        Assert.NotNull(rejection);
        Assert.DoesNotContain(password, rejection.Message, StringComparison.OrdinalIgnoreCase);
        Assert.Contains("password", rejection.Message, StringComparison.Ordinal);
    }
}
