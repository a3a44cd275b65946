namespace Wardline.Server.Modules.Access.Identity;

/// <summary>Sign-in throttling and MFA settings. The defaults are the product's policy; tests tune them.</summary>
internal sealed class SignInOptions
{
    /// <summary>Roles that do not need MFA when every role of an account is one of them. Empty: everyone needs MFA.</summary>
    public IList<string> MfaOptionalRoles { get; } = [];

    /// <summary>Failed attempts per account in <see cref="FailureWindow"/> that lock it (NIST SP 800-63B allows at most 100).</summary>
    public int LockoutFailures { get; set; } = 100;

    /// <summary>The rolling window failures are counted in; a lockout ends when enough of them age out of it.</summary>
    public TimeSpan FailureWindow { get; set; } = TimeSpan.FromHours(1);

    /// <summary>Failures from one source that are free; after n of them the next attempt waits 2^(n - this) seconds.</summary>
    public int FreeFailures { get; set; } = 5;

    public TimeSpan MaxBackoff { get; set; } = TimeSpan.FromMinutes(15);

    /// <summary>How long after a correct password the second step (TOTP or enrolment) may follow.</summary>
    public TimeSpan SecondStepWindow { get; set; } = TimeSpan.FromMinutes(5);

    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (LockoutFailures is < 1 or > 100) problems.Add("LockoutFailures must be from 1 to 100.");
        if (FailureWindow <= TimeSpan.Zero) problems.Add("FailureWindow must be positive.");
        if (FreeFailures < 1) problems.Add("FreeFailures must be at least 1.");
        if (MaxBackoff < TimeSpan.FromSeconds(1)) problems.Add("MaxBackoff must be at least one second.");
        if (SecondStepWindow <= TimeSpan.Zero || SecondStepWindow > TimeSpan.FromMinutes(30)) problems.Add("SecondStepWindow must be more than 0 and at most 30 minutes.");
        return problems;
    }
}

/// <summary>
/// Who must use a second factor. For now: everyone, unless every role of the account is in
/// <see cref="SignInOptions.MfaOptionalRoles"/> (an account without roles needs MFA too). The policy
/// will decide this from whether an account's roles can see clinical data or administer.
/// An account that has enrolled is always asked for its code.
/// </summary>
internal sealed class MfaRequirement(Microsoft.Extensions.Options.IOptions<SignInOptions> options)
{
    public bool IsRequired(Account account) =>
        account.Roles.Count == 0 || !account.Roles.All(r => options.Value.MfaOptionalRoles.Contains(r, StringComparer.Ordinal));
}
