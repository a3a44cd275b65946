using Microsoft.Extensions.Logging;

namespace Wardline.Server.Modules.Access.Identity;

/// <summary>
/// Diagnostic log of accounts and sign-in. Account names of existing accounts only (a name that
/// matches no account may be a password typed into the wrong field); never a password, code or
/// secret. The security events (<see cref="Pipeline.SecurityEvent"/>) are the audit record.
/// </summary>
internal static partial class Log
{
    [LoggerMessage(EventId = 3100, Level = LogLevel.Warning, Message = "Account {Account} is locked out after {Failures} failed sign-in attempts within {WindowMinutes} minutes")]
    public static partial void AccountLockedOut(ILogger logger, string account, int failures, double windowMinutes);

    [LoggerMessage(EventId = 3101, Level = LogLevel.Error, Message = "The MFA secret of account {Account} cannot be opened (tampered with, or its key-encryption key is gone); its sign-in fails until MFA is reset")]
    public static partial void MfaSecretUnreadable(ILogger logger, string account, Exception exception);
}
