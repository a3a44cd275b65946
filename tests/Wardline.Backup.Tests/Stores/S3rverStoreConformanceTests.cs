using Wardline.Backup.Tests.Infrastructure;

namespace Wardline.Backup.Tests.Stores;

/// <summary>The contract on S3, as s3rver (started by test.sh) implements it; one bucket per test.</summary>
public sealed class S3rverStoreConformanceTests : BackupStoreConformance
{
    protected override IBackupStore OpenFreshStore() =>
        BackupTargets.Open($"s3://{TestTargets.UniqueName("conformance")}/wardline", TestTargets.S3rver());

    // s3rver has no Object Lock.
    protected override bool ExpectedImmutability => false;
}
