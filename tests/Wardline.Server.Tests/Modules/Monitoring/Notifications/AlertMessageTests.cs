using System.Text;
using Wardline.Monitoring;
using Wardline.Server.Modules.Ledger.Export;
using Wardline.Server.Modules.Monitoring.Notifications;

namespace Wardline.Server.Tests.Modules.Monitoring.Notifications;

/// <summary>What each channel says of an alert: identifiers, escaped so no value can forge a field.</summary>
public sealed class AlertMessageTests
{
    private static readonly NotifiedAlert Alert = new(42, "same-surname", "Same surname", Severity.Critical, "clerk.b", "pat-9",
        "new", DateTimeOffset.Parse("2026-11-29T08:00:00Z", System.Globalization.CultureInfo.InvariantCulture),
        DateTimeOffset.Parse("2026-11-29T08:05:00Z", System.Globalization.CultureInfo.InvariantCulture), 40, 55);

    [Fact]
    public void A_syslog_alert_escapes_its_values_so_none_can_add_a_field_or_a_line()
    {
        var message = AlertMessages.Syslog(Alert with { Title = "Same|surname", Status = "a=b | c\\d\nmsg=forged" }, "ward-1", "https://w.example/console/alerts/42");

        Assert.StartsWith("<106>1 2026-11-29T08:05:00.000Z ward-1 wardline - alert [wardline@32473 alert=\"42\"] CEF:0|Wardline|Wardline|1.0|alert:same-surname|Same\\|surname|10|", message, StringComparison.Ordinal);
        Assert.DoesNotContain('\n', message);
        Assert.Contains("cs2Label=status cs2=a\\=b | c\\\\d\\nmsg\\=forged ", message, StringComparison.Ordinal);
        Assert.Contains("cn2Label=patients cn2=40 cn3Label=entries cn3=55", message, StringComparison.Ordinal);
        var frame = SiemFormat.Frame(message);
        Assert.StartsWith(Encoding.UTF8.GetByteCount(message) + " ", Encoding.ASCII.GetString(frame), StringComparison.Ordinal);
    }

    [Fact]
    public void An_email_names_the_alert_user_patient_id_times_and_link_and_its_subject_is_one_line()
    {
        var subject = AlertMessages.Subject(Alert with { Title = "Same\r\nBcc: x@evil.example" });
        var body = AlertMessages.EmailBody(Alert, "https://w.example/console/alerts/42");

        Assert.Equal("[Wardline] Critical alert 42: Same  Bcc: x@evil.example", subject);
        Assert.Contains("User:      clerk.b", body, StringComparison.Ordinal);
        Assert.Contains("Patient:   Patient/pat-9 and 39 more", body, StringComparison.Ordinal);
        Assert.Contains("First:     2026-11-29T08:00:00.000Z", body, StringComparison.Ordinal);
        Assert.Contains("Review it in the console: https://w.example/console/alerts/42", body, StringComparison.Ordinal);
    }

    [Fact]
    public void The_signature_is_the_hmac_of_timestamp_dot_body_in_lowercase_hex()
    {
        var signature = AlertMessages.Signature("whsec-test-0123456789", 1764410000, "{\"id\":42}"u8);

        // Computed apart, with Python's hmac: hmac.new(key, b'1764410000.{"id":42}', sha256).hexdigest()
        Assert.Equal("sha256=4afb5faeaa86d0859af6daa19396663a9588fc1221e75f7e642ecfed9bb70c3c", signature);
    }
}
