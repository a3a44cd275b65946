using System.CommandLine;
using Wardline.Cli;

var root = new RootCommand(
    "Wardline: the protected record store and security programme of a healthcare institution.\n" +
    "Commands that work on a store take --data DIR (embedded SQLite), --db CONNSTRING (PostgreSQL, with --keyring FILE) or --config FILE.");
root.Subcommands.Add(ServeCommand.Create());
root.Subcommands.Add(DemoCommand.Create());
root.Subcommands.Add(ImportCommand.Create());
root.Subcommands.Add(KeysCommand.Create());
root.Subcommands.Add(UsersCommand.Create());
root.Subcommands.Add(TokenCommand.Create());
root.Subcommands.Add(ClientsCommand.Create());
root.Subcommands.Add(AccessCommand.Create());
root.Subcommands.Add(PolicyCommand.Create());
root.Subcommands.Add(LedgerCommand.Create());
root.Subcommands.Add(RecordsCommand.Create());
root.Subcommands.Add(BackupCommand.Create());
root.Subcommands.Add(BackupCommand.Restore());
root.Subcommands.Add(AlertsCommand.Create());
root.Subcommands.Add(MonitorCommand.Create());
return await root.Parse(args).InvokeAsync();
