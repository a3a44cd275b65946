using System.Diagnostics;
using Wardline.Backup.Tests.Infrastructure;

namespace Wardline.Backup.Tests.Stores;

/// <summary>S3 targets that cannot be reached or refuse the keys, against the real s3rver.</summary>
public sealed class S3FaultTests
{
    [Fact]
    public async Task S3_target_on_a_closed_port_is_Unreachable_after_its_retries_in_bounded_time()
    {
        var settings = TestTargets.S3rver();
        settings.S3Endpoint = $"http://127.0.0.1:{TestTargets.ClosedPort()}";
        await using var store = BackupTargets.Open("s3://unreachable/wardline", settings);
        var clock = Stopwatch.StartNew();

        var failure = await Assert.ThrowsAsync<BackupStoreException>(() => store.PrepareAsync(CancellationToken.None));

        Assert.Equal(BackupStoreErrorKind.Unreachable, failure.Kind);
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(15));
        Assert.Contains("s3://unreachable/wardline", failure.Message, StringComparison.Ordinal);
    }

    [Fact]
    public async Task S3_target_on_a_closed_port_fails_a_put_as_Unreachable_too()
    {
        var settings = TestTargets.S3rver();
        settings.S3Endpoint = $"http://127.0.0.1:{TestTargets.ClosedPort()}";
        await using var store = BackupTargets.Open("s3://unreachable", settings);

        var failure = await Assert.ThrowsAsync<BackupStoreException>(() => store.PutAsync("segment", new byte[] { 1 }, null, CancellationToken.None));

        Assert.Equal(BackupStoreErrorKind.Unreachable, failure.Kind);
    }

    [Fact]
    // s3rver checks the access key id but does not verify SigV4 signatures, so a wrong secret with the right key id
    // is accepted there (AWS and MinIO refuse it with the same 403 this maps); an unknown key id is what s3rver refuses.
    public async Task S3_target_with_an_unknown_access_key_is_AccessDenied_and_the_secret_is_not_in_the_message()
    {
        var settings = TestTargets.S3rver();
        settings.S3AccessKey = "NOBODY";
        settings.S3SecretKey = "not-the-secret-0123456789";
        await using var store = BackupTargets.Open($"s3://{TestTargets.UniqueName("denied")}", settings);

        var failure = await Assert.ThrowsAsync<BackupStoreException>(() => store.PrepareAsync(CancellationToken.None));

        Assert.Equal(BackupStoreErrorKind.AccessDenied, failure.Kind);
        Assert.DoesNotContain("not-the-secret-0123456789", failure.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task S3_target_reports_that_s3rver_has_no_Object_Lock()
    {
        await using var store = BackupTargets.Open($"s3://{TestTargets.UniqueName("lock")}", TestTargets.S3rver());

        await store.PrepareAsync(CancellationToken.None);

        Assert.False(store.Immutability.Supported);
        Assert.StartsWith("not supported by this target: ", store.Immutability.Description, StringComparison.Ordinal);
    }
}
