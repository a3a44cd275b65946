using System.Data.Common;
using System.Threading.Channels;

namespace Wardline.Server.Modules.Records.Storage;

/// <summary>
/// The store's single writer. Concurrent units of work (a resource write, a batch of access
/// records) are queued; one loop takes everything waiting, runs each unit inside its own savepoint
/// of one database transaction, commits once, and only then completes the units. Durability costs
/// one commit (one fsync) per group, not per request; a unit that fails is rolled back to its
/// savepoint alone, the others still commit. Units commit in the order they were queued.
/// </summary>
internal sealed class GroupCommitter(SqlDialect dialect) : IAsyncDisposable
{
    private const int MaxGroup = 256;

    private readonly Channel<Unit> _queue = Channel.CreateUnbounded<Unit>(new UnboundedChannelOptions { SingleReader = true });
    private readonly Lock _startLock = new();
    private Task? _loop;

    /// <summary>A unit of work: runs against the group's connection and transaction.</summary>
    internal delegate Task<T> Work<T>(DbConnection connection, DbTransaction transaction, CancellationToken ct);

    /// <summary>
    /// Queues <paramref name="work"/> and completes once it is committed. An isolated unit runs in its
    /// own savepoint and fails alone; a unit that cannot fail but for the database itself (appending
    /// records) skips the savepoint, and if it does fail, its whole group fails with it.
    /// </summary>
    public Task<T> RunAsync<T>(Work<T> work, bool isolated = true)
    {
        var unit = new Unit<T>(work, isolated);
        EnsureStarted();
        if (!_queue.Writer.TryWrite(unit))
        {
            throw new InvalidOperationException("The store is closed; the server is stopping.");
        }
        // Not cancellable once queued: a unit is written whether or not its caller still waits.
        return unit.Completion.Task;
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
            await tx.CommitAsync(ct);
        }
        catch (Exception ex) when (ex is not OutOfMemoryException)
        {
            var abort = new StoreWriteException("The write could not be committed.", ex);
            foreach (var unit in group) unit.Abort(abort);
            return;
        }
        foreach (var unit in group) unit.Complete();
    }

    private abstract class Unit(bool isolated)
    {
        public bool Isolated => isolated;

        public abstract Task RunAsync(DbConnection c, DbTransaction tx, CancellationToken ct);

        /// <summary>Remembers that the unit's own work failed (and was rolled back); reported by <see cref="Complete"/>.</summary>
        public abstract void Failed(Exception ex);

        /// <summary>After the commit: the unit's result, or its own failure.</summary>
        public abstract void Complete();

        /// <summary>The group's transaction did not commit: nothing of any unit is stored.</summary>
        public abstract void Abort(Exception ex);
    }

    private sealed class Unit<T>(Work<T> work, bool isolated) : Unit(isolated)
    {
        private T? _result;
        private Exception? _error;

        public TaskCompletionSource<T> Completion { get; } = new(TaskCreationOptions.RunContinuationsAsynchronously);

        public override async Task RunAsync(DbConnection c, DbTransaction tx, CancellationToken ct) => _result = await work(c, tx, ct);

        public override void Failed(Exception ex) => _error = ex;

        public override void Complete()
        {
            if (_error is not null) Completion.TrySetException(_error);
            else Completion.TrySetResult(_result!);
        }

        public override void Abort(Exception ex) => Completion.TrySetException(ex);
    }
}

/// <summary>The database did not take a write (disk full, connection lost, fsync failed); nothing of it is stored.</summary>
internal sealed class StoreWriteException(string message, Exception inner) : Exception(message, inner);
