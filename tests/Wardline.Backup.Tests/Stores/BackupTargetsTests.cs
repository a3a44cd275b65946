using Wardline.Backup.Stores;

namespace Wardline.Backup.Tests.Stores;

/// <summary>Opening a target from the URI an operator wrote, and the settings that go with it.</summary>
public sealed class BackupTargetsTests
{
    private const string Secret = "c2VjcmV0LWtleS10aGF0LW11c3Qtbm90LWxlYWs=";

    private static BackupTargetSettings WithSecrets() => new()
    {
        AzureConnectionString = $"DefaultEndpointsProtocol=https;AccountName=hospitalbackup;AccountKey={Secret};EndpointSuffix=core.windows.net",
        S3AccessKey = "AKIDEXAMPLE",
        S3SecretKey = Secret,
        S3Endpoint = "https://s3.example.org",
    };

    [Fact]
    public async Task Each_scheme_opens_its_target_and_shows_it_without_credentials()
    {
        await using var folder = BackupTargets.Open("file:///var/backups/wardline", WithSecrets());
        await using var azure = BackupTargets.Open("azure://hospitalbackup/wardline/site-a", WithSecrets());
        await using var s3 = BackupTargets.Open("s3://hospital-backup/wardline/site-a", WithSecrets());

        Assert.IsType<FolderBackupStore>(folder);
        Assert.IsType<AzureBlobBackupStore>(azure);
        Assert.IsType<S3BackupStore>(s3);
        Assert.Equal("file:///var/backups/wardline", folder.Display);
        Assert.Equal("azure://hospitalbackup/wardline/site-a", azure.Display);
        Assert.Equal("s3://hospital-backup/wardline/site-a", s3.Display);
    }

    [Theory]
    [InlineData("ftp://host/path", "Unknown backup target scheme 'ftp'")]
    [InlineData("backups/wardline", "not a URI")]
    [InlineData("file://backups/wardline", "not an absolute folder")]
    [InlineData("azure://hospitalbackup", "names no container")]
    [InlineData("azure://hospitalbackup/", "names no container")]
    [InlineData("azure://hospitalbackup/Bad_Container", "not an Azure container name")]
    [InlineData("azure://otheraccount/wardline", "the connection string is for account 'hospitalbackup'")]
    [InlineData("s3:///prefix-only", "names its bucket")]
    [InlineData("s3://hospital-backup/Bad Prefix", "not a valid prefix")]
    [InlineData("s3://AKIDEXAMPLE:c2VjcmV0@hospital-backup/x", "carries no credentials")]
    [InlineData("azure://hospitalbackup/wardline?sig=c2VjcmV0", "carries no credentials")]
    [InlineData("", "No backup target given")]
    public void A_bad_target_URI_is_refused_with_a_clear_message_and_no_secret(string uri, string expected)
    {
        var refused = Assert.Throws<ArgumentException>(() => BackupTargets.Open(uri, WithSecrets()));

        Assert.Contains(expected, refused.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("c2VjcmV0", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Azure_and_S3_targets_without_credentials_are_refused_naming_where_to_set_them()
    {
        var azure = Assert.Throws<ArgumentException>(() => BackupTargets.Open("azure://hospitalbackup/wardline", new BackupTargetSettings()));
        var s3 = Assert.Throws<ArgumentException>(() => BackupTargets.Open("s3://hospital-backup", new BackupTargetSettings { S3AccessKey = "AKIDEXAMPLE" }));

        Assert.Contains("WARDLINE_BACKUP_AZURE_CONNECTION_STRING", azure.Message, StringComparison.Ordinal);
        Assert.Contains("AWS_SECRET_ACCESS_KEY", s3.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_unreadable_connection_string_is_refused_without_quoting_it()
    {
        var settings = new BackupTargetSettings { AzureConnectionString = $"AccountKey={Secret};garbage" };

        var refused = Assert.Throws<ArgumentException>(() => BackupTargets.Open("azure://hospitalbackup/wardline", settings));

        Assert.DoesNotContain(Secret, refused.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public void An_unknown_S3_lock_mode_is_refused()
    {
        var settings = WithSecrets();
        settings.S3LockMode = "FOREVER";

        var refused = Assert.Throws<ArgumentException>(() => BackupTargets.Open("s3://hospital-backup", settings));

        Assert.Contains("COMPLIANCE or GOVERNANCE", refused.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void Settings_print_without_their_secrets()
    {
        var printed = WithSecrets().ToString();

        Assert.DoesNotContain(Secret, printed, StringComparison.Ordinal);
        Assert.DoesNotContain("AKIDEXAMPLE", printed, StringComparison.Ordinal);
        Assert.Contains("S3SecretKey=(set)", printed, StringComparison.Ordinal);
        Assert.Contains("AzureConnectionString=(set)", printed, StringComparison.Ordinal);
        Assert.Contains("S3Endpoint=https://s3.example.org", printed, StringComparison.Ordinal);
    }

    [Fact]
    public void Settings_take_what_is_unset_from_the_environment_and_keep_what_is_set()
    {
        // Variables only this test reads in this process; restored afterwards.
        string[] names = ["WARDLINE_BACKUP_S3_ENDPOINT", "AWS_REGION", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "WARDLINE_BACKUP_AZURE_CONNECTION_STRING"];
        var saved = names.ToDictionary(n => n, Environment.GetEnvironmentVariable);
        try
        {
            Environment.SetEnvironmentVariable("WARDLINE_BACKUP_S3_ENDPOINT", "http://127.0.0.1:9000");
            Environment.SetEnvironmentVariable("AWS_REGION", "eu-west-1");
            Environment.SetEnvironmentVariable("AWS_ACCESS_KEY_ID", "FROMENV");
            Environment.SetEnvironmentVariable("AWS_SECRET_ACCESS_KEY", "secret-from-env");
            Environment.SetEnvironmentVariable("WARDLINE_BACKUP_AZURE_CONNECTION_STRING", "UseDevelopmentStorage=true");
            var configured = new BackupTargetSettings { S3AccessKey = "FROMCONFIG" };

            var filled = configured.WithEnvironment();

            Assert.Equal("http://127.0.0.1:9000", filled.S3Endpoint);
            Assert.Equal("eu-west-1", filled.S3Region);
            Assert.Equal("FROMCONFIG", filled.S3AccessKey);
            Assert.Equal("secret-from-env", filled.S3SecretKey);
            Assert.Equal("UseDevelopmentStorage=true", filled.AzureConnectionString);
            Assert.Null(configured.S3SecretKey);
        }
        finally
        {
            foreach (var (name, value) in saved)
            {
                Environment.SetEnvironmentVariable(name, value);
            }
        }
    }
}
