using System.CommandLine;
using Microsoft.Extensions.DependencyInjection;
using Wardline.Server.Modules.Access;

namespace Wardline.Cli;

internal static class TokenCommand
{
    public static Command Create()
    {
        var store = new StoreArgs();
        var user = new Option<string>("--user") { Description = "The user the token is for.", Required = true };
        var minutes = new Option<int>("--minutes") { Description = "Lifetime in minutes (1 to 43200).", DefaultValueFactory = _ => 60 };
        var command = new Command("token", "Print a bearer token for a local user (an operator command: it needs the store and its keyring).");
        store.AddTo(command);
        command.Options.Add(user);
        command.Options.Add(minutes);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var m = parse.GetValue(minutes);
            if (m is < 1 or > 43200) throw new CliException("--minutes must be from 1 to 43200.");
            await using var sp = await StoreArgs.OpenAsync(store.Resolve(parse), ct);
            var token = await sp.GetRequiredService<AccessTokens>().IssueAsync(parse.GetValue(user)!, TimeSpan.FromMinutes(m), ct)
                ?? throw new CliException($"There is no enabled user '{parse.GetValue(user)}'. Add one with 'wardline users add'.");
            Console.WriteLine(token);
            return 0;
        }));
        return command;
    }
}
