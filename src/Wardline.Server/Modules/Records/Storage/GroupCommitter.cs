using System.Data.Common;
using System.Threading.Channels;
using Wardline.Server.Modules.Ledger;

namespace Wardline.Server.Modules.Records.Storage;

/// <summary>
/// The store's single writer. Concurrent units of work (a resource write, a batch of access
/// records) are queued; one loop takes everything waiting, runs each unit inside its own savepoint
/// of one database transaction, commits once, and only then completes the units. Durability costs
/// one commit (one fsync) per group, not per request; a unit that fails is rolled back to its
/// savepoint alone, the others still commit. Units commit in the order they were queued.
/// The ledger entries the group's units staged are appended last, in the same transaction: a write
/// and its entry commit together or not at all, and the group costs one append of the tree.
/// </summary>
internal sealed class GroupCommitter(SqlDialect dialect, LedgerAppender ledger) : IAsyncDisposable
{
    private const int MaxGroup = 256;

    private readonly Channel<Unit> _queue = Channel.CreateUnbounded<Unit>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _startLock = new();
    private Task? _loop;

    /// <summary>A unit of work: runs against the group's connection and transaction.</summary>
    internal delegate Task<T> Work<T>(DbConnection connection, DbTransaction transaction, CancellationToken ct);

    /// <summary>A unit of work that stages ledger entries: they are appended with the group, and dropped if the unit fails.</summary>
    internal delegate Task<T> AuditedWork<T>(DbConnection connection, DbTransaction transaction, List<LedgerRow> entries, CancellationToken ct);

    /// <summary>
    /// Queues <paramref name="work"/> and completes once it is committed. An isolated unit runs in its
    /// own savepoint and fails alone; a unit that cannot fail but for the database itself (appending
    /// records) skips the savepoint, and if it does fail, its whole group fails with it.
    /// </summary>
    public Task<T> RunAsync<T>(Work<T> work, bool isolated = true) =>
        Queue(new Unit<T>((c, tx, _, ct) => work(c, tx, ct), isolated)).Task;

    /// <summary>As <see cref="RunAsync{T}(Work{T}, bool)"/>, for a unit whose changes are recorded in the ledger; the receipt says where.</summary>
    public async Task<Audited<T>> RunAsync<T>(AuditedWork<T> work, bool isolated = true)
    {
        var unit = Queue(new Unit<T>(work, isolated));
        var result = await unit.Task;
        return new Audited<T>(result, unit.Receipt);
    }

    private Unit<T> Queue<T>(Unit<T> unit)
    {
        EnsureStarted();
        if (!_queue.Writer.TryWrite(unit))
        {
            throw new InvalidOperationException("The store is closed; the server is stopping.");
        }
        // Not cancellable once queued: a unit is written whether or not its caller still waits.
        return unit;
    }

    // Started on first use, so the CLI and the server share it without a host to run it.
    private void EnsureStarted()
    {
        if (_loop is not null) return;
        lock (_startLock)
        {
            _loop ??= Task.Run(LoopAsync);
        }
    }

    private async Task LoopAsync()
    {
        var group = new List<Unit>(MaxGroup);
        var reader = _queue.Reader;
        while (await reader.WaitToReadAsync(CancellationToken.None))
        {
            while (group.Count < MaxGroup && reader.TryRead(out var unit))
            {
                group.Add(unit);
            }
            await CommitGroupAsync(group);
            group.Clear();
        }
    }

    /// <summary>Refuses new work, then writes everything already queued.</summary>
    public async ValueTask DisposeAsync()
    {
        _queue.Writer.TryComplete();
        if (_loop is not null) await _loop;
    }

    private async Task CommitGroupAsync(List<Unit> group)
    {
        var ct = CancellationToken.None;
        LedgerAppend? appended = null;
        try
        {
            await using var gate = await dialect.EnterWriteAsync(ct);
            await using var c = await dialect.OpenAsync(ct);
            await using var tx = await dialect.BeginWriteTransactionAsync(c, ct);
            var single = group.Count == 1;
            foreach (var unit in group)
            {
                // A lone unit needs no savepoint: if it fails, the whole transaction is rolled back.
                var savepoint = unit.Isolated && !single;
                if (savepoint) await tx.SaveAsync("unit", ct);
                try
                {
                    await unit.RunAsync(c, tx, ct);
                    if (savepoint) await tx.ReleaseAsync("unit", ct);
                }
                catch (Exception ex) when (ex is not OutOfMemoryException && (unit.Isolated || single))
                {
                    unit.Failed(ex);
                    if (single)
                    {
                        await tx.RollbackAsync(ct);
                        unit.Complete();
                        return;
                    }
                    await tx.RollbackAsync("unit", ct);
                }
            }
            var staged = group.Where(u => u.Succeeded && u.Entries.Count > 0).ToList();
            if (staged.Count > 0)
            {
                var rows = staged.Count == 1 ? staged[0].Entries : [.. staged.SelectMany(u => u.Entries)];
                appended = await ledger.AppendAsync(c, tx, rows, ct);
                var next = appended.First;
                foreach (var unit in staged)
                {
                    unit.Receipt = new LedgerReceipt(next, unit.Entries.Count, appended.Tree.Size);
                    next += unit.Entries.Count;
                }
            }
            await tx.CommitAsync(ct);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            // The transaction is gone, and with it any entries appended: the ledger's cached edge is stale.
            if (appended is not null) ledger.Abandoned();
            var abort = new StoreWriteException("The write could not be committed.", ex);
            foreach (var unit in group) unit.Abort(abort);
            return;
        }
        if (appended is not null) ledger.Committed(appended);
        foreach (var unit in group) unit.Complete();
    }

    private abstract class Unit(bool isolated)
    {
        public bool Isolated => isolated;

        /// <summary>The ledger entries the unit staged; appended only if it succeeds.</summary>
        public List<LedgerRow> Entries { get; } = [];

        public LedgerReceipt? Receipt { get; set; }

        public abstract bool Succeeded { get; }

        public abstract Task RunAsync(DbConnection c, DbTransaction tx, CancellationToken ct);

        /// <summary>Remembers that the unit's own work failed (and was rolled back); reported by <see cref="Complete"/>.</summary>
        public abstract void Failed(Exception ex);

        /// <summary>After the commit: the unit's result, or its own failure.</summary>
        public abstract void Complete();

        /// <summary>The group's transaction did not commit: nothing of any unit is stored.</summary>
        public abstract void Abort(Exception ex);
    }

    private sealed class Unit<T>(AuditedWork<T> work, bool isolated) : Unit(isolated)
    {
        private T? _result;
        private Exception? _error;

        public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public Task<T> Task => Completion.Task;

        public override bool Succeeded => _error is null;

        public override async Task RunAsync(DbConnection c, DbTransaction tx, CancellationToken ct) => _result = await work(c, tx, Entries, ct);

        public override void Failed(Exception ex)
        {
            _error = ex;
            Entries.Clear();
        }

        public override void Complete()
        {
            if (_error is not null) Completion.TrySetException(_error);
            else Completion.TrySetResult(_result!);
        }

        public override void Abort(Exception ex) => Completion.TrySetException(ex);
    }
}

/// <summary>A unit's result and, if it staged ledger entries, where they landed.</summary>
internal readonly record struct Audited<T>(T Value, LedgerReceipt? Receipt);

/// <summary>The database did not take a write (disk full, connection lost, fsync failed); nothing of it is stored.</summary>
internal sealed class StoreWriteException(string message, Exception inner) : Exception(message, inner);
