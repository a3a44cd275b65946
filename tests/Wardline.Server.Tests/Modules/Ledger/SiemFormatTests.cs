using System.Text;
using Wardline.Ledger;
using Wardline.Server.Modules.Ledger.Export;

namespace Wardline.Server.Tests.Modules.Ledger;

/// <summary>The SIEM formats, byte for byte: RFC 5424 with CEF, RFC 6587 octet counting, CEF escaping, jsonl.</summary>
public sealed class SiemFormatTests
{
    private static readonly DateTimeOffset At = DateTimeOffset.FromUnixTimeMilliseconds(1_795_000_000_123);

    [Fact]
    public void A_permitted_read_is_an_informational_log_audit_message_with_every_field()
    {
        var e = new LedgerEntry
        {
            Type = "access", At = At, Event = "outcome", User = "dr.reader", Roles = ["physician", "tier1"], Client = "ehr",
            Patient = "Patient/p1", Resource = "Patient/p1/_history/2", Action = "Read", Purpose = "TREAT", Permitted = true,
            Rule = "care-team", Reason = "member of the care team", Status = 200, Source = "10.1.2.3", Correlation = "0HN1:0001",
        };

        Assert.Equal(
            "<110>1 2026-11-18T11:06:40.123Z ward-01 wardline - ledger [wardline@32473 idx=\"42\"] " +
            "CEF:0|Wardline|Wardline|1.0|access:outcome|Read outcome permitted|3|" +
            "rt=1795000000123 cat=access act=Read outcome=permitted suser=dr.reader spriv=physician,tier1 src=10.1.2.3 " +
            "cs1Label=rule cs1=care-team cs2Label=purpose cs2=TREAT cs3Label=patient cs3=Patient/p1 " +
            "cs4Label=resource cs4=Patient/p1/_history/2 cs5Label=correlation cs5=0HN1:0001 cs6Label=client cs6=ehr " +
            "cn1Label=ledgerIndex cn1=42 cn2Label=status cn2=200 msg=member of the care team",
            SiemFormat.Syslog(42, e, "ward-01"));
    }

    [Fact]
    public void A_denied_break_glass_read_is_a_warning_with_severity_8()
    {
        var e = new LedgerEntry
        {
            Type = "access", At = At, Event = "decision", User = "nurse.a", Patient = "Patient/p2", Resource = "Observation/o1",
            Action = "Read", Purpose = "ETREAT", Permitted = false, Rule = "default-deny", Reason = "no break-glass grant",
        };

        Assert.Equal(
            "<108>1 2026-11-18T11:06:40.123Z - wardline - ledger [wardline@32473 idx=\"7\"] " +
            "CEF:0|Wardline|Wardline|1.0|access:decision|Read decision denied|8|" +
            "rt=1795000000123 cat=access act=Read outcome=denied suser=nurse.a cs1Label=rule cs1=default-deny cs2Label=purpose cs2=ETREAT " +
            "cs3Label=patient cs3=Patient/p2 cs4Label=resource cs4=Observation/o1 cn1Label=ledgerIndex cn1=7 msg=no break-glass grant",
            SiemFormat.Syslog(7, e, SiemFormat.HostName(null)));
    }

    [Fact]
    public void A_failed_sign_in_is_a_notice_and_names_the_account_as_the_source_user()
    {
        var e = new LedgerEntry { Type = "security", At = At, Event = "SignInFailed", User = "dr.who", Outcome = "failure", Detail = "bad password", Source = "::1" };

        Assert.Equal(
            "<109>1 2026-11-18T11:06:40.123Z h wardline - ledger [wardline@32473 idx=\"0\"] " +
            "CEF:0|Wardline|Wardline|1.0|security:SignInFailed|SignInFailed failure|6|" +
            "rt=1795000000123 cat=security act=SignInFailed outcome=failure suser=dr.who src=::1 cn1Label=ledgerIndex cn1=0 msg=bad password",
            SiemFormat.Syslog(0, e, "h"));
    }

    [Fact]
    public void An_account_changed_by_an_administrator_has_the_administrator_as_source_and_the_account_as_destination_user()
    {
        var e = new LedgerEntry { Type = "security", At = At, Event = "AccountDisabled", User = "dr.who", Actor = "admin", Outcome = "succeeded", Source = "not-an-ip" };

        Assert.Equal(
            "CEF:0|Wardline|Wardline|1.0|security:AccountDisabled|AccountDisabled succeeded|5|" +
            "rt=1795000000123 cat=security act=AccountDisabled outcome=succeeded suser=admin duser=dr.who cn1Label=ledgerIndex cn1=3",
            SiemFormat.Cef(3, e, SiemFormat.Severity(e)));
    }

    [Fact]
    public void A_deleted_version_carries_its_content_hash()
    {
        var e = new LedgerEntry { Type = "write", At = At, Event = "delete", User = "operator", Resource = "Observation/o1/_history/3", Sha256 = new string('a', 64) };

        Assert.Equal(
            "CEF:0|Wardline|Wardline|1.0|write:delete|delete Observation|4|" +
            "rt=1795000000123 cat=write act=delete suser=operator cs4Label=resource cs4=Observation/o1/_history/3 cn1Label=ledgerIndex cn1=9 " +
            "fileHash=" + new string('a', 64),
            SiemFormat.Cef(9, e, SiemFormat.Severity(e)));
    }

    [Fact]
    public void Header_fields_escape_pipes_and_backslashes_and_cannot_break_a_line()
    {
        Assert.Equal(@"a\|b\\c d e", SiemFormat.EscapeHeader("a|b\\c\nd\re"));
    }

    [Fact]
    public void Extension_values_escape_equals_backslashes_and_line_breaks_but_not_pipes()
    {
        Assert.Equal(@"k\=v \\share\\x |pipe| one\r\ntwo\nthree", SiemFormat.EscapeExtension("k=v \\share\\x |pipe| one\r\ntwo\nthree"));
    }

    [Fact]
    public void Tricky_text_in_a_security_event_is_escaped_in_the_extension_and_in_the_header_name()
    {
        var e = new LedgerEntry { Type = "security", At = At, Event = "Policy|Rejected", Actor = "a=b", Outcome = "failed", Detail = "line 1\nrule x=|y| \\ end" };

        Assert.Equal(
            @"CEF:0|Wardline|Wardline|1.0|security:Policy\|Rejected|Policy\|Rejected failed|3|" +
            @"rt=1795000000123 cat=security act=Policy|Rejected outcome=failed suser=a\=b cn1Label=ledgerIndex cn1=1 msg=line 1\nrule x\=|y| \\ end",
            SiemFormat.Cef(1, e, SiemFormat.Severity(e)));
    }

    [Fact]
    public void A_frame_is_the_message_length_in_bytes_a_space_and_the_message()
    {
        Assert.Equal("5 é x\n"u8.ToArray(), SiemFormat.Frame("é x\n"));
        Assert.Equal("3 abc"u8.ToArray(), SiemFormat.Frame("abc"));
    }

    [Fact]
    public void A_jsonl_line_holds_the_index_and_the_canonical_bytes_unchanged()
    {
        var entry = new LedgerEntry { Type = "system", At = At, Event = "started", Actor = "server", Outcome = "succeeded" }.Encode();

        var line = Encoding.UTF8.GetString(SiemFormat.JsonLine(12, entry));

        Assert.Equal(
            "{\"idx\":12,\"entry\":{\"v\":1,\"type\":\"system\",\"at\":\"2026-11-18T11:06:40.123Z\",\"event\":\"started\",\"actor\":\"server\",\"outcome\":\"succeeded\"}}\n",
            line);
    }

    [Theory]
    [InlineData("ward-01.hospital.example", "ward-01.hospital.example")]
    [InlineData("my host\t!", "myhost!")]
    [InlineData("", "-")]
    [InlineData("ħøst", "st")]
    [InlineData("ħø", "-")]
    public void A_host_name_is_printable_ascii_or_the_nil_value(string name, string expected)
    {
        Assert.Equal(expected, SiemFormat.HostName(name));
    }

    [Theory]
    [InlineData(0, 6)]
    [InlineData(3, 6)]
    [InlineData(4, 5)]
    [InlineData(6, 5)]
    [InlineData(7, 4)]
    [InlineData(8, 4)]
    [InlineData(9, 2)]
    [InlineData(10, 2)]
    public void CEF_severity_bands_map_to_syslog_severities(int cef, int syslog)
    {
        Assert.Equal(syslog, SiemFormat.SyslogSeverity(cef));
    }
}
