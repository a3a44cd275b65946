namespace Wardline.Crypto.Tests;

public sealed class BlindIndexTests : IDisposable
{
    private readonly TempDirectory _temp = new();
    private readonly BlindIndex _index;

    public BlindIndexTests() => _index = new BlindIndex(Keyring.LoadOrCreate(_temp.File("keyring.json"), passphrase: null));

    public void Dispose() => _temp.Dispose();

    [Theory]
    [InlineData("José  MÜLLER", "jose muller")]
    [InlineData("  jose\tmuller \n", "jose muller")]
    [InlineData("Jose\u0301 Mu\u0308ller", "jose muller")] // decomposed input folds the same as precomposed
    [InlineData("Ångström", "angstrom")]
    [InlineData("ZOË Ĳsselmeer", "zoe ijsselmeer")]
    [InlineData("ﬁnch", "finch")] // compatibility ligature
    [InlineData("ＡＢＣ１２３", "abc123")] // fullwidth forms
    [InlineData("Łukasz", "łukasz")] // no decomposition for Ł in Unicode; only lower-cased
    [InlineData("ΣΟΦΊΑ", "σοφια")]
    [InlineData("", "")]
    [InlineData(" \u00a0\u2003 ", "")]
    public void Normalize_folds_case_accents_and_whitespace(string text, string expected)
    {
        Assert.Equal(expected, BlindIndex.Normalize(text));
    }

    [Fact]
    public void Normalize_decomposes_hangul_syllables_like_their_jamo()
    {
        Assert.Equal(BlindIndex.Normalize("\u1112\u1161\u11AB"), BlindIndex.Normalize("한"));
    }

    [Theory]
    [InlineData("José  MÜLLER")]
    [InlineData("ＡＢＣ ﬁ Ⅷ ½ 한글")]
    public void Normalize_is_idempotent(string text)
    {
        var once = BlindIndex.Normalize(text);
        Assert.Equal(once, BlindIndex.Normalize(once));
    }

    [Fact]
    public void Equal_names_in_different_spellings_get_the_same_index_value()
    {
        var a = _index.Compute("name", BlindIndex.Normalize("José  MÜLLER"));
        var b = _index.Compute("name", BlindIndex.Normalize("jose muller"));
        Assert.Equal(a, b);
        Assert.Equal(16, a.Length);
    }

    [Fact]
    public void Compute_is_deterministic_across_instances()
    {
        var again = new BlindIndex(Keyring.Load(_temp.File("keyring.json"), passphrase: null));
        Assert.Equal(_index.Compute("name", "jose muller"), again.Compute("name", "jose muller"));
    }

    [Fact]
    public void Different_fields_give_different_index_values()
    {
        Assert.NotEqual(_index.Compute("family", "smith"), _index.Compute("given", "smith"));
        Assert.NotEqual(_index.Compute("ab", "c"), _index.Compute("a", "bc"));
    }

    [Fact]
    public void Different_values_give_different_index_values()
    {
        Assert.NotEqual(_index.Compute("name", "jose muller"), _index.Compute("name", "jose mueller"));
    }

    [Fact]
    public void Different_keyrings_give_different_index_values()
    {
        var other = new BlindIndex(Keyring.LoadOrCreate(_temp.File("other.json"), passphrase: null));
        Assert.NotEqual(_index.Compute("name", "jose muller"), other.Compute("name", "jose muller"));
    }

    [Fact]
    public void Values_longer_than_the_stack_buffer_are_indexed()
    {
        var longValue = new string('x', 2000);
        Assert.Equal(_index.Compute("note", longValue), _index.Compute("note", longValue));
        Assert.NotEqual(_index.Compute("note", longValue), _index.Compute("note", longValue + "y"));
    }

    [Fact]
    public void Field_names_may_not_contain_the_separator()
    {
        Assert.Throws<ArgumentException>(() => _index.Compute("na\u001fme", "x"));
    }
}
