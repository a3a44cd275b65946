namespace Wardline.Server.Modules.Access.Identity;

/// <summary>
/// What one sign-in step came to. Only <see cref="Succeeded"/> signs anyone in. <see cref="Failed"/>,
/// <see cref="Throttled"/> and <see cref="LockedOut"/> look the same for unknown names as for real
/// accounts; <see cref="Disabled"/> is told only to someone who gave the right password.
/// </summary>
internal abstract record SignInOutcome
{
    private SignInOutcome()
    {
    }

    /// <summary>Signed in (both factors where MFA applies).</summary>
    public sealed record Succeeded(Account Account) : SignInOutcome;

    /// <summary>The password was right; send the TOTP code next (<see cref="SignInService.TotpAsync"/>) within the second-step window.</summary>
    public sealed record NeedsMfa : SignInOutcome;

    /// <summary>The password was right and the account must enrol a second factor first
    /// (<see cref="SignInService.BeginEnrolmentAsync"/>, then <see cref="SignInService.CompleteEnrolmentAsync"/>).</summary>
    public sealed record NeedsMfaEnrolment : SignInOutcome;

    /// <summary>Wrong name, password or code. Deliberately says no more.</summary>
    public sealed record Failed : SignInOutcome;

    /// <summary>Too many recent failures from this source: the attempt was not even checked. Try again after <paramref name="RetryAfter"/>.</summary>
    public sealed record Throttled(TimeSpan RetryAfter) : SignInOutcome;

    /// <summary>Too many failures for this account in the last hour; it stays locked until they age out or an administrator unlocks it.</summary>
    public sealed record LockedOut : SignInOutcome;

    /// <summary>The account is disabled or has expired.</summary>
    public sealed record Disabled : SignInOutcome;
}
