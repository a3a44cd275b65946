using Microsoft.Extensions.Logging;

namespace Wardline.Server.Modules.Monitoring.Notifications;

/// <summary>Notification messages: identifiers, channels and short error reasons, never an alert's evidence or a receiver's reply.</summary>
internal static partial class NotifyLog
{
    [LoggerMessage(EventId = 6101, Level = LogLevel.Information, Message = "Queued {Count} alert notifications")]
    public static partial void Queued(ILogger logger, int count);

    [LoggerMessage(EventId = 6102, Level = LogLevel.Information, Message = "Notification {Id} of alert {AlertId} sent by {Channel}")]
    public static partial void Sent(ILogger logger, long id, long alertId, string channel);

    [LoggerMessage(EventId = 6103, Level = LogLevel.Warning, Message = "Notification {Id} of alert {AlertId} by {Channel} failed (attempt {Attempts}): {Error}; it will be tried again")]
    public static partial void AttemptFailed(ILogger logger, long id, long alertId, string channel, int attempts, string error);

    [LoggerMessage(EventId = 6104, Level = LogLevel.Error, Message = "Notification {Id} of alert {AlertId} by {Channel} failed after {Attempts} attempts ({Error}); it waits in the console to be retried")]
    public static partial void GaveUp(ILogger logger, long id, long alertId, string channel, int attempts, string error);

    [LoggerMessage(EventId = 6105, Level = LogLevel.Error, Message = "A notification round failed ({Error}): {Reason}")]
    public static partial void RoundFailed(ILogger logger, string error, string reason);
}
