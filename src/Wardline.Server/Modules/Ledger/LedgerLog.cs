using Microsoft.Extensions.Logging;

namespace Wardline.Server.Modules.Ledger;

internal static partial class LedgerLog
{
    [LoggerMessage(EventId = 4001, Level = LogLevel.Critical, Message = "Read-only: {Problem}")]
    public static partial void ReadOnly(ILogger logger, string problem);

    [LoggerMessage(EventId = 4002, Level = LogLevel.Information, Message = "Audit ledger checked: {Size} entries, {Heads} witness heads, in {Milliseconds} ms")]
    public static partial void Checked(ILogger logger, long size, int heads, long milliseconds);

    [LoggerMessage(EventId = 4003, Level = LogLevel.Error, Message = "A tree head could not be published")]
    public static partial void PublishFailed(ILogger logger, Exception exception);

    [LoggerMessage(EventId = 4004, Level = LogLevel.Information, Message = "Signed tree head published: size {Size}")]
    public static partial void Published(ILogger logger, long size);
}
