using Microsoft.Extensions.Logging;
using Wardline.Server.Modules.Records.Storage;

namespace Wardline.Server.Modules.Ledger;

/// <summary>
/// Whether the ledger may be trusted and built on. At start the whole tree is recomputed from the stored
/// entries and held against the database's recorded root and the witness's newest head; if anything differs
/// (an entry altered, deleted or reordered, a rollback, a rewrite) the server goes read-only: reads are still
/// served and recorded, every change is refused with a message naming the first problem, nothing is
/// overwritten, and no new head is published until an operator has investigated.
/// </summary>
internal sealed class LedgerIntegrity(SqlDialect dialect, ILogger<LedgerIntegrity> logger)
{
    private volatile string? _problem;

    /// <summary>Why the server is read-only, or null.</summary>
    public string? Problem => _problem;

    public void EnsureWritable()
    {
        if (_problem is { } p) throw new LedgerReadOnlyException(p);
    }

    /// <summary>Runs the start-up check with <paramref name="verifier"/>; returns the problem found, if any.</summary>
    public async Task<string?> CheckAsync(LedgerVerifier verifier, CancellationToken ct)
    {
        var report = await verifier.VerifyAsync(LedgerVerifier.Depth.Startup, ct);
        if (report.Problems.Count > 0)
        {
            _problem = $"the audit ledger failed its start-up check: {report.Problems[0]}" +
                (report.Problems.Count > 1 ? $" (and {report.Problems.Count - 1} more; run 'wardline ledger verify')" : "");
            LedgerLog.ReadOnly(logger, _problem);
        }
        else
        {
            LedgerLog.Checked(logger, report.Size, report.HeadsChecked, (long)report.Elapsed.TotalMilliseconds);
        }
        return _problem;
    }

    /// <summary>The tree's size and root as the database records them.</summary>
    public async Task<(long Size, byte[] Root)> StateAsync(CancellationToken ct)
    {
        await using var c = await dialect.OpenAsync(ct);
        return await LedgerNodes.ReadStateAsync(c, null, forUpdate: false, ct);
    }
}
