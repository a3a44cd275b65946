using System.CommandLine;
using Spectre.Console;
using Wardline.Server.Modules.Access;

namespace Wardline.Cli;

internal static class PolicyCommand
{
    public static Command Create()
    {
        var command = new Command("policy", "Work with access policy files.");
        var file = new Argument<FileInfo>("file") { Description = "The policy file (YAML, docs/formats/policy.md)." };
        var check = new Command("check", "Check a policy file before putting it in force: prints its rules, or the file, line and column of what is wrong (exit code 2).");
        check.Arguments.Add(file);
        check.SetAction((parse, ct) => CommandRunner.RunAsync(() =>
        {
            var f = parse.GetValue(file)!;
            if (!f.Exists) throw new CliException($"The file {f.FullName} does not exist.");
            Wardline.Policy.Policy policy;
            try
            {
                policy = Wardline.Policy.Policy.Load(f.FullName);
            }
            catch (Wardline.Policy.PolicyException ex)
            {
                throw new CliException(ex.Message);
            }
            AnsiConsole.MarkupLine($"[green]valid[/]: {policy.Rules.Count} rules, {policy.Roles.Count} roles, sha256 {policy.Digest}");
            return Task.FromResult(0);
        }));
        var show = new Command("default", "Print the built-in hospital policy (a starting point for an institution's own file).");
        show.SetAction((_, _) => CommandRunner.RunAsync(() =>
        {
            Console.Write(PolicyHolder.BuiltInText());
            return Task.FromResult(0);
        }));
        command.Subcommands.Add(check);
        command.Subcommands.Add(show);
        return command;
    }
}
