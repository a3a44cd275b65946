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
            AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(ex.Message)}");
            return 2;
        }
        catch (Wardline.Server.Modules.Backup.BackupRefusedException ex)
        {
            AnsiConsole.MarkupLine($"[red]error:[/] {Markup.Escape(ex.Message)}");
            return 2;
        }
        catch (Wardline.Backup.BackupStoreException ex)
        {
            AnsiConsole.MarkupLine($"[red]backup target error ({ex.Kind}):[/] {Markup.Escape(ex.Message)}");
            return 5;
        }
        catch (Wardline.Backup.Format.BackupFormatException ex)
        {
            AnsiConsole.MarkupLine($"[red]backup error:[/] {Markup.Escape(ex.Message)}");
            return 6;
        }
        catch (KeyringException ex)
        {
            AnsiConsole.MarkupLine($"[red]keyring error:[/] {Markup.Escape(ex.Message)}");
            return 3;
        }
        catch (Npgsql.NpgsqlException ex)
        {
            AnsiConsole.MarkupLine($"[red]database error:[/] {Markup.Escape(ex.Message)}");
            return 4;
        }
        catch (System.Data.Common.DbException ex)
        {
            // SQLite's errors (a full disk, a locked or damaged file, rows that do not fit) are as expected as PostgreSQL's.
            AnsiConsole.MarkupLine($"[red]database error:[/] {Markup.Escape(ex.Message)}");
            return 4;
        }
        catch (OperationCanceledException)
        {
            AnsiConsole.MarkupLine("[yellow]cancelled[/]");
            return 130;
        }
    }
}
