using System.Globalization;
using Wardline.Server.Modules.Access.Identity;

namespace Wardline.Server.Modules.Console.Components;

/// <summary>What a refused sign-in step tells the person: never whether the account exists.</summary>
internal static class SignInMessages
{
    public const string Wrong = "The user name or password is not correct.";
    public const string WrongCode = "The code is not correct, or it was used already. Wait for the next code and try again.";
    public const string Expired = "The sign-in took too long. Sign in again.";

    public static string For(SignInOutcome result, bool code = false) => result switch
    {
        SignInOutcome.Throttled t => string.Create(CultureInfo.InvariantCulture,
            $"Too many failed attempts from this computer. Wait {Math.Max(1, (int)Math.Ceiling(t.RetryAfter.TotalSeconds))} seconds, then try again."),
        SignInOutcome.LockedOut => "Sign-in is locked after too many failed attempts. Try again later, or ask an administrator to unlock it.",
        SignInOutcome.Disabled => "This account cannot sign in. Ask an administrator.",
        _ => code ? WrongCode : Wrong,
    };
}
