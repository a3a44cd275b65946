using Spectre.Console;
using Wardline.Crypto;

namespace Wardline.Cli;

internal static class CommandRunner
{
    /// <summary>Runs a command body, turning expected failures into a clear message and an exit code.</summary>
    public static async Task<int> RunAsync(Func<Task<int>> body)
    {
        if (Console.IsOutputRedirected)
        {
            // Into a log or a pipe, Spectre would wrap at 80 columns and cut URLs, file names and
            // error messages in two; a line per message is what grep and log collectors expect.
            AnsiConsole.Profile.Width = 1024;
        }
        try
        {
            return await body();
        }
        catch (CliException ex)
        {
            Error("error", ex.Message);
            return 2;
        }
        catch (Wardline.Server.Modules.Backup.BackupRefusedException ex)
        {
            Error("error", ex.Message);
            return 2;
        }
        catch (Wardline.Backup.BackupStoreException ex)
        {
            Error($"backup target error ({ex.Kind})", ex.Message);
            return 5;
        }
        catch (Wardline.Backup.Format.BackupFormatException ex)
        {
            Error("backup error", ex.Message);
            return 6;
        }
        catch (KeyringException ex)
        {
            Error("keyring error", ex.Message);
            return 3;
        }
        catch (Npgsql.NpgsqlException ex)
        {
            Error("database error", ex.Message);
            return 4;
        }
        catch (System.Data.Common.DbException ex)
        {
            // SQLite's errors (a full disk, a locked or damaged file, rows that do not fit) are as expected as PostgreSQL's.
            Error("database error", ex.Message);
            return 4;
        }
        catch (OperationCanceledException)
        {
            AnsiConsole.MarkupLine("[yellow]cancelled[/]");
            return 130;
        }
    }

    /// <summary>
    /// A label in red, then the message as plain text: through markup, Spectre would turn ":ledger:" in a setting's name
    /// (Wardline:Ledger:...) into an emoji, and an escape for brackets does not stop that.
    /// </summary>
    private static void Error(string label, string message)
    {
        AnsiConsole.Markup($"[red]{Markup.Escape(label)}:[/] ");
        AnsiConsole.Write(new Text(message));
        AnsiConsole.WriteLine();
    }
}
