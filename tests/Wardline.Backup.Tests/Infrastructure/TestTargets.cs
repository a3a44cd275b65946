using System.Net;
using System.Net.Sockets;
using System.Text.RegularExpressions;

namespace Wardline.Backup.Tests.Infrastructure;

/// <summary>
/// The real targets the tests run against: Azurite and s3rver, started on 127.0.0.1 by scripts/services.sh
/// (sourced by ./test.sh), which exports their addresses. Without them the tests fail and say so.
/// </summary>
public static partial class TestTargets
{
    /// <summary>s3rver's built-in credentials (public, in its README).</summary>
    public const string S3rverAccessKey = "S3RVER";
    public const string S3rverSecretKey = "S3RVER";

    /// <summary>Full connection string of Azurite's development account (devstoreaccount1, well-known key).</summary>
    public static string AzuriteConnectionString => Required("WARDLINE_TEST_AZURITE", "Azurite");

    /// <summary>http://127.0.0.1:port of s3rver.</summary>
    public static string S3rverEndpoint => Required("WARDLINE_TEST_S3", "s3rver");

    /// <summary>Retries short enough that a dead target fails a test in seconds, not minutes.</summary>
    public static BackupTargetSettings QuickRetries(BackupTargetSettings settings)
    {
        settings.MaxRetries = 2;
        settings.RetryBaseDelay = TimeSpan.FromMilliseconds(50);
        settings.RetryMaxDelay = TimeSpan.FromMilliseconds(200);
        settings.NetworkTimeout = TimeSpan.FromSeconds(5);
        return settings;
    }

    public static BackupTargetSettings Azurite() => QuickRetries(new BackupTargetSettings { AzureConnectionString = AzuriteConnectionString });

    public static BackupTargetSettings S3rver() => QuickRetries(new BackupTargetSettings
    {
        S3Endpoint = S3rverEndpoint,
        S3AccessKey = S3rverAccessKey,
        S3SecretKey = S3rverSecretKey,
    });

    /// <summary>A container or bucket name no other test uses.</summary>
    public static string UniqueName(string stem) => $"{stem}-{Guid.NewGuid():N}"[..Math.Min(stem.Length + 33, 63)];

    /// <summary>A port on 127.0.0.1 that nothing listens on (bound, then released).</summary>
    public static int ClosedPort()
    {
        using var listener = new TcpListener(IPAddress.Loopback, 0);
        listener.Start();
        var port = ((IPEndPoint)listener.LocalEndpoint).Port;
        listener.Stop();
        return port;
    }

    /// <summary>Azurite's connection string with the blob endpoint moved to another port.</summary>
    public static string AzuriteConnectionStringOnPort(int port) =>
        BlobEndpointPort().Replace(AzuriteConnectionString, $"BlobEndpoint=http://127.0.0.1:{port}/");

    /// <summary>Azurite's connection string with a well-formed key that is not the account's.</summary>
    public static string AzuriteConnectionStringWithWrongKey() =>
        AccountKey().Replace(AzuriteConnectionString, "AccountKey=" + Convert.ToBase64String(new byte[64]));

    private static string Required(string variable, string what) =>
        Environment.GetEnvironmentVariable(variable) is { Length: > 0 } value
            ? value
            : throw new InvalidOperationException(
                $"{variable} is not set: run the tests with ./test.sh, which starts {what} on 127.0.0.1 (scripts/services.sh).");

    [GeneratedRegex(@"BlobEndpoint=http://127\.0\.0\.1:\d+/")]
    private static partial Regex BlobEndpointPort();

    [GeneratedRegex("AccountKey=[^;]+")]
    private static partial Regex AccountKey();
}
