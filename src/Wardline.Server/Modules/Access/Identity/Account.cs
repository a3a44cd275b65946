using System.Globalization;
using System.Text.RegularExpressions;

namespace Wardline.Server.Modules.Access.Identity;

/// <summary>
/// A local account as the rest of the server sees it (the policy builds its subject from it). Holds
/// no credential: the password hash and the MFA secret never leave <see cref="AccountStore"/> and
/// <see cref="SignInService"/>.
/// </summary>
/// <param name="Name">Sign-in name, lower case (see <see cref="AccountRules.IsValidNewName"/>); also the token's user.</param>
/// <param name="Roles">Role names of the policy's vocabulary (physician, nurse, billing_clerk, ...).</param>
/// <param name="Tier">1 to 3; 1 is the most trusted (see the policy).</param>
/// <param name="Departments">Department codes, e.g. "cardiology" (values of the department identifier system).</param>
/// <param name="Treats">Sensitivity labels the person treats, e.g. "PSY", which lift the matching label restrictions.</param>
/// <param name="PractitionerId">Logical id of the person's FHIR Practitioner, when known.</param>
/// <param name="BreakGlassApproved">Whether the person may declare break-glass at all.</param>
/// <param name="Expires">The account stops working at this instant (sign-in and tokens); null: never.</param>
/// <param name="ShiftStartHour">Working hours in the institution's time zone, both null or both 0-23 (end exclusive, wraps midnight).</param>
/// <param name="SessionsAfter">Console sessions signed in before this instant are over (sign-out, password change, MFA reset, disabling); not administered.</param>
/// <param name="TokensAfter">Bearer tokens issued before this instant are refused (password change, MFA reset, disabling); not administered.</param>
/// <param name="ExternalSubject">The external provider's user (<c>issuer|subject</c>) bound to this account at its first sign-in through the provider; no other provider user acts as it.</param>
internal sealed record Account(
    string Name,
    string Display,
    IReadOnlyList<string> Roles,
    int Tier,
    IReadOnlyList<string> Departments,
    IReadOnlyList<string> Treats,
    string? PractitionerId,
    bool BreakGlassApproved,
    bool Disabled,
    DateTimeOffset? Expires,
    int? ShiftStartHour,
    int? ShiftEndHour,
    bool MfaEnrolled,
    DateTimeOffset? SessionsAfter = null,
    DateTimeOffset? TokensAfter = null,
    string? ExternalSubject = null)
{
    /// <summary>Enabled and not expired at <paramref name="now"/>: may sign in and use tokens.</summary>
    public bool IsActive(DateTimeOffset now) => !Disabled && (Expires is null || Expires > now);

    /// <summary>A new account with no roles, departments or labels; refine it with <c>with</c>.</summary>
    public static Account New(string name, string display) =>
        new(name, display, [], AccountRules.DefaultTier, [], [], null, false, false, null, null, null, false);
}

/// <summary>What an account operation came to. Expected outcomes are results, not exceptions.</summary>
internal abstract record AccountResult
{
    private AccountResult()
    {
    }

    public sealed record Done(Account Account) : AccountResult;

    public sealed record NotFound : AccountResult;

    public sealed record AlreadyExists : AccountResult;

    /// <summary>The request was refused; each problem names the field, never echoes a password.</summary>
    public sealed record Invalid(IReadOnlyList<string> Problems) : AccountResult;

    public sealed record WeakPassword(PasswordRejection Rejection) : AccountResult;

    /// <summary>Another change to the same account committed first; nothing was written.</summary>
    public sealed record Conflict : AccountResult;
}

/// <summary>The shapes of account fields. Everything stored is checked here first.</summary>
internal static partial class AccountRules
{
    public const int DefaultTier = 2;
    public const int MinTier = 1;
    public const int MaxTier = 3;
    public const int MaxDisplayLength = 200;
    public const int MaxListItems = 32;

    public const string NameRule = "A user name is 1-64 characters of lower-case letters, digits and . - _ @, starting with a letter or digit.";

    /// <summary>New names: lower case, because sign-in lower-cases what is typed.</summary>
    public static bool IsValidNewName(string name) => NewName().IsMatch(name);

    /// <summary>
    /// Names of existing accounts: also the mixed-case names of interim users carried over from the
    /// <c>users</c> table (they keep working with tokens; sign-in by password needs a lower-case name).
    /// </summary>
    public static bool IsValidName(string name) => AnyName().IsMatch(name);

    public static IReadOnlyList<string> Check(Account a)
    {
        var problems = new List<string>();
        if (!IsValidName(a.Name)) problems.Add(NameRule);
        if (string.IsNullOrWhiteSpace(a.Display) || a.Display.Length > MaxDisplayLength || a.Display.Any(char.IsControl))
            problems.Add($"The display name must be 1-{MaxDisplayLength} printable characters.");
        CheckList(problems, "role", a.Roles, Role(), "lower-case letters, digits and _ (e.g. billing_clerk)");
        CheckList(problems, "department", a.Departments, Code(), "lower-case letters, digits and - (e.g. cardiology)");
        CheckList(problems, "sensitivity label", a.Treats, Label(), "2-10 upper-case letters or digits (e.g. PSY)");
        if (a.Tier is < MinTier or > MaxTier) problems.Add($"The tier must be from {MinTier} to {MaxTier}.");
        if (a.PractitionerId is { } p && !FhirId().IsMatch(p))
            problems.Add("The practitioner id must be a FHIR logical id: 1-64 letters, digits, '-' and '.'.");
        if ((a.ShiftStartHour is null) != (a.ShiftEndHour is null))
            problems.Add("Give both shift hours or neither.");
        else if (a.ShiftStartHour is { } s && a.ShiftEndHour is { } e && (s is < 0 or > 23 || e is < 0 or > 23 || s == e))
            problems.Add("Shift hours are 0-23 and differ (the end is exclusive; a shift may wrap midnight, e.g. 22-6).");
        return problems;
    }

    private static void CheckList(List<string> problems, string what, IReadOnlyList<string> items, Regex shape, string rule)
    {
        if (items.Count > MaxListItems) problems.Add($"At most {MaxListItems} of each {what}.");
        foreach (var item in items.Where(i => !shape.IsMatch(i)).Take(1))
        {
            problems.Add($"'{Printable(item)}' is not a {what}: use {rule}.");
        }
        if (items.Distinct(StringComparer.Ordinal).Count() != items.Count) problems.Add($"A {what} is given twice.");
    }

    /// <summary>Echoes a rejected value safely (it is never a secret): control characters dropped, length capped.</summary>
    public static string Printable(string value)
    {
        var clean = new string([.. value.Where(c => !char.IsControl(c)).Take(40)]);
        return clean.Length < value.Length ? clean + "…" : clean;
    }

    /// <summary>Lists are stored as one space-separated column; every item's shape excludes spaces.</summary>
    public static string Join(IReadOnlyList<string> items) => string.Join(' ', items);

    public static IReadOnlyList<string> Split(string stored) => stored.Split(' ', StringSplitOptions.RemoveEmptyEntries);

    public static string Describe(Account a) => string.Create(CultureInfo.InvariantCulture,
        $"roles={string.Join(',', a.Roles)} tier={a.Tier} departments={string.Join(',', a.Departments)} treats={string.Join(',', a.Treats)} break-glass={(a.BreakGlassApproved ? "yes" : "no")}");

    [GeneratedRegex("^[a-z0-9][a-z0-9._@-]{0,63}$")]
    private static partial Regex NewName();

    [GeneratedRegex("^[A-Za-z0-9._@-]{1,64}$")]
    private static partial Regex AnyName();

    [GeneratedRegex("^[a-z][a-z0-9_]{0,39}$")]
    private static partial Regex Role();

    [GeneratedRegex("^[a-z0-9][a-z0-9-]{0,39}$")]
    private static partial Regex Code();

    [GeneratedRegex("^[A-Z0-9]{2,10}$")]
    private static partial Regex Label();

    [GeneratedRegex("^[A-Za-z0-9.-]{1,64}$")]
    private static partial Regex FhirId();
}
