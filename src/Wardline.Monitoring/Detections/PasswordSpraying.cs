namespace Wardline.Monitoring.Detections;

/// <summary>
/// Failed sign-ins across many accounts: from one address (one machine trying a password on account after
/// account), or, distributed, many accounts each failing only once or twice from many addresses (a
/// botnet staying under each account's lockout). A failure naming no known account (the ledger records
/// no name for it) counts as one more account. Once per source (or once overall) per window.
/// </summary>
internal sealed class PasswordSpraying : Detection
{
    private const string Many = "source:many";

    private static readonly DetectionInfo Description = new(
        "password-spraying", "Password spraying", Severity.High, Suppressible: false,
        "Sign-in failed for many different accounts from one network address, or for many accounts a few times each from many addresses, within minutes. Trying common passwords on many accounts stays under each account's lockout; it is how stolen or guessed credentials are found.",
        [
            new("min-accounts", 8, 1, 100_000, "distinct accounts failing from one address within the window that make a finding"),
            new("min-accounts-global", 25, 1, 1_000_000, "distinct accounts failing once or twice each, from anywhere, within the window that make a distributed finding"),
            new("min-sources-global", 5, 1, 100_000, "addresses the distributed failures must come from"),
            new("window-minutes", 30, 1, 1440, "the sliding window"),
        ]);

    private SlidingWindows _bySource = new(1_800_000);
    private readonly SlidingWindow _all = new();
    private readonly SlidingWindow _sources = new();
    private int _minAccounts;
    private int _minGlobal;
    private int _minSources;

    public override DetectionInfo Info => Description;

    protected override void OnConfigured(DetectionSettings settings)
    {
        _minAccounts = (int)settings["min-accounts"];
        _minGlobal = (int)settings["min-accounts-global"];
        _minSources = (int)settings["min-sources-global"];
        _bySource = new SlidingWindows((long)(settings["window-minutes"] * 60_000));
    }

    public override void Examine(MonitorEvent e, MonitorContext ctx)
    {
        if (e.Kind != EntryKind.Security || e.Event != "SignInFailed" || e.Outcome != "failed") return;
        var now = ctx.NowMs;
        var windowMs = _bySource.WindowMs;
        var minutes = Words.Minutes(windowMs / 60_000.0);
        var source = e.Source ?? "unknown";
        var w = _bySource.Get(source, now);
        w.Add(now, e.Index, e.User);
        var accounts = w.Distinct + w.NullItems;
        if (accounts >= _minAccounts && now >= w.QuietUntilMs && !ctx.Warming)
        {
            w.QuietUntilMs = now + windowMs;
            ctx.Report(this, "source:" + source, null, e.AtMs, w.Indexes(100),
                $"sign-in failed for {accounts} different accounts from {source} within {minutes}{Unknown(w.NullItems)}");
        }

        _all.Prune(now, windowMs);
        _sources.Prune(now, windowMs);
        _all.Add(now, e.Index, e.User);
        _sources.Add(now, e.Index, source);
        // Accounts failing once or twice each: an unnamed failure is one more such account.
        var few = _all.Few + _all.NullItems;
        if (few >= _minGlobal && _sources.Distinct >= _minSources && now >= _all.QuietUntilMs && !ctx.Warming)
        {
            _all.QuietUntilMs = now + windowMs;
            ctx.Report(this, Many, null, e.AtMs, _all.Indexes(100),
                $"sign-in failed for {few} different accounts, each once or twice, from {_sources.Distinct} addresses within {minutes}{Unknown(_all.NullItems)}");
        }
    }

    private static string Unknown(int n) => n == 0 ? "" : $" ({(n == 1 ? "1 of them a name" : $"{n} of them names")} no account here has)";
}
