using System.CommandLine;
using System.Text.Json;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Wardline.Server.Modules.Access;

namespace Wardline.Cli;

internal static class UsersCommand
{
    public static Command Create()
    {
        var command = new Command("users", "Manage the store's users (interim accounts for bearer tokens; roles, MFA and departments come with the access-control module).");

        var addStore = new StoreArgs();
        var name = new Argument<string>("name") { Description = "User name, e.g. dr.onco." };
        var display = new Option<string?>("--display") { Description = "Display name." };
        var add = new Command("add", "Add a user (or update its display name).");
        addStore.AddTo(add);
        add.Arguments.Add(name);
        add.Options.Add(display);
        add.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var n = parse.GetValue(name)!;
            if (n.Length is < 1 or > 64 || n.Any(c => !(char.IsAsciiLetterOrDigit(c) || c is '.' or '-' or '_' or '@')))
                throw new CliException("A user name is 1-64 characters of letters, digits and . - _ @.");
            await using var sp = await StoreArgs.OpenAsync(addStore.Resolve(parse), ct);
            await sp.GetRequiredService<AccessTokens>().AddUserAsync(n, parse.GetValue(display) ?? n, ct);
            AnsiConsole.MarkupLine($"user [green]{Markup.Escape(n)}[/] added");
            return 0;
        }));

        var listStore = new StoreArgs();
        var json = new Option<bool>("--json") { Description = "Print JSON." };
        var list = new Command("list", "List users.");
        listStore.AddTo(list);
        list.Options.Add(json);
        list.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            await using var sp = await StoreArgs.OpenAsync(listStore.Resolve(parse), ct);
            var users = await sp.GetRequiredService<AccessTokens>().ListUsersAsync(ct);
            if (parse.GetValue(json))
            {
                Console.WriteLine(JsonSerializer.Serialize(users.Select(u => new { name = u.Name, display = u.Display, disabled = u.Disabled })));
                return 0;
            }
            var table = new Table().AddColumns("name", "display", "disabled");
            foreach (var u in users) table.AddRow(Markup.Escape(u.Name), Markup.Escape(u.Display), u.Disabled ? "yes" : "no");
            AnsiConsole.Write(table);
            return 0;
        }));

        command.Subcommands.Add(add);
        command.Subcommands.Add(list);
        return command;
    }
}
