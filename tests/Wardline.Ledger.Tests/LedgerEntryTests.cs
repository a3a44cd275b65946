using System.Text;

namespace Wardline.Ledger.Tests;

public sealed class LedgerEntryTests
{
    private static readonly string Access = Encoding.ASCII.GetString(LedgerEntryGoldenTests.GoldenBytes("access.json"));

    private static readonly string Security = Encoding.ASCII.GetString(LedgerEntryGoldenTests.GoldenBytes("security.json"));

    internal static void AssertSameEntry(LedgerEntry expected, LedgerEntry actual)
    {
        Assert.Equal(expected.Type, actual.Type);
        Assert.Equal(expected.At.ToUnixTimeMilliseconds(), actual.At.ToUnixTimeMilliseconds());
        Assert.Equal(TimeSpan.Zero, actual.At.Offset);
        Assert.Equal(expected.Event, actual.Event);
        Assert.Equal(expected.User, actual.User);
        Assert.Equal(expected.Roles, actual.Roles);
        Assert.Equal(expected.Departments, actual.Departments);
        Assert.Equal(expected.Client, actual.Client);
        Assert.Equal(expected.Actor, actual.Actor);
        Assert.Equal(expected.Patient, actual.Patient);
        Assert.Equal(expected.Resource, actual.Resource);
        Assert.Equal(expected.Action, actual.Action);
        Assert.Equal(expected.Purpose, actual.Purpose);
        Assert.Equal(expected.Permitted, actual.Permitted);
        Assert.Equal(expected.Rule, actual.Rule);
        Assert.Equal(expected.Reason, actual.Reason);
        Assert.Equal(expected.Status, actual.Status);
        Assert.Equal(expected.Outcome, actual.Outcome);
        Assert.Equal(expected.Detail, actual.Detail);
        Assert.Equal(expected.Sha256, actual.Sha256);
        Assert.Equal(expected.Source, actual.Source);
        Assert.Equal(expected.Correlation, actual.Correlation);
    }

    private static void Refused(string text) => Refused(Encoding.UTF8.GetBytes(text));

    private static void Refused(byte[] bytes) => Assert.Throws<LedgerFormatException>(() => LedgerEntry.Decode(bytes));

    private static string Replace(string text, string from, string to)
    {
        Assert.Contains(from, text, StringComparison.Ordinal); // the mutation really happens
        return text.Replace(from, to, StringComparison.Ordinal);
    }

    private const string Specials = "\"\\/<>&'+\u2028\u2029\u00e9\u0000\u007f";

    private static LedgerEntry Minimal(string? detail = null) => new() { Type = "system", At = DateTimeOffset.UnixEpoch, Detail = detail };

    // ---- refusals ----

    [Fact]
    public void Decode_refuses_members_out_of_canonical_order()
    {
        Refused(Replace(Access, "\"v\":1,\"type\":\"access\"", "\"type\":\"access\",\"v\":1"));
        Refused(Replace(Access, "\"source\":\"10.1.2.3\",\"correlation\":\"c-0001\"", "\"correlation\":\"c-0001\",\"source\":\"10.1.2.3\""));
        Refused(Replace(Access, "\"roles\":[\"clinician\",\"nurse\"],\"departments\":[\"cardiology\",\"emergency\"]", "\"departments\":[\"cardiology\",\"emergency\"],\"roles\":[\"clinician\",\"nurse\"]"));
        Refused(Replace(Access, "\"permitted\":true,\"rule\":\"care-team-read\"", "\"rule\":\"care-team-read\",\"permitted\":true"));
    }

    [Theory]
    [InlineData("{\"v\":1", "{ \"v\":1")]
    [InlineData("\"v\":1", "\"v\": 1")]
    [InlineData("\"v\":1,", "\"v\":1 ,")]
    [InlineData("\"v\":1,", "\"v\":1,\n")]
    [InlineData("\"v\":1,", "\"v\":1,\t")]
    [InlineData("\"v\":1,", "\"v\":1,\r\n")]
    [InlineData("[\"clinician\",\"nurse\"]", "[ \"clinician\", \"nurse\" ]")]
    [InlineData("\"c-0001\"}", "\"c-0001\" }")]
    public void Decode_refuses_whitespace_between_tokens(string from, string to)
    {
        Refused(Replace(Access, from, to));
    }

    [Fact]
    public void Decode_refuses_whitespace_around_the_entry()
    {
        Refused(" " + Access);
        Refused(Access + " ");
        Refused(Access + "\n");
        Refused(Access + "\r\n");
        Refused("\ufeff" + Access); // a byte-order mark
    }

    [Theory]
    [InlineData("\"extra\":\"x\",")]
    [InlineData("\"V\":1,")]
    [InlineData("\"Type\":\"access\",")]
    [InlineData("\"\":\"\",")]
    [InlineData("\"correlation \":\"x\",")]
    public void Decode_refuses_an_unknown_member(string member)
    {
        Refused(Replace(Access, "\"correlation\":", member + "\"correlation\":"));
        Refused(Replace(Access, "{\"v\":1,", "{" + member + "\"v\":1,"));
    }

    [Theory]
    [InlineData("\"v\":2")]
    [InlineData("\"v\":0")]
    [InlineData("\"v\":-1")]
    [InlineData("\"v\":\"1\"")]
    [InlineData("\"v\":1.0")]
    [InlineData("\"v\":1e0")]
    [InlineData("\"v\":true")]
    [InlineData("\"v\":null")]
    [InlineData("\"v\":[1]")]
    [InlineData("\"v\":4294967297")]
    public void Decode_refuses_any_format_version_but_1(string version)
    {
        Refused(Replace(Access, "\"v\":1", version));
    }

    [Fact]
    public void Decode_refuses_an_entry_without_a_version_type_or_time()
    {
        Refused(Replace(Access, "\"v\":1,", ""));
        Refused(Replace(Access, "\"type\":\"access\",", ""));
        Refused(Replace(Access, "\"at\":\"2026-11-29T04:05:06.789Z\",", ""));
        Refused("{\"v\":1}");
        Refused("{}");
    }

    [Fact]
    public void Decode_refuses_an_empty_type()
    {
        Refused(Replace(Access, "\"type\":\"access\"", "\"type\":\"\""));
    }

    [Theory]
    [InlineData("\"type\":\"access\"", "\"type\":5")]
    [InlineData("\"type\":\"access\"", "\"type\":null")]
    [InlineData("\"type\":\"access\"", "\"type\":[\"access\"]")]
    [InlineData("\"at\":\"2026-11-29T04:05:06.789Z\"", "\"at\":1795925106789")]
    [InlineData("\"event\":\"decision\"", "\"event\":null")]
    [InlineData("\"event\":\"decision\"", "\"event\":{}")]
    [InlineData("\"user\":\"user-7f3a\"", "\"user\":123")]
    [InlineData("\"user\":\"user-7f3a\"", "\"user\":true")]
    [InlineData("\"roles\":[\"clinician\",\"nurse\"]", "\"roles\":\"clinician\"")]
    [InlineData("\"roles\":[\"clinician\",\"nurse\"]", "\"roles\":[\"clinician\",1]")]
    [InlineData("\"roles\":[\"clinician\",\"nurse\"]", "\"roles\":[\"clinician\",null]")]
    [InlineData("\"roles\":[\"clinician\",\"nurse\"]", "\"roles\":[[\"clinician\"]]")]
    [InlineData("\"roles\":[\"clinician\",\"nurse\"]", "\"roles\":{\"clinician\":\"nurse\"}")]
    [InlineData("\"departments\":[\"cardiology\",\"emergency\"]", "\"departments\":true")]
    [InlineData("\"permitted\":true", "\"permitted\":\"true\"")]
    [InlineData("\"permitted\":true", "\"permitted\":1")]
    [InlineData("\"permitted\":true", "\"permitted\":null")]
    [InlineData("\"status\":200", "\"status\":\"200\"")]
    [InlineData("\"status\":200", "\"status\":200.0")]
    [InlineData("\"status\":200", "\"status\":2e2")]
    [InlineData("\"status\":200", "\"status\":0200")]
    [InlineData("\"status\":200", "\"status\":99999999999")]
    [InlineData("\"status\":200", "\"status\":true")]
    [InlineData("\"detail\":\"search _include=Observation:patient\"", "\"detail\":[\"search\"]")]
    [InlineData("\"sha256\":\"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08\"", "\"sha256\":9")]
    public void Decode_refuses_a_member_of_the_wrong_type(string from, string to)
    {
        Refused(Replace(Access, from, to));
    }

    [Theory]
    [InlineData("2026-11-29T04:05:06.789+00:00")]
    [InlineData("2026-11-29T05:05:06.789+01:00")]
    [InlineData("2026-11-29T04:05:06.78Z")]
    [InlineData("2026-11-29T04:05:06.7890Z")]
    [InlineData("2026-11-29T04:05:06Z")]
    [InlineData("2026-11-29 04:05:06.789Z")]
    [InlineData("2026-11-29t04:05:06.789z")]
    [InlineData("2026-11-31T04:05:06.789Z")]
    [InlineData("not a time")]
    [InlineData("")]
    public void Decode_refuses_a_time_not_in_canonical_form(string at)
    {
        Refused(Replace(Access, "2026-11-29T04:05:06.789Z", at));
    }

    [Fact]
    public void Decode_refuses_a_repeated_member()
    {
        Refused(Replace(Access, "\"user\":\"user-7f3a\",", "\"user\":\"mallory\",\"user\":\"user-7f3a\","));
        Refused(Replace(Access, "\"user\":\"user-7f3a\",", "\"user\":\"user-7f3a\",\"user\":\"user-7f3a\","));
    }

    [Theory]
    [InlineData("access.json", "\"user\":\"user-7f3a\"", "\"user\":\"\\u0075ser-7f3a\"")] // an escaped ASCII letter
    [InlineData("access.json", "\"user\":\"user-7f3a\"", "\"\\u0075ser\":\"user-7f3a\"")] // an escaped member name
    [InlineData("access.json", "\"type\":\"access\"", "\"type\":\"acc\\u0065ss\"")]
    [InlineData("security.json", "\\u00E9", "\\u00e9")] // lower-case hex
    [InlineData("security.json", "\\u0022", "\\\"")] // the short escape for a quote
    [InlineData("security.json", "\\u0026", "&")] // an unescaped ampersand
    [InlineData("security.json", "\\u00E9", "\u00e9")] // raw UTF-8
    [InlineData("security.json", "\\uD83D\\uDE00", "\U0001F600")] // raw UTF-8 for an astral character
    [InlineData("security.json", "\\t", "\\u0009")] // the long escape for a tab
    [InlineData("security.json", "\\\\", "\\u005C")] // the long escape for a backslash
    public void Decode_refuses_a_string_escaped_another_way(string file, string from, string to)
    {
        var text = Encoding.ASCII.GetString(LedgerEntryGoldenTests.GoldenBytes(file));

        Refused(Replace(text, from, to));
    }

    [Fact]
    public void Decode_refuses_trailing_bytes_and_comments()
    {
        Refused(Access + "{}");
        Refused(Access + "x");
        Refused(Access + "\0");
        Refused(Replace(Access, "\"v\":1,", "\"v\":1,/* c */"));
        Refused(Access + "// c");
    }

    [Theory]
    [InlineData("")]
    [InlineData("null")]
    [InlineData("[]")]
    [InlineData("\"access\"")]
    [InlineData("1")]
    [InlineData("{")]
    [InlineData("}")]
    [InlineData("{\"v\":1,\"type\":\"access\",\"at\":\"2026-11-29T04:05:06.789Z\",}")]
    [InlineData("not json")]
    public void Decode_refuses_what_is_not_an_entry_object(string text)
    {
        Refused(text);
    }

    [Theory]
    [MemberData(nameof(LedgerEntryGoldenTests.Files), MemberType = typeof(LedgerEntryGoldenTests))]
    public void Decode_refuses_every_truncation_of_a_canonical_entry(string file)
    {
        var bytes = LedgerEntryGoldenTests.GoldenBytes(file);

        for (var length = 0; length < bytes.Length; length++) Refused(bytes[..length]);
    }

    [Theory]
    [InlineData(new byte[] { 0xFF })]
    [InlineData(new byte[] { 0xC3 })] // a lead byte without its continuation
    [InlineData(new byte[] { 0x80 })] // a lone continuation byte
    [InlineData(new byte[] { 0xC0, 0xAF })] // an overlong '/'
    [InlineData(new byte[] { 0xED, 0xA0, 0x80 })] // an encoded surrogate
    [InlineData(new byte[] { 0xF4, 0x90, 0x80, 0x80 })] // beyond U+10FFFF
    public void Decode_refuses_bytes_that_are_not_utf8(byte[] bad)
    {
        var bytes = Encoding.ASCII.GetBytes(Access);
        var inValue = Encoding.ASCII.GetBytes("\"user-7f3a\"").Length;
        var at = Access.IndexOf("\"user-7f3a\"", StringComparison.Ordinal) + 5;

        Refused([.. bytes[..at], .. bad, .. bytes[at..]]); // inside a value
        var name = Access.IndexOf("\"user\"", StringComparison.Ordinal) + 3;
        Refused([.. bytes[..name], .. bad, .. bytes[name..]]); // inside a member name
        Refused([.. bad, .. bytes]); // before the entry
        Assert.True(inValue > 0);
    }

    // ---- encoding ----

    [Fact]
    public void Non_ascii_text_is_escaped_the_same_way_every_time()
    {
        var entry = Minimal("Jos\u00e9 M\u00fcller \u03a9 \u4e2d \U0001F600");

        var first = entry.Encode();
        var second = (entry with { }).Encode();

        Assert.Equal(first, second);
        Assert.Equal("{\"v\":1,\"type\":\"system\",\"at\":\"1970-01-01T00:00:00.000Z\",\"detail\":\"Jos\\u00E9 M\\u00FCller \\u03A9 \\u4E2D \\uD83D\\uDE00\"}", Encoding.ASCII.GetString(first));
        Assert.Equal(entry.Detail, LedgerEntry.Decode(first).Detail);
    }

    [Fact]
    public void Every_character_encodes_to_ascii_and_decodes_back()
    {
        var texts = Enumerable.Range(0, 0x10000).Where(c => c is < 0xD800 or > 0xDFFF).Select(c => ((char)c).ToString())
            .Concat(["\U00010000", "\U0001F600", "\U0010FFFF"]);

        foreach (var text in texts)
        {
            var bytes = Minimal(text).Encode();
            Assert.All(bytes, b => Assert.InRange(b, (byte)0x20, (byte)0x7e));
            Assert.Equal(text, LedgerEntry.Decode(bytes).Detail);
        }
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(2)]
    [InlineData(3)]
    public void Text_that_is_not_valid_utf16_is_refused_rather_than_recorded_as_something_else(int which)
    {
        // Lone surrogates cannot travel in attribute arguments (those are stored as UTF-8), so they are built here.
        var text = new[] { "\ud800", "a\udc00b", "\ude00\ud83d", "\ud83d" }[which];
        // Written as U+FFFD it would make different entries share one leaf; the entry is refused instead.
        Assert.Throws<LedgerFormatException>(() => Minimal(text).Encode());
        Assert.Throws<LedgerFormatException>(() => (Minimal() with { Roles = ["ok", text] }).Encode());
        Assert.Throws<LedgerFormatException>(() => (Minimal() with { Type = text }).Encode());
    }

    [Fact]
    public void Absent_members_are_left_out_and_an_empty_list_is_kept()
    {
        Assert.Equal("{\"v\":1,\"type\":\"system\",\"at\":\"1970-01-01T00:00:00.000Z\"}", Encoding.ASCII.GetString(Minimal().Encode()));

        var empty = LedgerEntry.Decode((Minimal() with { Roles = [], Departments = [] }).Encode());
        Assert.Equal([], empty.Roles!);
        Assert.Equal([], empty.Departments!);
        Assert.Null(LedgerEntry.Decode(Minimal().Encode()).Roles);
    }

    [Fact]
    public void The_time_is_written_in_utc_to_the_millisecond()
    {
        var at = new DateTimeOffset(2026, 11, 29, 5, 5, 6, 789, TimeSpan.FromHours(1)).AddTicks(9999);

        Assert.Equal("2026-11-29T04:05:06.789Z", LedgerEntry.FormatTime(at));
        Assert.Equal("0001-01-01T00:00:00.000Z", LedgerEntry.FormatTime(DateTimeOffset.MinValue));
        Assert.Equal("9999-12-31T23:59:59.999Z", LedgerEntry.FormatTime(DateTimeOffset.MaxValue));
        var decoded = LedgerEntry.Decode((Minimal() with { At = at }).Encode());
        Assert.Equal(new DateTimeOffset(2026, 11, 29, 4, 5, 6, 789, TimeSpan.Zero), decoded.At);
    }

    [Fact]
    public void An_entry_without_a_type_is_not_encoded()
    {
        Assert.Throws<LedgerFormatException>(() => (Minimal() with { Type = "" }).Encode());
        Assert.Throws<LedgerFormatException>(() => (Minimal() with { Type = null! }).Encode());
    }

    [Theory]
    [InlineData(int.MinValue)]
    [InlineData(-1)]
    [InlineData(0)]
    [InlineData(int.MaxValue)]
    public void Any_status_round_trips(int status)
    {
        var bytes = (Minimal() with { Status = status }).Encode();

        Assert.Equal(status, LedgerEntry.Decode(bytes).Status);
    }

    [Fact]
    public void To_string_is_the_canonical_text()
    {
        var entry = GoldenEntries.ByFile["access.json"];

        Assert.Equal(Access, entry.ToString());
    }

    [Fact]
    public void Random_entries_round_trip_and_encode_stably()
    {
        var random = new Random(20261129);
        string? Text() => random.Next(3) == 0 ? null : new string([.. Enumerable.Range(0, random.Next(0, 12)).Select(_ => Pick())]);
        char Pick() => random.Next(4) switch
        {
            0 => (char)random.Next(0x20, 0x7f),
            1 => (char)random.Next(0, 0x20),
            2 => (char)random.Next(0x80, 0xD800),
            _ => Specials[random.Next(Specials.Length)],
        };
        List<string>? List() => random.Next(3) == 0 ? null : [.. Enumerable.Range(0, random.Next(0, 4)).Select(_ => Text() ?? "")];

        for (var i = 0; i < 500; i++)
        {
            var entry = new LedgerEntry
            {
                Type = new[] { "access", "security", "write", "system" }[random.Next(4)],
                At = DateTimeOffset.FromUnixTimeMilliseconds(random.NextInt64(0, 253402300799999)),
                Event = Text(), User = Text(), Roles = List(), Departments = List(), Client = Text(), Actor = Text(),
                Patient = Text(), Resource = Text(), Action = Text(), Purpose = Text(),
                Permitted = random.Next(3) switch { 0 => null, 1 => true, _ => false },
                Rule = Text(), Reason = Text(), Status = random.Next(3) == 0 ? null : random.Next(int.MinValue, int.MaxValue),
                Outcome = Text(), Detail = Text(), Sha256 = Text(), Source = Text(), Correlation = Text(),
            };

            var bytes = entry.Encode();
            var decoded = LedgerEntry.Decode(bytes);

            AssertSameEntry(entry, decoded);
            Assert.Equal(bytes, decoded.Encode());
            Assert.All(bytes, b => Assert.InRange(b, (byte)0x20, (byte)0x7e));
        }
    }
}
