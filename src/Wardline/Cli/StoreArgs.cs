using System.CommandLine;
using Microsoft.Extensions.Configuration;
using Microsoft.Extensions.DependencyInjection;
using Microsoft.Extensions.Logging;
using Microsoft.Extensions.Options;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Backup;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Cli;

/// <summary>The options every store command shares: --data, --db (with --keyring and --witness) and --config.</summary>
internal sealed class StoreArgs
{
    public Option<string?> Data { get; } = new("--data") { Description = "Folder of the embedded (SQLite) store; created if missing." };
    public Option<string?> Db { get; } = new("--db") { Description = "PostgreSQL connection string (Host=...;Database=...;Username=...)." };
    public Option<string?> Keyring { get; } = new("--keyring") { Description = "Key file (default: keyring.json in the --data folder; required with --db)." };
    public Option<FileInfo?> Config { get; } = new("--config") { Description = "JSON configuration file with a \"Wardline\" section." };
    public Option<string?> Witness { get; } = new("--witness") { Description = "Witness of the signed tree heads: a folder, or a blob container or bucket (azure://, s3://, file:///) (default: Wardline:Ledger:WitnessPath or WitnessTarget, else witness in the --data folder; one is required with --db)." };

    public void AddTo(Command command)
    {
        command.Options.Add(Data);
        command.Options.Add(Db);
        command.Options.Add(Keyring);
        command.Options.Add(Config);
        command.Options.Add(Witness);
    }

    /// <summary>Builds the options from the arguments, the config file and WARDLINE__* environment variables.</summary>
    public WardlineOptions Resolve(ParseResult parse, string? defaultData = null)
    {
        var builder = new ConfigurationBuilder();
        if (parse.GetValue(Config) is { } file)
        {
            if (!file.Exists) throw new CliException($"The configuration file {file.FullName} does not exist.");
            builder.AddJsonFile(file.FullName, optional: false);
        }
        builder.AddEnvironmentVariables("WARDLINE__");
        var config = builder.Build();
        var options = new WardlineOptions();
        config.GetSection(WardlineOptions.Section).Bind(options);
        config.Bind(options);
        if (parse.GetValue(Config) is { DirectoryName: { } configDir })
        {
            // Certificate files named in a config file are found next to it, wherever the command is started from.
            options.CertificatePath = RelativeTo(configDir, options.CertificatePath);
            options.CertificateKeyPath = RelativeTo(configDir, options.CertificateKeyPath);
        }
        var data = parse.GetValue(Data);
        var db = parse.GetValue(Db);
        if (data is not null && db is not null) throw new CliException("Give either --data or --db, not both.");
        if (data is not null)
        {
            options.DataDirectory = Path.GetFullPath(data);
            options.PostgresConnectionString = null;
        }
        if (db is not null)
        {
            options.PostgresConnectionString = db;
            options.DataDirectory = null;
        }
        if (parse.GetValue(Keyring) is { } keyring) options.KeyringPath = Path.GetFullPath(keyring);
        if (parse.GetValue(Witness) is { } witness)
        {
            // One witness: the one given here replaces a configured folder or blob container.
            (options.Ledger.WitnessPath, options.Ledger.WitnessTarget) = witness.Contains("://", StringComparison.Ordinal) ? ((string?)null, witness) : (Path.GetFullPath(witness), (string?)null);
        }
        if (options.DataDirectory is null && options.PostgresConnectionString is null && defaultData is not null)
            options.DataDirectory = Path.GetFullPath(defaultData);
        var problems = options.Validate();
        if (problems.Count > 0) throw new CliException(string.Join(Environment.NewLine, problems));
        return options;
    }

    private static string? RelativeTo(string directory, string? path) => path is null ? null : Path.GetFullPath(path, directory);

    /// <summary>
    /// Services for working on the store without the web server; the schema is brought up to date.
    /// The keyring is opened (or created) first, as the server does at start, so every command on a
    /// store creates the key file on first run and fails early, with exit code 3, on a wrong passphrase.
    /// A store that holds a restore not yet proven is refused before that (exit code 2): no command backs it up,
    /// writes to it or makes a keyring beside it; only the restore's own proof opens it (<paramref name="unproven"/>).
    /// </summary>
    public static async Task<ServiceProvider> OpenAsync(WardlineOptions options, CancellationToken ct, bool unproven = false)
    {
        var services = new ServiceCollection();
        services.AddLogging(l => l.AddSimpleConsole().SetMinimumLevel(LogLevel.Warning));
        services.AddSingleton(Options.Create(options));
        services.AddStores(options);
        var sp = services.BuildServiceProvider();
        try
        {
            var dialect = sp.GetRequiredService<SqlDialect>();
            if (!unproven && await RestoreMarker.FindAsync(dialect, ct) is { } pending)
                throw new BackupRefusedException(RestoreMarker.Describe(pending, dialect));
            _ = sp.GetRequiredService<Wardline.Server.Modules.Records.RecordKeys>().ActiveKekId;
            await sp.GetRequiredService<RecordStore>().MigrateAsync(ct);
        }
        catch
        {
            await sp.DisposeAsync();
            throw;
        }
        return sp;
    }
}

/// <summary>An error the user can fix; printed without a stack trace, exit code 2.</summary>
internal sealed class CliException(string message) : Exception(message);
