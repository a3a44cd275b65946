using Wardline.Server.Tests.Infrastructure;
using Wardline.Server.Tests.Modules.Ledger.Infrastructure;
using static Wardline.Server.Tests.Modules.Ledger.Infrastructure.LedgerTestKit;

namespace Wardline.Server.Tests.Modules.Ledger;

/// <summary>
/// The witness is what catches a rollback; a witness emptied or swapped for a fresh folder must not
/// quietly start over: verification and the start-up check say it was lost.
/// </summary>
public abstract class WitnessLossConformance(StoreKind kind) : SeededLedgerStore(kind)
{
    [Fact]
    public async Task A_witness_folder_emptied_after_heads_were_signed_is_reported_by_verify_and_at_start()
    {
        var witness = WitnessFolder(Store.Options);
        Directory.Delete(witness, recursive: true);

        var result = await VerifyAsync(Store.Options);
        await using var server = await StartAsync(Store);
        var created = await server.Client.PostJsonAsync("Patient", FhirTest.Patient("AfterLoss"));

        Assert.True(result.ExitCode == 1, result.Output);
        Assert.Contains("witness was lost or replaced", result.Flat, StringComparison.Ordinal);
        Assert.Equal(System.Net.HttpStatusCode.ServiceUnavailable, created.StatusCode);
        Assert.Contains("witness was lost or replaced", await created.Content.ReadAsStringAsync(), StringComparison.Ordinal);
        Assert.False(File.Exists(Path.Combine(witness, "key.pub")), "a read-only server must not pin a new key in a fresh witness");
    }
}

public sealed class WitnessLossOnSqlite() : WitnessLossConformance(StoreKind.Sqlite);

public sealed class WitnessLossOnPostgres() : WitnessLossConformance(StoreKind.Postgres);
