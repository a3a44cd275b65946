using System.CommandLine;
using System.CommandLine.Help;
using Wardline.Cli;

namespace Wardline.Server.Tests.EndToEnd;

/// <summary>`wardline --help` and every command's `--help` are complete: checked against the commands' own definitions.</summary>
public sealed class CliHelpTests
{
    private static readonly Command[] TopLevel =
    [
        ServeCommand.Create(), DemoCommand.Create(), ImportCommand.Create(), KeysCommand.Create(), UsersCommand.Create(), TokenCommand.Create(),
        AlertsCommand.Create(), MonitorCommand.Create(),
    ];

    [Fact]
    public async Task Wardline_help_exits_0_and_lists_every_command()
    {
        var help = await WardlineCli.RunAsync(["--help"]);

        Assert.True(help.ExitCode == 0, help.Output);
        foreach (var command in TopLevel)
        {
            Assert.Contains(command.Name, help.Output, StringComparison.Ordinal);
        }
        Assert.Contains("--data", help.Flat, StringComparison.Ordinal);
        Assert.Contains("--db", help.Flat, StringComparison.Ordinal);
        Assert.Contains("--config", help.Flat, StringComparison.Ordinal);
    }

    [Fact]
    public async Task Each_commands_help_exits_0_and_mentions_every_option_argument_and_subcommand()
    {
        var commands = TopLevel.SelectMany(c => Walk([], c)).ToList();
        Assert.True(commands.Count >= 9, "serve, demo, import, keys, keys rotate, users, users add, users list, token");

        var runs = await Task.WhenAll(commands.Select(async c => (c.Path, c.Command, Help: await WardlineCli.RunAsync([.. c.Path, "--help"]))));

        foreach (var (path, command, help) in runs)
        {
            var name = string.Join(' ', path);
            Assert.True(help.ExitCode == 0, $"wardline {name} --help: {help.Output}");
            Assert.False(string.IsNullOrWhiteSpace(command.Description), $"wardline {name} has no description");
            foreach (var option in command.Options.Where(o => o is not (HelpOption or VersionOption)))
            {
                Assert.False(string.IsNullOrWhiteSpace(option.Description), $"wardline {name} {option.Name} has no description");
                Assert.True(help.Output.Contains(option.Name, StringComparison.Ordinal), $"wardline {name} --help does not mention {option.Name}");
            }
            foreach (var argument in command.Arguments)
            {
                Assert.True(help.Output.Contains(argument.Name, StringComparison.Ordinal), $"wardline {name} --help does not mention <{argument.Name}>");
            }
            foreach (var sub in command.Subcommands)
            {
                Assert.True(help.Output.Contains(sub.Name, StringComparison.Ordinal), $"wardline {name} --help does not mention {sub.Name}");
            }
        }
    }

    private static IEnumerable<(string[] Path, Command Command)> Walk(string[] parent, Command command)
    {
        string[] path = [.. parent, command.Name];
        yield return (path, command);
        foreach (var sub in command.Subcommands)
        {
            foreach (var inner in Walk(path, sub)) yield return inner;
        }
    }
}
