using Wardline.Backup;

namespace Wardline.Server.Modules.Backup;

/// <summary>Backup settings, bound from <c>Wardline:Backup</c> (docs/operations/backup.md).</summary>
public sealed class BackupOptions
{
    /// <summary>Where backups go: <c>file:///path</c>, <c>azure://account/container[/prefix]</c> or <c>s3://bucket[/prefix]</c>. No target, no continuous backups.</summary>
    public string? Target { get; set; }

    /// <summary>Credentials and endpoints of the cloud targets (or their environment variables, see docs/formats/backup-targets.md).</summary>
    public BackupTargetSettings Store { get; set; } = new();

    /// <summary>The recovery point objective: the server ships what is new every this many seconds (0 turns continuous backups off).</summary>
    public int IntervalSeconds { get; set; } = 60;

    /// <summary>A new full backup starts a new chain when the current chain is older than this, which bounds restore time.</summary>
    public int FullEveryDays { get; set; } = 7;

    /// <summary>... or when the chain has this many objects.</summary>
    public int MaxChainObjects { get; set; } = 20_000;

    /// <summary>
    /// ... or when the chain's incremental backups have stored more than this percentage of its full backup's bytes
    /// (and at least <see cref="MinIncrementalMiB"/>); 0 turns this rule off. A restore loads the full backup and then
    /// replays every incremental's rows into it, and a stored byte of rows costs far more to restore than a byte of the
    /// full backup (26-63 times for a SQLite database image on the benchmark store: docs/benchmarks.md, "Backup"), so
    /// this bounds restore time by what changed, where <see cref="FullEveryDays"/> bounds it by age.
    /// </summary>
    public int MaxIncrementalPercent { get; set; } = 5;

    /// <summary>Incremental bytes below this never start a new chain by <see cref="MaxIncrementalPercent"/> (a small store restores quickly whatever its chain).</summary>
    public int MinIncrementalMiB { get; set; } = 64;

    /// <summary>
    /// A full backup of a SQLite store ships the database file's pages (a "database image": the file itself, frozen
    /// by a read transaction while it is shipped, or where that cannot be done a copy beside it made through SQLite's
    /// online backup; ADR 0010 and 0012) instead of its rows: several times faster to take and to restore. Off: full
    /// backups are row segments, like PostgreSQL's, where a damaged segment costs only what it held (restore
    /// --skip-damaged) instead of the whole full backup.
    /// </summary>
    public bool SqliteImage { get; set; } = true;

    /// <summary>Days each object is locked for on a target that supports immutability (0: no lock).</summary>
    public int LockDays { get; set; } = 35;

    /// <summary>How many backups of each age class retention keeps (hourly, daily, weekly, monthly: the newest backup of each period).</summary>
    public BackupRetentionOptions Retention { get; set; } = new();

    /// <summary>Hours between scheduled restore drills (0: only on demand).</summary>
    public int DrillIntervalHours { get; set; } = 168;

    /// <summary>
    /// Whether a drill also holds each restored resource's access facts, care relations and search index to its content
    /// (<c>wardline ledger verify --derived</c> on the restored copy): about a minute of CPU per million resources more.
    /// </summary>
    public bool DrillDerived { get; set; } = true;

    /// <summary>
    /// Who is e-mailed (through the SMTP server of <c>Wardline:Access:Notify</c>) when backups start failing, when they
    /// recover, when they are overdue, and when a restore drill fails: the operators and the security officer.
    /// </summary>
    public IList<string> AlertEmails { get; } = [];

    /// <summary>
    /// How long without a good backup before backups are overdue: the status says so and <see cref="AlertEmails"/> are told,
    /// whatever the cause (failing runs, a backup cycle that stops on an unexpected error, another server holding the lead
    /// and doing nothing). 0 (the default): three intervals and a minute.
    /// </summary>
    public int OverdueAfterSeconds { get; set; }

    /// <summary>The overdue threshold in effect.</summary>
    public int OverdueSeconds => OverdueAfterSeconds > 0 ? OverdueAfterSeconds : 3 * (IntervalSeconds > 0 ? IntervalSeconds : 86_400) + 60;

    /// <summary>Where drills restore to (a scratch folder, emptied after each drill); defaults to the system's temp folder.</summary>
    public string? DrillFolder { get; set; }

    public IReadOnlyList<string> Validate()
    {
        var problems = new List<string>();
        if (IntervalSeconds is < 0 or > 86_400) problems.Add("Wardline:Backup:IntervalSeconds must be between 0 (off) and 86400.");
        if (FullEveryDays is < 1 or > 366) problems.Add("Wardline:Backup:FullEveryDays must be between 1 and 366.");
        if (MaxChainObjects < 10) problems.Add("Wardline:Backup:MaxChainObjects must be at least 10.");
        if (MaxIncrementalPercent is < 0 or > 10_000) problems.Add("Wardline:Backup:MaxIncrementalPercent must be between 0 (off) and 10000.");
        if (MinIncrementalMiB is < 0 or > 1_048_576) problems.Add("Wardline:Backup:MinIncrementalMiB must be between 0 and 1048576 (1 TiB).");
        if (LockDays is < 0 or > 3650) problems.Add("Wardline:Backup:LockDays must be between 0 and 3650.");
        if (OverdueAfterSeconds is < 0 or > 31_622_400) problems.Add("Wardline:Backup:OverdueAfterSeconds must be between 0 (three intervals and a minute) and 31622400 (366 days).");
        if (DrillIntervalHours is < 0 or > 8784) problems.Add("Wardline:Backup:DrillIntervalHours must be between 0 (on demand only) and 8784.");
        if (Retention.Hourly < 0 || Retention.Daily < 0 || Retention.Weekly < 0 || Retention.Monthly < 0) problems.Add("Wardline:Backup:Retention counts cannot be negative.");
        if (Retention.Hourly + Retention.Daily + Retention.Weekly + Retention.Monthly == 0) problems.Add("Wardline:Backup:Retention must keep at least one backup.");
        foreach (var a in AlertEmails)
        {
            if (!MimeKit.MailboxAddress.TryParse(a, out _)) problems.Add($"Wardline:Backup:AlertEmails: '{a}' is not an e-mail address.");
        }
        if (Target is not null)
        {
            try
            {
                // Opening contacts nothing; it checks the URI and that the credentials it needs are configured.
                BackupTargets.Open(Target, Store.WithEnvironment()).DisposeAsync().AsTask().GetAwaiter().GetResult();
            }
            catch (ArgumentException ex)
            {
                problems.Add($"Wardline:Backup:Target: {ex.Message}");
            }
        }
        return problems;
    }
}

/// <summary>Backups kept by age: the newest of each of the last N hours, days, weeks and months. The newest backup is always kept.</summary>
public sealed class BackupRetentionOptions
{
    public int Hourly { get; set; } = 48;

    public int Daily { get; set; } = 14;

    public int Weekly { get; set; } = 8;

    public int Monthly { get; set; } = 12;
}
