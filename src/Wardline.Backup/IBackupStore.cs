namespace Wardline.Backup;

/// <summary>
/// A backup target: a flat namespace of immutable objects (docs/formats/backup.md, "Targets").
/// Contract, checked for every target by the conformance suite (tests/Wardline.Backup.Tests/Stores):
/// <list type="bullet">
/// <item>Names are relative, '/'-separated, of [a-z0-9._-] segments (not "." or "..", at most 200 characters each, 512 in all);
/// anything else is refused with <see cref="ArgumentException"/>.
/// A name is never also the folder of another name (<c>a</c> and <c>a/b</c>): a folder target cannot hold both.</item>
/// <item><see cref="PutAsync"/> creates an object or fails: an existing object is never overwritten
/// (<see cref="BackupStoreErrorKind.AlreadyExists"/>), and a failed or cancelled upload leaves no object under the name.</item>
/// <item>Transient faults are retried with back-off inside the store; what still fails surfaces as
/// <see cref="BackupStoreException"/> with a kind, and a message naming the target but never a credential.</item>
/// <item><see cref="ListAsync"/> returns every object under a prefix, in ordinal name order.</item>
/// <item><see cref="DeleteAsync"/> refuses an object under an immutability policy or legal hold
/// (<see cref="BackupStoreErrorKind.Locked"/>).</item>
/// </list>
/// </summary>
public interface IBackupStore : IAsyncDisposable
{
    /// <summary>The target as the operator wrote it, without credentials (e.g. <c>s3://bucket/prefix</c>).</summary>
    string Display { get; }

    /// <summary>
    /// Whether objects written from now on are protected from overwrite and deletion by the target itself,
    /// and in plain words why or why not. Known after <see cref="PrepareAsync"/>.
    /// </summary>
    BackupImmutability Immutability { get; }

    /// <summary>Checks the target is reachable and writable, creating the container/bucket/folder if allowed, and finds out what it supports.</summary>
    Task PrepareAsync(CancellationToken ct);

    /// <summary>Stores <paramref name="content"/> under <paramref name="name"/>, locked for <paramref name="retainUntil"/> where the target supports it.</summary>
    Task PutAsync(string name, ReadOnlyMemory<byte> content, DateTimeOffset? retainUntil, CancellationToken ct);

    /// <summary>Reads a whole object. <see cref="BackupStoreErrorKind.NotFound"/> when there is none.</summary>
    Task<byte[]> GetAsync(string name, CancellationToken ct);

    /// <summary>The object's size and lock, or null when there is none.</summary>
    Task<BackupObjectInfo?> StatAsync(string name, CancellationToken ct);

    /// <summary>Every object whose name starts with <paramref name="prefix"/>, in ordinal name order.</summary>
    IAsyncEnumerable<BackupObjectInfo> ListAsync(string prefix, CancellationToken ct);

    /// <summary>Removes an object (retention, clean-up of abandoned uploads); refused while the target holds it locked. No error when it is already gone.</summary>
    Task DeleteAsync(string name, CancellationToken ct);
}

/// <summary>One stored object.</summary>
public sealed record BackupObjectInfo(string Name, long Length, DateTimeOffset? LastModified, DateTimeOffset? LockedUntil);

/// <summary>What the target does to keep written objects from being changed or removed.</summary>
/// <param name="Supported">True when the target itself refuses overwrite and deletion until the retention date.</param>
/// <param name="Description">Plain words for status and the console, e.g. "Azure blob immutability policy (unlocked), 30 days" or "not supported by this target (Azurite): objects can be deleted by anyone holding the account key".</param>
public sealed record BackupImmutability(bool Supported, string Description);

/// <summary>Why a store operation failed, for callers that act on it (retry later, stop, report).</summary>
public enum BackupStoreErrorKind
{
    /// <summary>Network, DNS, timeout, 5xx after the retries ran out.</summary>
    Unreachable,
    /// <summary>Credentials refused or missing permission.</summary>
    AccessDenied,
    /// <summary>No such object.</summary>
    NotFound,
    /// <summary>An object of that name exists; it was not overwritten.</summary>
    AlreadyExists,
    /// <summary>The target holds the object under an immutability policy or legal hold.</summary>
    Locked,
    /// <summary>The disk or quota is full.</summary>
    OutOfSpace,
    /// <summary>Anything else the target refused.</summary>
    Failed,
}

/// <summary>A store operation that failed after retries; the message names the target and the object, never a credential.</summary>
public sealed class BackupStoreException : Exception
{
    public BackupStoreException(BackupStoreErrorKind kind, string message, Exception? inner = null) : base(message, inner) => Kind = kind;

    public BackupStoreException() : this(BackupStoreErrorKind.Failed, "backup store error") { }

    public BackupStoreException(string message) : this(BackupStoreErrorKind.Failed, message) { }

    public BackupStoreException(string message, Exception inner) : this(BackupStoreErrorKind.Failed, message, inner) { }

    public BackupStoreErrorKind Kind { get; }
}
