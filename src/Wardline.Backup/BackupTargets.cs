using System.Text.RegularExpressions;
using Amazon.Runtime;
using Amazon.S3;
using Azure.Storage.Blobs;
using Wardline.Backup.Stores;

namespace Wardline.Backup;

/// <summary>Opens a backup target from the URI an operator wrote (docs/formats/backup-targets.md).</summary>
public static partial class BackupTargets
{
    private const string Forms = "file:///absolute/path, azure://account/container[/prefix] or s3://bucket[/prefix]";

    /// <summary>
    /// The store for <paramref name="uri"/>: <c>file:///path</c>, <c>azure://account/container[/prefix]</c> or
    /// <c>s3://bucket[/prefix]</c>, with credentials and endpoints from <paramref name="settings"/>.
    /// Nothing is contacted yet; call <see cref="IBackupStore.PrepareAsync"/>.
    /// </summary>
    /// <param name="uri">The target.</param>
    /// <param name="settings">Its credentials and endpoint.</param>
    /// <param name="settingsKey">Where the operator configures <paramref name="settings"/>, for messages; null for the backup target's
    /// own (<c>Wardline:Backup:Store</c>, with the <c>WARDLINE_BACKUP_*</c> and <c>AWS_*</c> environment variables as fallback).</param>
    /// <exception cref="ArgumentException">The URI or the settings it needs are missing or malformed. The message is written for the
    /// operator (no parameter name appended) and never holds a credential.</exception>
    public static IBackupStore Open(string uri, BackupTargetSettings settings, string? settingsKey = null)
    {
        ArgumentNullException.ThrowIfNull(settings);
        if (string.IsNullOrWhiteSpace(uri))
        {
            throw new ArgumentException($"No backup target given: use {Forms}.");
        }
        if (!Uri.TryCreate(uri, UriKind.Absolute, out var parsed))
        {
            throw new ArgumentException($"The backup target is not a URI: use {Forms}.");
        }
        // The URI is echoed in messages and shown in status; it must not carry anything secret.
        if (parsed.UserInfo.Length > 0 || parsed.Query.Length > 0 || parsed.Fragment.Length > 0)
        {
            throw new ArgumentException(
                $"A backup target URI carries no credentials, query or fragment: give keys and connection strings in configuration or the environment, and use {Forms}.");
        }
        return parsed.Scheme switch
        {
            "file" => OpenFolder(parsed, uri),
            "azure" => OpenAzure(parsed, settings, settingsKey),
            "s3" => OpenS3(parsed, settings, settingsKey),
            _ => throw new ArgumentException($"Unknown backup target scheme '{parsed.Scheme}': use {Forms}."),
        };
    }

    private static FolderBackupStore OpenFolder(Uri parsed, string uri)
    {
        if (!parsed.IsLoopback && parsed.Host.Length > 0)
        {
            throw new ArgumentException(
                $"'{uri}' is not an absolute folder: write file:///absolute/path (three slashes; a host or relative path is not accepted).");
        }
        var path = parsed.LocalPath;
        if (!Path.IsPathFullyQualified(path))
        {
            throw new ArgumentException($"'{uri}' is not an absolute folder: write file:///absolute/path.");
        }
        var full = Path.GetFullPath(path);
        return new FolderBackupStore(full, "file://" + (full.StartsWith('/') ? full : "/" + full.Replace('\\', '/')));
    }

    private static AzureBlobBackupStore OpenAzure(Uri uri, BackupTargetSettings settings, string? settingsKey)
    {
        var account = uri.Host;
        var (container, prefix) = SplitPath(uri, "container", "azure://account/container[/prefix]");
        if (!AzureAccountName().IsMatch(account))
        {
            throw new ArgumentException($"'{account}' is not an Azure storage account name (3-24 lower-case letters and digits).");
        }
        if (!AzureContainerName().IsMatch(container) || container.Contains("--", StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{container}' is not an Azure container name (3-63 lower-case letters, digits and single hyphens).");
        }
        if (string.IsNullOrWhiteSpace(settings.AzureConnectionString))
        {
            throw new ArgumentException(
                $"azure://{account}/{container} needs a connection string: set " + (settingsKey is null
                    ? $"Wardline:Backup:Store:AzureConnectionString or {BackupTargetSettings.AzureConnectionStringVariable}."
                    : $"{settingsKey}:AzureConnectionString."));
        }
        BlobServiceClient service;
        try
        {
            service = new BlobServiceClient(settings.AzureConnectionString, AzureBlobBackupStore.ClientOptions(settings));
        }
        catch (Exception e) when (e is FormatException or ArgumentException or InvalidOperationException or UriFormatException)
        {
            // The parser's message can quote the connection string; it is not passed on.
            throw new ArgumentException($"The Azure connection string for azure://{account}/{container} could not be read (expected AccountName=...;AccountKey=... or a SAS).");
        }
        if (!string.Equals(service.AccountName, account, StringComparison.OrdinalIgnoreCase))
        {
            throw new ArgumentException(
                $"azure://{account}/{container} names account '{account}', but the connection string is for account '{service.AccountName}'.");
        }
        var display = $"azure://{account}/{container}" + (prefix.Length > 0 ? "/" + prefix : "");
        return new AzureBlobBackupStore(service.GetBlobContainerClient(container), prefix, display);
    }

    private static S3BackupStore OpenS3(Uri uri, BackupTargetSettings settings, string? settingsKey)
    {
        // In s3://bucket/prefix the bucket is the URI's host; Uri lower-cases it, and bucket names are lower-case anyway.
        var bucket = uri.Host;
        if (bucket.Length == 0)
        {
            throw new ArgumentException($"An S3 target names its bucket: use s3://bucket[/prefix].");
        }
        if (!S3BucketName().IsMatch(bucket) || bucket.Contains("..", StringComparison.Ordinal))
        {
            throw new ArgumentException($"'{bucket}' is not an S3 bucket name (3-63 lower-case letters, digits, dots and hyphens).");
        }
        var prefix = uri.AbsolutePath.Trim('/');
        prefix = Uri.UnescapeDataString(prefix);
        if (prefix.Length > 0 && !ObjectNames.IsValid(prefix))
        {
            throw new ArgumentException($"'{prefix}' is not a valid prefix: segments of a-z, 0-9, '.', '_' and '-'.");
        }
        if (string.IsNullOrWhiteSpace(settings.S3AccessKey) || string.IsNullOrWhiteSpace(settings.S3SecretKey))
        {
            throw new ArgumentException(
                $"s3://{bucket} needs an access key and a secret key: set " + (settingsKey is null
                    ? "Wardline:Backup:Store:S3AccessKey and S3SecretKey, or AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY."
                    : $"{settingsKey}:S3AccessKey and S3SecretKey."));
        }
        if (settings.S3Endpoint is { } endpoint && (!Uri.TryCreate(endpoint, UriKind.Absolute, out var endpointUri)
            || endpointUri.Scheme is not ("http" or "https") || endpointUri.UserInfo.Length > 0))
        {
            throw new ArgumentException($"The S3 endpoint for s3://{bucket} must be an http(s) URL without credentials.");
        }
        var lockMode = settings.S3LockMode.ToUpperInvariant() switch
        {
            "COMPLIANCE" => ObjectLockMode.Compliance,
            "GOVERNANCE" => ObjectLockMode.Governance,
            _ => throw new ArgumentException($"S3LockMode is '{settings.S3LockMode}': use COMPLIANCE or GOVERNANCE."),
        };
        var client = new AmazonS3Client(new BasicAWSCredentials(settings.S3AccessKey, settings.S3SecretKey), S3BackupStore.ClientConfig(settings));
        var display = $"s3://{bucket}" + (prefix.Length > 0 ? "/" + prefix : "");
        return new S3BackupStore(client, bucket, prefix, lockMode, display);
    }

    private static (string Container, string Prefix) SplitPath(Uri uri, string what, string form)
    {
        var path = Uri.UnescapeDataString(uri.AbsolutePath.Trim('/'));
        var slash = path.IndexOf('/', StringComparison.Ordinal);
        var first = slash < 0 ? path : path[..slash];
        var rest = slash < 0 ? "" : path[(slash + 1)..];
        if (first.Length == 0)
        {
            throw new ArgumentException($"The backup target names no {what}: use {form}.");
        }
        if (rest.Length > 0 && !ObjectNames.IsValid(rest))
        {
            throw new ArgumentException($"'{rest}' is not a valid prefix: segments of a-z, 0-9, '.', '_' and '-'.");
        }
        return (first, rest);
    }

    [GeneratedRegex("^[a-z0-9]{3,24}$")]
    private static partial Regex AzureAccountName();

    [GeneratedRegex("^[a-z0-9](?:[a-z0-9-]{1,61})[a-z0-9]$")]
    private static partial Regex AzureContainerName();

    [GeneratedRegex("^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")]
    private static partial Regex S3BucketName();
}

/// <summary>
/// Credentials, endpoints and retry policy for backup targets, bound from <c>Wardline:Backup</c> or filled from the
/// environment (<see cref="WithEnvironment"/>). <see cref="ToString"/> never shows a key or connection string.
/// </summary>
public sealed class BackupTargetSettings
{
    public const string AzureConnectionStringVariable = "WARDLINE_BACKUP_AZURE_CONNECTION_STRING";
    public const string S3EndpointVariable = "WARDLINE_BACKUP_S3_ENDPOINT";

    /// <summary>Connection string of the Azure storage account (holds the account key or a SAS: a secret).</summary>
    public string? AzureConnectionString { get; set; }

    /// <summary>Endpoint of an S3-compatible server (e.g. <c>https://minio.example:9000</c>); unset for AWS itself.</summary>
    public string? S3Endpoint { get; set; }

    /// <summary>Region; <c>us-east-1</c> when unset.</summary>
    public string? S3Region { get; set; }

    public string? S3AccessKey { get; set; }

    /// <summary>A secret.</summary>
    public string? S3SecretKey { get; set; }

    /// <summary>Bucket in the path (<c>endpoint/bucket/key</c>) rather than the host name; what most S3-compatible servers need.</summary>
    public bool S3ForcePathStyle { get; set; } = true;

    /// <summary>Object Lock retention mode where the bucket has Object Lock: COMPLIANCE (nobody can shorten it) or GOVERNANCE.</summary>
    public string S3LockMode { get; set; } = "COMPLIANCE";

    /// <summary>Retries of a failed request (network faults, timeouts, 5xx, throttling), with exponential back-off.</summary>
    public int MaxRetries { get; set; } = 5;

    public TimeSpan RetryBaseDelay { get; set; } = TimeSpan.FromSeconds(0.5);

    public TimeSpan RetryMaxDelay { get; set; } = TimeSpan.FromSeconds(10);

    /// <summary>How long one request may take before it counts as failed (and is retried).</summary>
    public TimeSpan NetworkTimeout { get; set; } = TimeSpan.FromSeconds(100);

    /// <summary>A copy with every unset value taken from the environment, where set there.</summary>
    public BackupTargetSettings WithEnvironment()
    {
        var copy = (BackupTargetSettings)MemberwiseClone();
        copy.AzureConnectionString ??= Variable(AzureConnectionStringVariable);
        copy.S3Endpoint ??= Variable(S3EndpointVariable);
        copy.S3Region ??= Variable("AWS_REGION");
        copy.S3AccessKey ??= Variable("AWS_ACCESS_KEY_ID");
        copy.S3SecretKey ??= Variable("AWS_SECRET_ACCESS_KEY");
        return copy;
    }

    public override string ToString() =>
        $"AzureConnectionString={Secret(AzureConnectionString)}, S3Endpoint={S3Endpoint ?? "(default)"}, S3Region={S3Region ?? "(default)"}, "
        + $"S3AccessKey={Secret(S3AccessKey)}, S3SecretKey={Secret(S3SecretKey)}, S3ForcePathStyle={S3ForcePathStyle}, S3LockMode={S3LockMode}, "
        + $"MaxRetries={MaxRetries}, RetryBaseDelay={RetryBaseDelay}, RetryMaxDelay={RetryMaxDelay}, NetworkTimeout={NetworkTimeout}";

    private static string Secret(string? value) => string.IsNullOrEmpty(value) ? "(not set)" : "(set)";

    private static string? Variable(string name) => Environment.GetEnvironmentVariable(name) is { Length: > 0 } value ? value : null;
}
