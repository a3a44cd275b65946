using MailKit.Net.Smtp;
using MailKit.Security;
using Microsoft.Extensions.Logging;
using MimeKit;
using Wardline.Server.Pipeline;

namespace Wardline.Server.Modules.Access;

/// <summary>Where break-glass notifications go, bound from <c>Wardline:Access:Notify</c>. No SMTP host: the review queue only.</summary>
public sealed class NotifyOptions
{
    public string? SmtpHost { get; set; }

    public int SmtpPort { get; set; } = 25;

    /// <summary>STARTTLS when the server offers it (required for anything but a relay on the same host).</summary>
    public bool StartTls { get; set; } = true;

    public string From { get; set; } = "wardline@localhost";

    /// <summary>Privacy officers' addresses: every break-glass declaration is sent to each at once.</summary>
    public IList<string> PrivacyOfficers { get; } = [];

    public IEnumerable<string> Validate()
    {
        if (SmtpPort is < 1 or > 65535) yield return "Wardline:Access:Notify:SmtpPort must be from 1 to 65535.";
        if (SmtpHost is not null && PrivacyOfficers.Count == 0) yield return "Wardline:Access:Notify:PrivacyOfficers needs at least one address when SmtpHost is set.";
        foreach (var a in PrivacyOfficers.Append(From))
        {
            if (!MailboxAddress.TryParse(a, out _)) yield return $"Wardline:Access:Notify: '{a}' is not an e-mail address.";
        }
    }
}

/// <summary>
/// Sends plain-text mail through the SMTP server of <c>Wardline:Access:Notify</c>: break-glass declarations to the
/// privacy officers, backup failures to the operators. Callers decide what a failure means; they get the exception.
/// </summary>
internal sealed class MailSender(AccessOptions options)
{
    /// <summary>False when no SMTP host is configured: nothing is sent.</summary>
    public bool Configured => options.Notify.SmtpHost is not null;

    /// <summary>The failures a send can end in (connection, protocol, TLS, the 15 s timeout).</summary>
    public static bool IsSendFailure(Exception ex) =>
        ex is IOException or System.Net.Sockets.SocketException or SmtpCommandException or SmtpProtocolException or OperationCanceledException or SslHandshakeException;

    public async Task SendAsync(IEnumerable<string> to, string subject, string text, CancellationToken ct)
    {
        var o = options.Notify;
        if (o.SmtpHost is null) return;
        var message = new MimeMessage();
        message.From.Add(MailboxAddress.Parse(o.From));
        foreach (var address in to) message.To.Add(MailboxAddress.Parse(address));
        if (message.To.Count == 0) return;
        message.Subject = subject;
        message.Body = new TextPart("plain") { Text = text };
        using var smtp = new SmtpClient();
        using var timeout = CancellationTokenSource.CreateLinkedTokenSource(ct);
        timeout.CancelAfter(TimeSpan.FromSeconds(15));
        await smtp.ConnectAsync(o.SmtpHost, o.SmtpPort, o.StartTls ? SecureSocketOptions.StartTlsWhenAvailable : SecureSocketOptions.None, timeout.Token);
        await smtp.SendAsync(message, timeout.Token);
        await smtp.DisconnectAsync(true, timeout.Token);
    }
}

/// <summary>
/// Tells the privacy officers at once that someone broke the glass. The message names the user, the
/// patient's id, the times and the declaration, never the reason (free text that may hold clinical
/// detail; reviewers read it in the console). A failed notification never blocks the emergency: it is
/// logged and recorded as a security event, and the declaration waits in the review queue regardless.
/// </summary>
internal sealed class BreakGlassNotifier(AccessOptions options, MailSender mail, IAccessRecorder recorder, TimeProvider time, ILogger<BreakGlassNotifier> logger)
{
    public async Task NotifyAsync(BreakGlassDeclaration d, CancellationToken ct)
    {
        if (!mail.Configured) return;
        try
        {
            await mail.SendAsync(options.Notify.PrivacyOfficers, $"Break-glass declared by {d.User}", $"""
                {d.User} declared an emergency (purpose {d.Purpose}) for Patient/{d.Patient} at {d.DeclaredAt:u}.
                The grant lasts until {d.ExpiresAt:u}. Every access under it is recorded with purpose {d.Purpose}.

                Declaration {d.Id} waits in the break-glass review queue of the Wardline console until a reviewer closes it.
                """, ct);
        }
        catch (Exception ex) when (MailSender.IsSendFailure(ex))
        {
            Log.BreakGlassNotificationFailed(logger, d.Id, ex.GetType().Name);
            await recorder.RecordAsync(new SecurityEvent(time.GetUtcNow(), SecurityEventKind.NotificationFailed, d.User, "server", "failed",
                $"break-glass declaration {d.Id}: the privacy officers could not be e-mailed ({ex.GetType().Name})", null, null), CancellationToken.None);
        }
    }
}
