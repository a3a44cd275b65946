using System.Net;
using System.Net.Sockets;
using System.Runtime.CompilerServices;
using System.Security.Cryptography;
using Amazon.Runtime;
using Amazon.S3;
using Amazon.S3.Model;

namespace Wardline.Backup.Stores;

/// <summary>
/// An S3 bucket on AWS or an S3-compatible server (<c>s3://bucket[/prefix]</c>); object names are keys under the prefix.
/// A put first asks whether the key exists (HEAD) and refuses if so, then uploads with If-None-Match: * so that a server
/// with conditional writes (AWS since 2024, MinIO) also refuses a racing writer. Servers without them (s3rver) only
/// get the HEAD check, made safe within one store by letting puts of one key take turns; writers in two processes
/// can still both land there. Uploads are sent whole (no aws-chunked encoding, which s3rver stores verbatim) with a
/// Content-MD5 the server checks. Where the bucket has Object Lock enabled, each upload carries a retention
/// (COMPLIANCE by default) until the caller's date. Retries (exponential back-off) are the SDK's.
/// </summary>
internal sealed class S3BackupStore : IBackupStore
{
    private readonly AmazonS3Client _client;
    private readonly string _bucket;
    private readonly string _prefix;
    private readonly ObjectLockMode _lockMode;
    private readonly Dictionary<string, Task> _putsInFlight = new(StringComparer.Ordinal);
    private bool _objectLock;

    public S3BackupStore(AmazonS3Client client, string bucket, string prefix, ObjectLockMode lockMode, string display)
    {
        _client = client;
        _bucket = bucket;
        _prefix = prefix.Length == 0 ? "" : prefix + "/";
        _lockMode = lockMode;
        Display = display;
        Immutability = new BackupImmutability(false, "not known until the target is prepared");
    }

    public string Display { get; }

    public BackupImmutability Immutability { get; private set; }

    public static AmazonS3Config ClientConfig(BackupTargetSettings settings)
    {
        var config = new AmazonS3Config
        {
            ForcePathStyle = settings.S3ForcePathStyle,
            RetryMode = RequestRetryMode.Standard,
            MaxErrorRetry = settings.MaxRetries,
            Timeout = settings.NetworkTimeout,
            // Checksums only where an operation requires them: S3-compatible servers do not all know the flexible
            // checksum headers. Puts send Content-MD5 instead, which every S3 server checks.
            RequestChecksumCalculation = RequestChecksumCalculation.WHEN_REQUIRED,
            ResponseChecksumValidation = ResponseChecksumValidation.WHEN_REQUIRED,
        };
        var region = settings.S3Region ?? "us-east-1";
        if (settings.S3Endpoint is { } endpoint)
        {
            config.ServiceURL = endpoint;
            config.AuthenticationRegion = region;
        }
        else
        {
            config.RegionEndpoint = Amazon.RegionEndpoint.GetBySystemName(region);
        }
        return config;
    }

    public async Task PrepareAsync(CancellationToken ct)
    {
        await Run("prepare", null, async () =>
        {
            try
            {
                await _client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = _bucket, MaxKeys = 1, Prefix = _prefix }, ct);
            }
            catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound && e.ErrorCode == "NoSuchBucket")
            {
                // A bucket created here has no Object Lock; one that needs it is created by the operator (docs/formats/backup-targets.md).
                try
                {
                    await _client.PutBucketAsync(new PutBucketRequest { BucketName = _bucket }, ct);
                }
                catch (AmazonS3Exception conflict) when (conflict.StatusCode == HttpStatusCode.Conflict && conflict.ErrorCode is "BucketAlreadyOwnedByYou" or "BucketAlreadyExists")
                {
                    // Another server (or another process of this one) created it meanwhile. Whether it is ours to use is what the
                    // listing says: a bucket of someone else's is refused there, as AccessDenied.
                    await _client.ListObjectsV2Async(new ListObjectsV2Request { BucketName = _bucket, MaxKeys = 1, Prefix = _prefix }, ct);
                }
            }
        }, ct);

        string? why = null;
        await Run("prepare", null, async () =>
        {
            try
            {
                var response = await _client.GetObjectLockConfigurationAsync(new GetObjectLockConfigurationRequest { BucketName = _bucket }, ct);
                _objectLock = response.ObjectLockConfiguration?.ObjectLockEnabled == Amazon.S3.ObjectLockEnabled.Enabled;
                why = _objectLock ? null : "the bucket does not have Object Lock enabled";
            }
            catch (AmazonS3Exception e) when ((int)e.StatusCode is >= 400 and < 500 or 501)
            {
                // Not found (no Object Lock), not implemented (s3rver and other servers without it) or not permitted to read it:
                // in each case nothing tells us the server will hold objects, so none is promised.
                _objectLock = false;
                why = e.ErrorCode == "ObjectLockConfigurationNotFoundError"
                    ? "the bucket does not have Object Lock enabled"
                    : $"the server does not report an Object Lock configuration ({e.ErrorCode ?? ((int)e.StatusCode).ToString(System.Globalization.CultureInfo.InvariantCulture)})";
            }
        }, ct);
        Immutability = _objectLock
            ? new BackupImmutability(true, $"S3 Object Lock on bucket '{_bucket}': each object is retained in {_lockMode.Value} mode until its retention date")
            : new BackupImmutability(false,
                $"not supported by this target: {why}; objects can be deleted or replaced by anyone holding keys with write access. "
                + "Create the bucket with Object Lock enabled to have the server refuse that");
    }

    public async Task PutAsync(string name, ReadOnlyMemory<byte> content, DateTimeOffset? retainUntil, CancellationToken ct)
    {
        ObjectNames.Validate(name);
        var key = _prefix + name;
        await Run("put", name, async () =>
        {
            await using var turn = await PutTurn.TakeAsync(_putsInFlight, key, ct);
            if (await HeadAsync(key, ct) is not null)
            {
                throw AlreadyExists(name);
            }
            var request = new PutObjectRequest
            {
                BucketName = _bucket,
                Key = key,
                InputStream = new MemoryStream(content.ToArray(), writable: false),
                AutoCloseStream = true,
                UseChunkEncoding = false,
                MD5Digest = ContentMd5(content.Span),
                IfNoneMatch = "*",
                ContentType = "application/octet-stream",
            };
            if (_objectLock && retainUntil is { } until)
            {
                request.ObjectLockMode = _lockMode;
                request.ObjectLockRetainUntilDate = until.UtcDateTime;
            }
            ct.ThrowIfCancellationRequested();
            try
            {
                // Once sending starts it runs to its end (bounded by the network timeout and the retries), whatever
                // the caller's token says: an S3-compatible server may keep what it received of an abandoned PUT as
                // the object (s3rver does), and the contract allows no torn object under a name.
                await _client.PutObjectAsync(request, CancellationToken.None);
            }
            catch (AmazonS3Exception e) when (e.StatusCode is HttpStatusCode.PreconditionFailed or HttpStatusCode.Conflict && e.ErrorCode is "PreconditionFailed" or "ConditionalRequestConflict")
            {
                throw AlreadyExists(name);
            }
        }, ct);
    }

    public async Task<byte[]> GetAsync(string name, CancellationToken ct)
    {
        ObjectNames.Validate(name);
        byte[] result = [];
        await Run("get", name, async () =>
        {
            using var response = await _client.GetObjectAsync(new GetObjectRequest { BucketName = _bucket, Key = _prefix + name }, ct);
            using var buffer = new MemoryStream(response.ContentLength > 0 ? (int)Math.Min(response.ContentLength, int.MaxValue) : 0);
            await response.ResponseStream.CopyToAsync(buffer, ct);
            result = buffer.ToArray();
        }, ct);
        return result;
    }

    public async Task<BackupObjectInfo?> StatAsync(string name, CancellationToken ct)
    {
        ObjectNames.Validate(name);
        BackupObjectInfo? result = null;
        await Run("stat", name, async () =>
        {
            var head = await HeadAsync(_prefix + name, ct);
            result = head is null ? null : new BackupObjectInfo(name, head.ContentLength, ToOffset(head.LastModified), LockedUntil(head));
        }, ct);
        return result;
    }

    public async IAsyncEnumerable<BackupObjectInfo> ListAsync(string prefix, [EnumeratorCancellation] CancellationToken ct)
    {
        ObjectNames.ValidatePrefix(prefix);
        var found = new List<BackupObjectInfo>();
        await Run("list", prefix, async () =>
        {
            var request = new ListObjectsV2Request { BucketName = _bucket, Prefix = _prefix + prefix };
            while (true)
            {
                var page = await _client.ListObjectsV2Async(request, ct);
                foreach (var item in page.S3Objects ?? [])
                {
                    var name = item.Key[_prefix.Length..];
                    if (ObjectNames.IsValid(name))
                    {
                        // Listings carry no retention; Stat asks for it per object.
                        found.Add(new BackupObjectInfo(name, item.Size ?? 0, ToOffset(item.LastModified), null));
                    }
                }
                if (page.IsTruncated != true || string.IsNullOrEmpty(page.NextContinuationToken))
                {
                    break;
                }
                request.ContinuationToken = page.NextContinuationToken;
            }
        }, ct);
        found.Sort((a, b) => string.CompareOrdinal(a.Name, b.Name));
        foreach (var item in found)
        {
            yield return item;
        }
    }

    public async Task DeleteAsync(string name, CancellationToken ct)
    {
        ObjectNames.Validate(name);
        var key = _prefix + name;
        await Run("delete", name, async () =>
        {
            // Under Object Lock a plain DELETE succeeds by adding a delete marker while the retained version stays;
            // the contract says a locked object is refused, so the lock is checked first.
            if (_objectLock && await HeadAsync(key, ct) is { } head && LockedUntil(head) is { } until && until > DateTimeOffset.UtcNow)
            {
                throw new BackupStoreException(BackupStoreErrorKind.Locked, $"{Display}: delete '{name}': the object is retained under Object Lock until {until:u}");
            }
            // S3 answers 204 for a key that is not there, so deleting twice is no error.
            await _client.DeleteObjectAsync(new DeleteObjectRequest { BucketName = _bucket, Key = key }, ct);
        }, ct);
    }

    public ValueTask DisposeAsync()
    {
        _client.Dispose();
        return ValueTask.CompletedTask;
    }

    private async Task<GetObjectMetadataResponse?> HeadAsync(string key, CancellationToken ct)
    {
        try
        {
            return await _client.GetObjectMetadataAsync(new GetObjectMetadataRequest { BucketName = _bucket, Key = key }, ct);
        }
        catch (AmazonS3Exception e) when (e.StatusCode == HttpStatusCode.NotFound)
        {
            return null;
        }
    }

    /// <summary>
    /// Puts of one key through this store take turns, so that the HEAD check of the second sees the first's object
    /// even on a server without conditional writes. Writers in other processes still race there (see the class comment).
    /// </summary>
    private sealed class PutTurn : IAsyncDisposable
    {
        private readonly Dictionary<string, Task> _inFlight;
        private readonly string _key;
        private readonly TaskCompletionSource _done = new(TaskCreationOptions.RunContinuationsAsynchronously);

        private PutTurn(Dictionary<string, Task> inFlight, string key)
        {
            _inFlight = inFlight;
            _key = key;
        }

        public static async Task<PutTurn> TakeAsync(Dictionary<string, Task> inFlight, string key, CancellationToken ct)
        {
            var turn = new PutTurn(inFlight, key);
            while (true)
            {
                Task? other;
                lock (inFlight)
                {
                    if (!inFlight.TryGetValue(key, out other))
                    {
                        inFlight[key] = turn._done.Task;
                        return turn;
                    }
                }
                await other.WaitAsync(ct);
            }
        }

        public ValueTask DisposeAsync()
        {
            lock (_inFlight)
            {
                _inFlight.Remove(_key);
            }
            _done.SetResult();
            return ValueTask.CompletedTask;
        }
    }

    private static DateTimeOffset? LockedUntil(GetObjectMetadataResponse head)
    {
        if (head.ObjectLockLegalHoldStatus == Amazon.S3.ObjectLockLegalHoldStatus.On)
        {
            return DateTimeOffset.MaxValue;
        }
        return head.ObjectLockRetainUntilDate is { } until && until > DateTime.MinValue ? ToOffset(until) : null;
    }

    private static DateTimeOffset? ToOffset(DateTime? time) =>
        time is { } t ? new DateTimeOffset(t.Kind == DateTimeKind.Local ? t.ToUniversalTime() : DateTime.SpecifyKind(t, DateTimeKind.Utc)) : null;

    // Content-MD5 is S3's transfer integrity header, not a security use of MD5.
#pragma warning disable CA5351
    private static string ContentMd5(ReadOnlySpan<byte> content) => Convert.ToBase64String(MD5.HashData(content));
#pragma warning restore CA5351

    private BackupStoreException AlreadyExists(string name) =>
        new(BackupStoreErrorKind.AlreadyExists, $"{Display}: put '{name}': an object of that name exists already; it was not overwritten");

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
        catch (AmazonS3Exception e)
        {
            throw Map(e, what);
        }
        catch (Exception e) when (e is AmazonServiceException or AmazonClientException or HttpRequestException or SocketException or IOException or OperationCanceledException)
        {
            throw new BackupStoreException(BackupStoreErrorKind.Unreachable, $"{what} failed: the target did not answer after the retries", e);
        }
    }

    private static BackupStoreException Map(AmazonS3Exception e, string what)
    {
        var code = e.ErrorCode ?? "";
        var status = (int)e.StatusCode;
        var (kind, reason) = status switch
        {
            401 or 403 when code.Contains("ObjectLock", StringComparison.OrdinalIgnoreCase) || code.Contains("Retention", StringComparison.OrdinalIgnoreCase)
                => (BackupStoreErrorKind.Locked, "the object is retained under Object Lock"),
            401 or 403 => (BackupStoreErrorKind.AccessDenied, $"access denied ({code})"),
            404 => (BackupStoreErrorKind.NotFound, code == "NoSuchBucket" ? "no such bucket" : "no such object"),
            412 => (BackupStoreErrorKind.AlreadyExists, "an object of that name exists already; it was not overwritten"),
            0 or 408 or 429 or >= 500 => (BackupStoreErrorKind.Unreachable, $"the target did not answer usefully (HTTP {status}) after the retries"),
            _ => (BackupStoreErrorKind.Failed, $"refused (HTTP {status} {code})"),
        };
        return new BackupStoreException(kind, $"{what}: {reason}", e);
    }
}
