namespace Wardline.Server.Pipeline;

/// <summary>What kind of security event happened. Stored by name, so only ever add members.</summary>
internal enum SecurityEventKind
{
    SignIn,
    SignInFailed,
    Lockout,
    SignOut,
    SessionExpired,
    MfaEnrolled,
    MfaReset,
    MfaFailed,
    TokenIssued,
    TokenRejected,
    AccountCreated,
    AccountChanged,
    AccountDisabled,
    PasswordChanged,
    PolicyLoaded,
    PolicyRejected,
    BreakGlassDeclared,
    BreakGlassReviewed,
    NotificationFailed,
    AlertRaised,
    AlertUpdated,
    MonitorConfigLoaded,
    MonitorConfigRejected,
}

/// <summary>
/// One authentication, account, policy or break-glass event. <see cref="User"/> is the account the
/// event is about, <see cref="Actor"/> who caused it (an administrator, the CLI operator, or the user
/// themself). <see cref="Detail"/> holds identifiers and reasons only, never patient data or secrets.
/// </summary>
internal sealed record SecurityEvent(
    DateTimeOffset At,
    SecurityEventKind Kind,
    string? User,
    string? Actor,
    string Outcome,
    string? Detail,
    string? CorrelationId,
    string? Source);

/// <summary>The access could not be recorded, so nothing was disclosed or changed: the request fails with 503.</summary>
internal sealed class AccessNotRecordedException(Exception inner) : Exception("The access could not be recorded.", inner);
