using System.CommandLine;
using System.Globalization;
using System.Security.Cryptography;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Wardline.Server.Modules.Access.Identity;

namespace Wardline.Cli;

/// <summary>
/// `wardline users ...`: local accounts. Every value is checked before the store is opened, and the
/// account service checks again before it writes, so a refused command writes nothing (exit code 2).
/// Changes are recorded as security events with the actor "cli:&lt;os user&gt;".
/// </summary>
internal static class UsersCommand
{
    private const string GeneratedAlphabet = "abcdefghjkmnpqrstuvwxyz23456789";

    public static Command Create()
    {
        var command = new Command("users", "Manage local accounts: roles, departments, tier, MFA and passwords.");
        command.Subcommands.Add(Add());
        command.Subcommands.Add(Update());
        command.Subcommands.Add(List());
        command.Subcommands.Add(Simple("disable", "Disable an account: its sign-in and tokens stop working.", (s, n, a, ct) => s.DisableAsync(n, a, ct), "disabled"));
        command.Subcommands.Add(Simple("enable", "Enable a disabled account again.", (s, n, a, ct) => s.EnableAsync(n, a, ct), "enabled"));
        command.Subcommands.Add(Simple("reset-mfa", "Forget an account's authenticator app; its next sign-in enrols a new one.", (s, n, a, ct) => s.ResetMfaAsync(n, a, ct), "MFA reset; it enrols again at its next sign-in"));
        command.Subcommands.Add(Simple("unlock", "End a sign-in lockout: forget the account's failed attempts.", (s, n, a, ct) => s.UnlockAsync(n, a, ct), "unlocked"));
        command.Subcommands.Add(Simple("unlink-external", "Forget which external OpenID provider user the account is bound to (the first to sign in as it); the next one to sign in through the provider is bound instead.",
            (s, n, a, ct) => s.UnlinkExternalAsync(n, a, ct), "unlinked from its external provider user; the next sign-in through the provider binds anew"));
        command.Subcommands.Add(SetPassword());
        return command;
    }

    private static Command Add()
    {
        var store = new StoreArgs();
        var fields = new FieldOptions(forUpdate: false);
        var name = NameArgument();
        var passwordStdin = PasswordStdinOption("Read the initial password from standard input instead of generating one.");
        var add = new Command("add", "Add an account. Without --password-stdin a strong random initial password is generated and printed once.");
        store.AddTo(add);
        add.Arguments.Add(name);
        fields.AddTo(add);
        add.Options.Add(passwordStdin);
        add.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var n = parse.GetValue(name)!;
            if (!AccountRules.IsValidNewName(n)) throw new CliException(AccountRules.NameRule);
            var account = fields.Apply(parse, Account.New(n, n));
            Refuse(AccountRules.Check(account));
            if (account.Expires <= DateTimeOffset.UtcNow) throw new CliException("--expires must be in the future.");
            var generated = !parse.GetValue(passwordStdin);
            var password = generated ? Generate(account) : ReadPassword();
            if (PasswordPolicy.Check(password, account.Name, account.Display) is { } weak) throw new CliException(weak.Message);
            var options = store.Resolve(parse);

            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var result = await sp.GetRequiredService<AccountService>().CreateAsync(account, password, Actor, ct);
            Check(result, n);
            AnsiConsole.MarkupLine($"account [green]{Markup.Escape(n)}[/] added ({Markup.Escape(AccountRules.Describe(account))})");
            if (generated)
            {
                AnsiConsole.MarkupLine("initial password (shown only now; hand it over safely):");
                Console.WriteLine(password);
            }
            return 0;
        }));
        return add;
    }

    private static Command Update()
    {
        var store = new StoreArgs();
        var fields = new FieldOptions(forUpdate: true);
        var name = NameArgument();
        var update = new Command("update", "Change an account's display name, roles, departments, tier, labels, practitioner, break-glass approval, expiry or shift. A list option replaces the whole list ('none' empties it).");
        store.AddTo(update);
        update.Arguments.Add(name);
        fields.AddTo(update);
        update.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var n = ExistingName(parse.GetValue(name)!);
            if (!fields.AnyGiven(parse)) throw new CliException("Nothing to change: give at least one of " + string.Join(", ", fields.Names) + ".");
            // Parsed (and refused) before the store is opened; applied to the stored account after.
            var change = fields.Parse(parse);
            var options = store.Resolve(parse);

            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var result = await sp.GetRequiredService<AccountService>().UpdateAsync(n, change, Actor, ct);
            var after = Check(result, n);
            AnsiConsole.MarkupLine($"account [green]{Markup.Escape(n)}[/] now: {Markup.Escape(AccountRules.Describe(after))}");
            return 0;
        }));
        return update;
    }

    private static Command List()
    {
        var store = new StoreArgs();
        var json = new Option<bool>("--json") { Description = "Print JSON: name, display, roles, tier, departments, treats, practitionerId, breakGlass, disabled, expires, shift, mfaEnrolled." };
        var list = new Command("list", "List accounts.");
        store.AddTo(list);
        list.Options.Add(json);
        list.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            await using var sp = await StoreArgs.OpenAsync(store.Resolve(parse), ct);
            var accounts = await sp.GetRequiredService<AccountService>().ListAsync(ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(accounts.Select(a => new
                {
                    name = a.Name,
                    display = a.Display,
                    roles = a.Roles,
                    tier = a.Tier,
                    departments = a.Departments,
                    treats = a.Treats,
                    practitionerId = a.PractitionerId,
                    breakGlass = a.BreakGlassApproved,
                    disabled = a.Disabled,
                    expires = a.Expires?.ToString("O", CultureInfo.InvariantCulture),
                    shift = a.ShiftStartHour is { } s ? $"{s}-{a.ShiftEndHour}" : null,
                    mfaEnrolled = a.MfaEnrolled,
                })));
                return 0;
            }
            var table = new Table().AddColumns("name", "display", "roles", "tier", "departments", "treats", "break-glass", "disabled", "MFA");
            foreach (var a in accounts)
            {
                table.AddRow(Markup.Escape(a.Name), Markup.Escape(a.Display), Markup.Escape(string.Join(", ", a.Roles)), a.Tier.ToString(CultureInfo.InvariantCulture),
                    Markup.Escape(string.Join(", ", a.Departments)), Markup.Escape(string.Join(", ", a.Treats)), a.BreakGlassApproved ? "yes" : "no",
                    a.Disabled ? "yes" : "no", a.MfaEnrolled ? "enrolled" : "not yet");
            }
            AnsiConsole.Write(table);
            return 0;
        }));
        return list;
    }

    private static Command SetPassword()
    {
        var store = new StoreArgs();
        var name = NameArgument();
        var passwordStdin = PasswordStdinOption("Read the new password from standard input (required: a password never goes on the command line).");
        var set = new Command("set-password", "Set an account's password (an administrator's reset).");
        store.AddTo(set);
        set.Arguments.Add(name);
        set.Options.Add(passwordStdin);
        set.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var n = ExistingName(parse.GetValue(name)!);
            if (!parse.GetValue(passwordStdin)) throw new CliException("Give the password on standard input with --password-stdin.");
            var password = ReadPassword();
            // Length, characters and the common list are checked now; the account's own names once it is read.
            if (PasswordPolicy.Check(password, "", "") is { } weak) throw new CliException(weak.Message);
            await using var sp = await StoreArgs.OpenAsync(store.Resolve(parse), ct);
            Check(await sp.GetRequiredService<AccountService>().SetPasswordAsync(n, password, Actor, ct), n);
            AnsiConsole.MarkupLine($"password of [green]{Markup.Escape(n)}[/] set");
            return 0;
        }));
        return set;
    }

    private static Command Simple(string verb, string description, Func<AccountService, string, string, CancellationToken, Task<AccountResult>> act, string done)
    {
        var store = new StoreArgs();
        var name = NameArgument();
        var command = new Command(verb, description);
        store.AddTo(command);
        command.Arguments.Add(name);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var n = ExistingName(parse.GetValue(name)!);
            await using var sp = await StoreArgs.OpenAsync(store.Resolve(parse), ct);
            Check(await act(sp.GetRequiredService<AccountService>(), n, Actor, ct), n);
            AnsiConsole.MarkupLine($"account [green]{Markup.Escape(n)}[/] {done}");
            return 0;
        }));
        return command;
    }

    private static string Actor => "cli:" + Environment.UserName;

    private static Argument<string> NameArgument() => new("name") { Description = "The account's user name, e.g. dr.onco." };

    private static Option<bool> PasswordStdinOption(string description) => new("--password-stdin") { Description = description };

    private static string ExistingName(string name) =>
        AccountRules.IsValidName(name) ? name : throw new CliException(AccountRules.NameRule);

    private static void Refuse(IReadOnlyList<string> problems)
    {
        if (problems.Count > 0) throw new CliException(string.Join(Environment.NewLine, problems));
    }

    private static Account Check(AccountResult result, string name) => result switch
    {
        AccountResult.Done done => done.Account,
        AccountResult.NotFound => throw new CliException($"There is no account '{name}'."),
        AccountResult.AlreadyExists => throw new CliException($"The account '{name}' already exists; change it with 'wardline users update'."),
        AccountResult.Invalid invalid => throw new CliException(string.Join(Environment.NewLine, invalid.Problems)),
        AccountResult.WeakPassword weak => throw new CliException(weak.Rejection.Message),
        AccountResult.Conflict => throw new CliException($"The account '{name}' was changed by someone else meanwhile; nothing was written. Try again."),
        _ => throw new InvalidOperationException("unexpected account result"),
    };

    /// <summary>The password is standard input up to its end (or one line from a terminal), without the final line break.</summary>
    private static string ReadPassword()
    {
        var text = Console.IsInputRedirected ? Console.In.ReadToEnd() : Console.ReadLine() ?? "";
        if (text.EndsWith('\n')) text = text[..^1];
        if (text.EndsWith('\r')) text = text[..^1];
        return text.Length > 0 ? text : throw new CliException("No password on standard input.");
    }

    /// <summary>Four groups of five from 31 unambiguous characters: about 99 bits, easy to read out and type.</summary>
    private static string Generate(Account account)
    {
        while (true)
        {
            var groups = Enumerable.Range(0, 4).Select(_ => RandomNumberGenerator.GetString(GeneratedAlphabet, 5));
            var password = string.Join('-', groups);
            if (PasswordPolicy.Check(password, account.Name, account.Display) is null) return password;
        }
    }

    /// <summary>The account fields as options, shared by add and update (update also takes 'none'/'never' to clear).</summary>
    private sealed class FieldOptions
    {
        private readonly bool _forUpdate;
        private readonly Option<string?> _display = new("--display") { Description = "Display name (default for a new account: the user name)." };
        private readonly Option<string[]> _roles = new("--role") { Description = "A role of the policy (physician, nurse, billing_clerk, ...); repeat or separate with commas." };
        private readonly Option<string[]> _departments = new("--department") { Description = "A department code, e.g. cardiology; repeat or separate with commas." };
        private readonly Option<string?> _tier = new("--tier") { Description = $"Tier {AccountRules.MinTier}-{AccountRules.MaxTier} (1 is the most trusted; default {AccountRules.DefaultTier})." };
        private readonly Option<string[]> _treats = new("--treats") { Description = "A sensitivity label the person treats, e.g. PSY; repeat or separate with commas." };
        private readonly Option<string?> _practitioner = new("--practitioner") { Description = "Logical id of the person's FHIR Practitioner." };
        private readonly Option<string?> _expires = new("--expires") { Description = "When the account stops working: a date (the end of that day, UTC) or an ISO 8601 time with offset." };
        private readonly Option<string?> _shift = new("--shift") { Description = "Working hours START-END in the institution's time zone, e.g. 7-19 or 22-6." };
        private readonly Option<bool> _breakGlassFlag = new("--break-glass") { Description = "Allow the person to declare break-glass." };
        private readonly Option<string?> _breakGlassChoice = new("--break-glass") { Description = "yes or no: whether the person may declare break-glass." };

        public FieldOptions(bool forUpdate)
        {
            _forUpdate = forUpdate;
            if (forUpdate)
            {
                _roles.Description += " 'none' removes all.";
                _departments.Description += " 'none' removes all.";
                _treats.Description += " 'none' removes all.";
                _practitioner.Description += " 'none' removes it.";
                _expires.Description += " 'never' removes it.";
                _shift.Description += " 'none' removes it.";
            }
        }

        private Option[] All => [_display, _roles, _departments, _tier, _treats, _practitioner, _forUpdate ? _breakGlassChoice : _breakGlassFlag, _expires, _shift];

        public IEnumerable<string> Names => All.Select(o => o.Name);

        public void AddTo(Command command)
        {
            foreach (var option in All) command.Options.Add(option);
        }

        public bool AnyGiven(ParseResult parse) => All.Any(o => parse.GetResult(o) is { Implicit: false });

        public Account Apply(ParseResult parse, Account account) => Parse(parse)(account);

        /// <summary>Checks every given value now; returns the change to apply to an account.</summary>
        public Func<Account, Account> Parse(ParseResult parse)
        {
            var changes = new List<Func<Account, Account>>();
            if (parse.GetValue(_display) is { } display)
            {
                if (string.IsNullOrWhiteSpace(display)) throw new CliException("--display must not be empty.");
                changes.Add(a => a with { Display = display });
            }
            if (ListValue(parse, _roles) is { } roles) changes.Add(a => a with { Roles = roles });
            if (ListValue(parse, _departments) is { } departments) changes.Add(a => a with { Departments = departments });
            if (ListValue(parse, _treats) is { } treats) changes.Add(a => a with { Treats = treats });
            if (parse.GetValue(_tier) is { } t)
            {
                var tier = int.TryParse(t, NumberStyles.None, CultureInfo.InvariantCulture, out var v) && v is >= AccountRules.MinTier and <= AccountRules.MaxTier
                    ? v : throw new CliException($"--tier must be a number from {AccountRules.MinTier} to {AccountRules.MaxTier}.");
                changes.Add(a => a with { Tier = tier });
            }
            if (parse.GetValue(_practitioner) is { } p)
            {
                var id = Clears(p, "none") ? null : p;
                changes.Add(a => a with { PractitionerId = id });
            }
            if (parse.GetValue(_expires) is { } e)
            {
                DateTimeOffset? at = Clears(e, "never") ? null : ParseExpiry(e);
                changes.Add(a => a with { Expires = at });
            }
            if (parse.GetValue(_shift) is { } s)
            {
                (int Start, int End)? hours = Clears(s, "none") ? null : ParseShift(s);
                changes.Add(a => a with { ShiftStartHour = hours?.Start, ShiftEndHour = hours?.End });
            }
            if (!_forUpdate && parse.GetValue(_breakGlassFlag)) changes.Add(a => a with { BreakGlassApproved = true });
            if (_forUpdate && parse.GetValue(_breakGlassChoice) is { } choice)
            {
                var approved = choice switch
                {
                    "yes" => true,
                    "no" => false,
                    _ => throw new CliException("--break-glass takes yes or no."),
                };
                changes.Add(a => a with { BreakGlassApproved = approved });
            }
            return a => changes.Aggregate(a, (current, change) => change(current));
        }

        private IReadOnlyList<string>? ListValue(ParseResult parse, Option<string[]> option)
        {
            if (parse.GetResult(option) is not { Implicit: false }) return null;
            var items = (parse.GetValue(option) ?? []).SelectMany(v => v.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries)).ToList();
            if (items is ["none"] && Clears("none", "none")) return [];
            return items.Count > 0 ? items : throw new CliException($"{option.Name} needs a value.");
        }

        /// <summary>Whether <paramref name="value"/> is the word that clears a field; that word is refused by add.</summary>
        private bool Clears(string value, string word) =>
            value == word && (_forUpdate ? true : throw new CliException($"'{word}' clears a field, which only users update does."));

        private static DateTimeOffset ParseExpiry(string text)
        {
            if (DateOnly.TryParseExact(text, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
            {
                // The account works through the day given, to the next midnight (UTC): the calendar's last day has none.
                if (day == DateOnly.MaxValue) throw new CliException("--expires takes a date from today to 9999-12-30 (or an ISO 8601 time); for no expiry leave it out, or give users update 'never'.");
                return new DateTimeOffset(day.AddDays(1).ToDateTime(TimeOnly.MinValue), TimeSpan.Zero);
            }
            if (text.Contains('T', StringComparison.Ordinal)
                && DateTimeOffset.TryParse(text, CultureInfo.InvariantCulture, DateTimeStyles.AssumeUniversal | DateTimeStyles.AdjustToUniversal, out var at))
                return at;
            throw new CliException("--expires takes a date (2027-01-31) or an ISO 8601 time (2027-01-31T18:00:00+01:00).");
        }

        private static (int Start, int End) ParseShift(string text)
        {
            var parts = text.Split('-');
            if (parts.Length == 2
                && int.TryParse(parts[0], NumberStyles.None, CultureInfo.InvariantCulture, out var start)
                && int.TryParse(parts[1], NumberStyles.None, CultureInfo.InvariantCulture, out var end)
                && start is >= 0 and <= 23 && end is >= 0 and <= 23 && start != end)
                return (start, end);
            throw new CliException("--shift takes START-END hours 0-23 that differ, e.g. 7-19 or 22-6.");
        }
    }
}
