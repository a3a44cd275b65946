using System.CommandLine;
using System.Globalization;
using System.Text.RegularExpressions;
using Microsoft.Extensions.DependencyInjection;
using Spectre.Console;
using Wardline.Monitoring;
using Wardline.Server.Hosting;
using Wardline.Server.Modules.Monitoring;

namespace Wardline.Cli;

/// <summary>
/// <c>wardline monitor replay|status|check-config</c>: re-examining a period of the ledger after a rule
/// change, where the streaming detector stands, and checking a monitoring configuration file before it is deployed.
/// </summary>
internal static class MonitorCommand
{
    public static Command Create()
    {
        var command = new Command("monitor", "Privacy and threat monitoring: replay a period of the ledger through the detections, see where streaming detection stands, check a configuration file.");
        command.Subcommands.Add(Replay());
        command.Subcommands.Add(Status());
        command.Subcommands.Add(CheckConfig());
        return command;
    }

    private static Command Replay()
    {
        var store = new StoreArgs();
        var from = new Option<string>("--from") { Description = "Start of the period: yyyy-MM-dd (local midnight in Wardline:Access:TimeZone) or an ISO 8601 instant such as 2026-11-01T08:00:00Z.", Required = true };
        var to = new Option<string>("--to") { Description = "End of the period, exclusive: yyyy-MM-dd (local midnight) or an ISO 8601 instant. At most 366 days after --from." };
        to.Required = true;
        var command = new Command("replay",
            "Examine the ledger entries of a period with the current configuration (after a rule change, or over history the streaming detector never saw). " +
            "Baselines are learned from the days before the period first; findings already raised are not raised again.");
        store.AddTo(command);
        command.Options.Add(from);
        command.Options.Add(to);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var options = store.Resolve(parse);
            var zone = MonitorCli.Zone(options);
            var start = MonitorCli.Instant(parse.GetValue(from), "--from", zone);
            var end = MonitorCli.Instant(parse.GetValue(to), "--to", zone);
            MonitorCli.CheckPeriod(start, end);
            MonitorConfig config;
            try
            {
                config = MonitorCli.LoadConfig(options);
            }
            catch (MonitorConfigException ex)
            {
                throw new CliException($"The monitoring configuration has a problem, so nothing was replayed: {ex.Message}");
            }
            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var replay = sp.GetRequiredService<MonitorReplay>();
            ReplayResult result;
            try
            {
                result = await MonitorCli.WithStatusAsync($"replaying {MonitorCli.Show(start)} .. {MonitorCli.Show(end)}",
                    () => replay.RunAsync(start, end, MonitorCli.Actor, ct));
            }
            catch (MonitorReplayRefusedException ex)
            {
                throw new CliException(ex.Message);
            }
            AnsiConsole.MarkupLine($"replayed {MonitorCli.Show(start)} .. {MonitorCli.Show(end)} with configuration {Markup.Escape(config.Fingerprint)}");
            AnsiConsole.MarkupLine($"entries warmed: {result.EntriesWarmed}; examined: {result.EntriesExamined}");
            AnsiConsole.MarkupLine($"findings: {result.Findings}; new alerts: [green]{result.NewAlerts}[/]; grouped into existing alerts: {result.GroupedIntoExisting}; already known: {result.AlreadyKnown}");
            AnsiConsole.MarkupLine($"elapsed: {result.Elapsed.TotalSeconds:0.00} s");
            return 0;
        }));
        return command;
    }

    private static Command Status()
    {
        var store = new StoreArgs();
        var command = new Command("status", "Where streaming detection stands: its cursor and lag behind the ledger, the configuration in force, active detections and open alerts by severity.");
        store.AddTo(command);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var options = store.Resolve(parse);
            // The configuration first: a file with a problem is reported (as the server would keep its previous one).
            MonitorConfig? config = null;
            string? configProblem = null;
            try
            {
                config = MonitorCli.LoadConfig(options);
            }
            catch (MonitorConfigException ex)
            {
                configProblem = ex.Message;
            }
            await using var sp = await StoreArgs.OpenAsync(options, ct);
            var facts = await MonitorCli.ReadStatusAsync(sp, ct);
            AnsiConsole.MarkupLine($"streaming: {(options.Monitoring.Enabled ? "[green]enabled[/]" : "[yellow]disabled[/] (alerts come only from replays)")}");
            if (facts.Cursor is { } cursor)
            {
                var lag = Math.Max(0, facts.LedgerSize - 1 - cursor);
                AnsiConsole.MarkupLine($"cursor: entry {cursor} (updated {MonitorCli.Show(facts.CursorUpdated!.Value)}); ledger size: {facts.LedgerSize}; lag: {(lag == 0 ? "[green]0[/]" : $"[yellow]{lag}[/]")} entries");
            }
            else
            {
                AnsiConsole.MarkupLine($"cursor: [yellow]none[/] (the streaming detector has not run on this store); ledger size: {facts.LedgerSize}");
            }
            var path = options.Monitoring.ConfigPath is { } p ? Path.GetFullPath(p) : "built in (monitoring.yaml)";
            if (config is not null)
            {
                AnsiConsole.MarkupLine($"config: {Markup.Escape(path)}, fingerprint {config.Fingerprint}");
                if (facts.StreamConfig is { } used && used != config.Fingerprint)
                    AnsiConsole.MarkupLine($"[yellow]the streaming detector last ran with configuration {Markup.Escape(used)}[/]: a server not yet restarted or reloaded, or another configuration file; replay the period since the change if its rules differ");
                var enabled = config.Detections.Values.Where(d => d.Enabled).OrderBy(d => d.Id, StringComparer.Ordinal).ToList();
                AnsiConsole.MarkupLine($"active detections ({enabled.Count} of {config.Detections.Count}): {Markup.Escape(string.Join(", ", enabled.Select(d => $"{d.Id} ({MonitorCli.Name(d.Severity)})")))}");
            }
            else
            {
                AnsiConsole.MarkupLine($"config: {Markup.Escape(path)} [red]has a problem[/]: {Markup.Escape(configProblem!)}");
            }
            var open = new Table().AddColumns("severity", "open alerts");
            foreach (var s in new[] { Severity.Critical, Severity.High, Severity.Medium, Severity.Low })
                open.AddRow(MonitorCli.Name(s), facts.OpenBySeverity.GetValueOrDefault(s).ToString(CultureInfo.InvariantCulture));
            AnsiConsole.Write(open);
            AnsiConsole.MarkupLine($"open alerts: {facts.OpenBySeverity.Values.Sum()}");
            return configProblem is null ? 0 : 2;
        }));
        return command;
    }

    private static Command CheckConfig()
    {
        var file = new Argument<FileInfo>("file") { Description = "The monitoring configuration file (YAML, docs/operations/monitoring.md)." };
        var command = new Command("check-config", "Check a monitoring configuration file before deploying it: prints the detections it enables, or the file, line and column of what is wrong (exit code 2).");
        command.Arguments.Add(file);
        command.SetAction((parse, ct) => CommandRunner.RunAsync(async () =>
        {
            var f = parse.GetValue(file)!;
            if (!f.Exists) throw new CliException($"The file {f.FullName} does not exist.");
            var text = await File.ReadAllTextAsync(f.FullName, ct);
            MonitorConfig config;
            try
            {
                config = MonitorConfig.Parse(text, f.Name);
            }
            catch (MonitorConfigException ex)
            {
                throw new CliException(ex.Message);
            }
            var enabled = config.Detections.Values.Count(d => d.Enabled);
            AnsiConsole.MarkupLine($"[green]ok[/]: {enabled} detections enabled (of {config.Detections.Count}), {config.Explanations.Count} explanations, grouping window {config.GroupWindowMinutes} min, fingerprint {config.Fingerprint}");
            var disabled = config.Detections.Values.Where(d => !d.Enabled).Select(d => d.Id).Order(StringComparer.Ordinal).ToList();
            if (disabled.Count > 0) AnsiConsole.MarkupLine($"switched off: {Markup.Escape(string.Join(", ", disabled))}");
            return 0;
        }));
        return command;
    }
}

/// <summary>What the alerts and monitor commands share: opening the store with monitoring, dates, names, the actor.</summary>
internal static partial class MonitorCli
{
    /// <summary>Who a change made from the command line is recorded as: the OS user, as the users command records it.</summary>
    public static string Actor => "cli:" + Environment.UserName;

    /// <summary>The configuration the server would load (Wardline:Monitoring:ConfigPath, or the built-in one); <see cref="MonitorConfigException"/> names what is wrong.</summary>
    public static MonitorConfig LoadConfig(WardlineOptions options)
    {
        if (options.Monitoring.ConfigPath is not { } path) return MonitorConfig.Default;
        var full = Path.GetFullPath(path);
        if (!File.Exists(full)) throw new MonitorConfigException($"{full}: the file (Wardline:Monitoring:ConfigPath) does not exist");
        return MonitorConfig.Parse(File.ReadAllText(full), Path.GetFileName(full));
    }

    public static TimeZoneInfo Zone(WardlineOptions options)
    {
        try
        {
            return TimeZoneInfo.FindSystemTimeZoneById(options.Access.TimeZone);
        }
        catch (Exception ex) when (ex is TimeZoneNotFoundException or InvalidTimeZoneException)
        {
            throw new CliException($"Wardline:Access:TimeZone: '{options.Access.TimeZone}' is not a known time zone.");
        }
    }

    [GeneratedRegex(@"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(:\d{2}(\.\d{1,7})?)?(Z|[+-]\d{2}:\d{2})$", RegexOptions.CultureInvariant)]
    private static partial Regex InstantPattern();

    /// <summary>
    /// A day (yyyy-MM-dd: its local midnight in the institution's zone) or an ISO 8601 instant with its offset
    /// (an instant without one would mean different things on different machines).
    /// </summary>
    public static DateTimeOffset Instant(string? text, string option, TimeZoneInfo zone)
    {
        var t = text?.Trim() ?? "";
        if (DateOnly.TryParseExact(t, "yyyy-MM-dd", CultureInfo.InvariantCulture, DateTimeStyles.None, out var day))
        {
            var local = day.ToDateTime(TimeOnly.MinValue, DateTimeKind.Unspecified);
            // A midnight skipped by a daylight-saving change starts the day at the first local time that exists.
            while (zone.IsInvalidTime(local)) local = local.AddMinutes(30);
            var offset = zone.GetUtcOffset(local);
            // In a zone ahead of UTC, the calendar's first midnight is still in year 0 in UTC.
            var utcTicks = local.Ticks - offset.Ticks;
            if (utcTicks < DateTime.MinValue.Ticks || utcTicks > DateTime.MaxValue.Ticks)
                throw new CliException($"{option} '{text}' is outside the calendar at local midnight in {zone.Id}: give a day from 0001-01-02 to 9999-12-31.");
            return new DateTimeOffset(local, offset).ToUniversalTime();
        }
        if (InstantPattern().IsMatch(t) && DateTimeOffset.TryParse(t, CultureInfo.InvariantCulture, DateTimeStyles.None, out var instant))
            return instant.ToUniversalTime();
        throw new CliException($"{option} '{text}' is not a date: use yyyy-MM-dd (local midnight in {zone.Id}), e.g. 2026-11-01, or an ISO 8601 instant with its offset, e.g. 2026-11-01T08:00:00Z.");
    }

    public static void CheckPeriod(DateTimeOffset from, DateTimeOffset to)
    {
        if (to <= from) throw new CliException($"--to ({Show(to)}) must be after --from ({Show(from)}).");
        if (to - from > TimeSpan.FromDays(366)) throw new CliException($"The period is {(to - from).TotalDays:0.#} days: a replay covers at most 366 days; replay a longer history in several runs.");
    }

    public static string Show(DateTimeOffset t) => t.UtcDateTime.ToString("yyyy-MM-dd HH:mm:ss'Z'", CultureInfo.InvariantCulture);

    public static string Name(Severity s) => s.ToString().ToLowerInvariant();

    public static Severity? ParseSeverity(string? text) => text?.Trim().ToLowerInvariant() switch
    {
        "low" => Severity.Low,
        "medium" => Severity.Medium,
        "high" => Severity.High,
        "critical" => Severity.Critical,
        _ => null,
    };

    public static async Task<T> WithStatusAsync<T>(string title, Func<Task<T>> work)
    {
        if (Console.IsOutputRedirected) return await work();
        return await AnsiConsole.Status().StartAsync(Markup.Escape(title), _ => work());
    }

    internal sealed record StatusFacts(long? Cursor, DateTimeOffset? CursorUpdated, string? StreamConfig, long LedgerSize, IReadOnlyDictionary<Severity, int> OpenBySeverity);

    /// <summary>The streaming cursor, the ledger's size and open alerts by severity, read from the store's tables.</summary>
    public static async Task<StatusFacts> ReadStatusAsync(ServiceProvider sp, CancellationToken ct)
    {
        var dialect = sp.GetRequiredService<Wardline.Server.Modules.Records.Storage.SqlDialect>();
        await using var c = await dialect.OpenAsync(ct);
        long? cursor = null;
        DateTimeOffset? updated = null;
        string? streamConfig = null;
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT cursor, updated, config FROM monitor_state WHERE name = 'stream'";
            await using var r = await cmd.ExecuteReaderAsync(ct);
            if (await r.ReadAsync(ct))
            {
                cursor = r.GetInt64(0);
                updated = DateTimeOffset.FromUnixTimeMilliseconds(r.GetInt64(1));
                streamConfig = r.IsDBNull(2) ? null : r.GetString(2);
            }
        }
        long size;
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT COALESCE(MAX(idx) + 1, 0) FROM ledger_entries";
            size = Convert.ToInt64(await cmd.ExecuteScalarAsync(ct), CultureInfo.InvariantCulture);
        }
        var open = new Dictionary<Severity, int>();
        await using (var cmd = c.CreateCommand())
        {
            cmd.CommandText = "SELECT severity, COUNT(*) FROM monitor_alerts WHERE status NOT IN ('closed-violation', 'closed-legitimate') GROUP BY severity";
            await using var r = await cmd.ExecuteReaderAsync(ct);
            while (await r.ReadAsync(ct)) open[(Severity)Convert.ToInt32(r.GetValue(0), CultureInfo.InvariantCulture)] = Convert.ToInt32(r.GetValue(1), CultureInfo.InvariantCulture);
        }
        return new StatusFacts(cursor, updated, streamConfig, size, open);
    }
}
