using Wardline.Backup.Tests.Infrastructure;

namespace Wardline.Backup.Tests.Stores;

/// <summary>The contract on Azure Blob Storage, as Azurite (started by test.sh) implements it; one container per test.</summary>
public sealed class AzuriteStoreConformanceTests : BackupStoreConformance
{
    protected override IBackupStore OpenFreshStore() =>
        BackupTargets.Open($"azure://devstoreaccount1/{TestTargets.UniqueName("conformance")}/wardline", TestTargets.Azurite());

    // Azurite has no blob immutability (no version-level WORM); real Azure with it enabled would report true.
    protected override bool ExpectedImmutability => false;
}
