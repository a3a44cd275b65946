using System.Runtime.CompilerServices;
using Azure;
using Azure.Storage.Blobs;
using Azure.Storage.Blobs.Models;

namespace Wardline.Backup.Stores;

/// <summary>
/// An Azure Blob Storage container (<c>azure://account/container[/prefix]</c>); object names are blob names under the prefix.
/// Every upload is conditional on no blob existing (If-None-Match: *), so the service itself refuses an overwrite,
/// including between two writers racing. Where the container has version-level immutability, each upload carries an
/// unlocked time-based immutability policy until the caller's retention date; the service then refuses deletion and
/// change until that date, even to the account key. Retries (exponential back-off) are Azure.Core's, configured from
/// <see cref="BackupTargetSettings"/>.
/// </summary>
internal sealed class AzureBlobBackupStore : IBackupStore
{
    private readonly BlobContainerClient _container;
    private readonly string _prefix;
    private readonly bool _emulator;
    private bool _versionLevelImmutability;

    public AzureBlobBackupStore(BlobContainerClient container, string prefix, string display)
    {
        _container = container;
        _prefix = prefix.Length == 0 ? "" : prefix + "/";
        Display = display;
        _emulator = container.Uri.IsLoopback;
        Immutability = new BackupImmutability(false, "not known until the target is prepared");
    }

    public string Display { get; }

    public BackupImmutability Immutability { get; private set; }

    /// <summary>The client options every Azure target uses: a pinned service version Azurite accepts, and exponential retries.</summary>
    public static BlobClientOptions ClientOptions(BackupTargetSettings settings)
    {
        var options = new BlobClientOptions(BlobClientOptions.ServiceVersion.V2025_11_05);
        options.Retry.Mode = Azure.Core.RetryMode.Exponential;
        options.Retry.MaxRetries = settings.MaxRetries;
        options.Retry.Delay = settings.RetryBaseDelay;
        options.Retry.MaxDelay = settings.RetryMaxDelay;
        options.Retry.NetworkTimeout = settings.NetworkTimeout;
        // Request URLs and headers are not logged by Wardline; keep Azure.Core's diagnostics from carrying them either.
        options.Diagnostics.IsLoggingContentEnabled = false;
        options.Diagnostics.IsTelemetryEnabled = false;
        return options;
    }

    public async Task PrepareAsync(CancellationToken ct)
    {
        await Run("prepare", null, async () =>
        {
            BlobContainerProperties properties;
            try
            {
                properties = (await _container.GetPropertiesAsync(cancellationToken: ct)).Value;
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                // Credentials scoped to an existing container (a SAS without create) never get here. A container
                // created here has no immutability; one that needs it is set up by the operator (docs/formats/backup-targets.md).
                await _container.CreateIfNotExistsAsync(cancellationToken: ct);
                properties = (await _container.GetPropertiesAsync(cancellationToken: ct)).Value;
            }
            _versionLevelImmutability = properties.HasImmutableStorageWithVersioning;
        }, ct);
        Immutability = _versionLevelImmutability
            ? new BackupImmutability(true,
                $"Azure blob version-level immutability on container '{_container.Name}': each object gets an unlocked time-based immutability policy until its retention date")
            : new BackupImmutability(false,
                $"not supported by this target ({(_emulator ? "a local emulator such as Azurite, which has no blob immutability" : $"container '{_container.Name}' has no version-level immutability")}): "
                + "objects can be deleted or replaced by anyone holding the account key; enable version-level immutability on the container to have Azure refuse that");
    }

    public async Task PutAsync(string name, ReadOnlyMemory<byte> content, DateTimeOffset? retainUntil, CancellationToken ct)
    {
        ObjectNames.Validate(name);
        var options = new BlobUploadOptions
        {
            Conditions = new BlobRequestConditions { IfNoneMatch = ETag.All },
        };
        if (_versionLevelImmutability && retainUntil is { } until)
        {
            options.ImmutabilityPolicy = new BlobImmutabilityPolicy { ExpiresOn = until, PolicyMode = BlobImmutabilityPolicyMode.Unlocked };
        }
        await Run("put", name, () => _container.GetBlobClient(_prefix + name).UploadAsync(BinaryData.FromBytes(content), options, ct), ct);
    }

    public async Task<byte[]> GetAsync(string name, CancellationToken ct)
    {
        ObjectNames.Validate(name);
        byte[] result = [];
        await Run("get", name, async () =>
        {
            var download = await _container.GetBlobClient(_prefix + name).DownloadContentAsync(ct);
            result = download.Value.Content.ToArray();
        }, ct);
        return result;
    }

    public async Task<BackupObjectInfo?> StatAsync(string name, CancellationToken ct)
    {
        ObjectNames.Validate(name);
        BackupObjectInfo? result = null;
        await Run("stat", name, async () =>
        {
            try
            {
                var properties = (await _container.GetBlobClient(_prefix + name).GetPropertiesAsync(cancellationToken: ct)).Value;
                result = new BackupObjectInfo(name, properties.ContentLength, properties.LastModified, LockedUntil(properties.ImmutabilityPolicy, properties.HasLegalHold));
            }
            catch (RequestFailedException e) when (e.Status == 404)
            {
                result = null;
            }
        }, ct);
        return result;
    }

    public async IAsyncEnumerable<BackupObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        ObjectNames.ValidatePrefix(prefix);
        var found = new List<BackupObjectInfo>();
        await Run("list", prefix, async () =>
        {
            var options = new GetBlobsOptions
            {
                Prefix = _prefix + prefix,
                Traits = _versionLevelImmutability ? BlobTraits.ImmutabilityPolicy | BlobTraits.LegalHold : BlobTraits.None,
            };
            await foreach (var blob in _container.GetBlobsAsync(options, ct))
            {
                var name = blob.Name[_prefix.Length..];
                if (ObjectNames.IsValid(name))
                {
                    found.Add(new BackupObjectInfo(name, blob.Properties.ContentLength ?? 0, blob.Properties.LastModified,
                        LockedUntil(blob.Properties.ImmutabilityPolicy, blob.Properties.HasLegalHold)));
                }
            }
        }, ct);
        // The service lists in UTF-8 byte order, which for these names is ordinal order; sorting keeps the contract
        // independent of that.
        found.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        foreach (var item in found)
        {
            yield return item;
        }
    }

    public async Task DeleteAsync(string name, CancellationToken ct)
    {
        ObjectNames.Validate(name);
        var blob = _container.GetBlobClient(_prefix + name);
        await Run("delete", name, async () =>
        {
            // Version-level immutability needs blob versioning, and there deleting the current version succeeds by
            // turning it into a previous version that stays locked; the contract says a locked object is refused,
            // so the lock is checked first.
            if (_versionLevelImmutability)
            {
                try
                {
                    var properties = (await blob.GetPropertiesAsync(cancellationToken: ct)).Value;
                    if (LockedUntil(properties.ImmutabilityPolicy, properties.HasLegalHold) is { } until && until > DateTimeOffset.UtcNow)
                    {
                        throw new BackupStoreException(BackupStoreErrorKind.Locked, $"{Display}: delete '{name}': the object is held under an immutability policy or legal hold until {until:u}");
                    }
                }
                catch (RequestFailedException e) when (e.Status == 404)
                {
                    return;
                }
            }
            await blob.DeleteIfExistsAsync(cancellationToken: ct);
        }, ct);
    }

    public ValueTask DisposeAsync() => ValueTask.CompletedTask;

    private static DateTimeOffset? LockedUntil(BlobImmutabilityPolicy? policy, bool legalHold) =>
        legalHold ? DateTimeOffset.MaxValue : policy?.ExpiresOn;

    private async Task Run(string operation, string? name, Func<Task> action, CancellationToken ct)
    {
        ct.ThrowIfCancellationRequested();
        var what = name is null ? $"{Display}: {operation}" : $"{Display}: {operation} '{name}'";
        try
        {
            await action();
        }
        catch (OperationCanceledException) when (ct.IsCancellationRequested)
        {
            throw;
        }
        catch (BackupStoreException)
        {
            throw;
        }
        catch (RequestFailedException e)
        {
            throw Map(e, what);
        }
        catch (Exception e) when (e is AggregateException or HttpRequestException or OperationCanceledException or IOException)
        {
            // Azure.Core gives up with an AggregateException of the tries' failures (refused connection, timeout).
            throw new BackupStoreException(BackupStoreErrorKind.Unreachable, $"{what} failed: the target did not answer after {RetryCount(e)} tries", e);
        }
    }

    private static int RetryCount(Exception e) => e is AggregateException a ? a.InnerExceptions.Count : 1;

    private static BackupStoreException Map(RequestFailedException e, string what)
    {
        var code = e.ErrorCode ?? "";
        var (kind, reason) = e.Status switch
        {
            401 or 403 => (BackupStoreErrorKind.AccessDenied, "access denied (wrong key or missing permission)"),
            404 => (BackupStoreErrorKind.NotFound, "no such object"),
            409 when code == BlobErrorCode.BlobAlreadyExists => (BackupStoreErrorKind.AlreadyExists, "an object of that name exists already; it was not overwritten"),
            412 => (BackupStoreErrorKind.AlreadyExists, "an object of that name exists already; it was not overwritten"),
            409 when code == BlobErrorCode.BlobImmutableDueToPolicy || code.Contains("Immutab", StringComparison.OrdinalIgnoreCase) || code.Contains("LegalHold", StringComparison.OrdinalIgnoreCase)
                => (BackupStoreErrorKind.Locked, "the object is held under an immutability policy or legal hold"),
            0 or 408 or 429 or >= 500 => (BackupStoreErrorKind.Unreachable, $"the target did not answer usefully (HTTP {e.Status}) after the retries"),
            _ => (BackupStoreErrorKind.Failed, $"refused (HTTP {e.Status} {code})"),
        };
        return new BackupStoreException(kind, $"{what}: {reason}", e);
    }
}
