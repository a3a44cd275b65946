using System.Diagnostics;
using Wardline.Backup.Tests.Infrastructure;

namespace Wardline.Backup.Tests.Stores;

/// <summary>Azure Blob Storage targets that cannot be reached or refuse the key; the real Azurite checks account keys.</summary>
public sealed class AzureFaultTests
{
    [Fact]
    public async Task Azure_target_on_a_closed_port_is_Unreachable_after_its_retries_in_bounded_time()
    {
        var settings = TestTargets.Azurite();
        settings.AzureConnectionString = TestTargets.AzuriteConnectionStringOnPort(TestTargets.ClosedPort());
        await using var store = BackupTargets.Open("azure://devstoreaccount1/unreachable", settings);
        var clock = Stopwatch.StartNew();

        var failure = await Assert.ThrowsAsync<BackupStoreException>(() => store.PrepareAsync(CancellationToken.None));

        Assert.Equal(BackupStoreErrorKind.Unreachable, failure.Kind);
        Assert.InRange(clock.Elapsed, TimeSpan.Zero, TimeSpan.FromSeconds(15));
        Assert.Contains("azure://devstoreaccount1/unreachable", failure.Message, StringComparison.Ordinal);
        Assert.DoesNotContain("AccountKey", failure.Message, StringComparison.OrdinalIgnoreCase);
    }

    [Fact]
    public async Task Azure_target_on_a_closed_port_fails_a_put_as_Unreachable_too()
    {
        var settings = TestTargets.Azurite();
        settings.AzureConnectionString = TestTargets.AzuriteConnectionStringOnPort(TestTargets.ClosedPort());
        await using var store = BackupTargets.Open("azure://devstoreaccount1/unreachable", settings);

        var failure = await Assert.ThrowsAsync<BackupStoreException>(() => store.PutAsync("segment", new byte[] { 1 }, null, CancellationToken.None));

        Assert.Equal(BackupStoreErrorKind.Unreachable, failure.Kind);
    }

    [Fact]
    public async Task Azure_target_with_a_wrong_account_key_is_AccessDenied_and_the_key_is_not_in_the_message()
    {
        var settings = TestTargets.Azurite();
        settings.AzureConnectionString = TestTargets.AzuriteConnectionStringWithWrongKey();
        await using var store = BackupTargets.Open($"azure://devstoreaccount1/{TestTargets.UniqueName("denied")}", settings);

        var failure = await Assert.ThrowsAsync<BackupStoreException>(() => store.PrepareAsync(CancellationToken.None));

        Assert.Equal(BackupStoreErrorKind.AccessDenied, failure.Kind);
        Assert.DoesNotContain(Convert.ToBase64String(new byte[64]), failure.ToString(), StringComparison.Ordinal);
        Assert.DoesNotContain("Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq", failure.ToString(), StringComparison.Ordinal);
    }

    [Fact]
    public async Task Azure_target_reports_that_Azurite_cannot_lock_objects()
    {
        await using var store = BackupTargets.Open($"azure://devstoreaccount1/{TestTargets.UniqueName("lock")}", TestTargets.Azurite());

        await store.PrepareAsync(CancellationToken.None);

        Assert.False(store.Immutability.Supported);
        Assert.Contains("version-level immutability", store.Immutability.Description, StringComparison.Ordinal);
    }
}
