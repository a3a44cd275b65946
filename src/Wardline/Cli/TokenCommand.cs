using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Wardline.Server.Modules.Access;
using Wardline.Server.Modules.Access.OAuth;

namespace Wardline.Cli;

/// <summary>
/// `wardline token`: an operator-issued access token, the same signed JWT the OAuth server issues (same
/// issuer, audience and key, the key opened with the store's keyring), optionally narrowed to SMART scopes.
/// </summary>
internal static class TokenCommand
{
    public static Command Create()
    {
        var store = new StoreArgs();
        var user = new Option<string>("--user") { Description = "The user the token is for.", Required = true };
        var scope = new Option<string?>("--scope") { Description = "Scopes that narrow the token, space-separated: SMART resource scopes (e.g. \"user/Observation.rs\") and Wardline's API scopes (wardline/monitor, wardline/backup, wardline/ledger); default: all of the user's permissions." };
        var minutes = new Option<int>("--minutes") { Description = "Lifetime in minutes (1 to 43200).", DefaultValueFactory = _ => 60 };
        var command = new Command("token", "Print a bearer token (a signed JWT) for a local user (an operator command: it needs the store and its keyring).");
        store.AddTo(command);
        command.Options.Add(user);
        command.Options.Add(scope);
        command.Options.Add(minutes);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var m = parse.GetValue(minutes);
            if (m is < 1 or > 43200) throw new CliException("--minutes must be from 1 to 43200.");
            var s = parse.GetValue(scope);
            if (s is not null)
            {
                var items = s.Split(' ', StringSplitOptions.RemoveEmptyEntries);
                if (items.Length == 0 || items.Any(i => !OAuthScopes.IsValid(i) || i == OAuthScopes.LaunchPatient))
                    throw new CliException("--scope takes SMART resource scopes such as user/Observation.rs or user/*.cruds, and wardline/monitor, wardline/backup or wardline/ledger, separated by spaces.");
                s = string.Join(' ', items);
            }
            await using var sp = await StoreArgs.OpenAsync(store.Resolve(parse), ct);
            var token = await sp.GetRequiredService<AccessTokens>().IssueAsync(parse.GetValue(user)!, TimeSpan.FromMinutes(m), s, ct)
                ?? throw new CliException($"There is no enabled user '{parse.GetValue(user)}'. Add one with 'wardline users add'.");
            Console.WriteLine(token);
            return 0;
        }));
        return command;
    }
}
