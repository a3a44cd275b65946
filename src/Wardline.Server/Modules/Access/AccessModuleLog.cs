using Microsoft.Extensions.Logging;

namespace Wardline.Server.Modules.Access;

internal static partial class Log
{
    [LoggerMessage(EventId = 3001, Level = LogLevel.Information, Message = "Access policy loaded from {Path} (sha256 {Digest}, {Rules} rules)")]
    public static partial void PolicyLoaded(ILogger logger, string path, string digest, int rules);

    [LoggerMessage(EventId = 3002, Level = LogLevel.Error, Message = "Access policy refused; the previous policy stays in force: {Problem}")]
    public static partial void PolicyRejected(ILogger logger, string problem);

    [LoggerMessage(EventId = 3003, Level = LogLevel.Warning, Message = "Break-glass declared by {User} for patient {Patient} (declaration {Id})")]
    public static partial void BreakGlassDeclared(ILogger logger, string user, string patient, string id);

    [LoggerMessage(EventId = 3004, Level = LogLevel.Error, Message = "Break-glass declaration {Id}: the privacy officers could not be e-mailed ({Error}); it waits in the review queue")]
    public static partial void BreakGlassNotificationFailed(ILogger logger, string id, string error);

    [LoggerMessage(EventId = 3005, Level = LogLevel.Warning, Message = "{Count} OAuth requests refused by the per-address rate limit ({PerMinute} a minute) since the last report; the latest from {Address}")]
    public static partial void OAuthRateLimited(ILogger logger, long count, int perMinute, string address);

    [LoggerMessage(EventId = 3006, Level = LogLevel.Warning, Message = "OAuth client {ClientId}: its secret's stored hash could not be upgraded to SHA-256 ({Error}); it stays PBKDF2 and is upgraded at a later use")]
    public static partial void ClientSecretUpgradeFailed(ILogger logger, string clientId, string error);
}
