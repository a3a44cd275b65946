using Wardline.Crypto;

namespace Wardline.Server.Tests.EndToEnd;

/// <summary>`wardline keys escrow`: a passphrase-protected copy of the keyring for the key safe.</summary>
public sealed class KeyEscrowTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("wardline-escrow-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public async Task Escrow_copy_opens_with_the_escrow_passphrase_only_and_holds_the_same_keys()
    {
        var data = Path.Combine(_folder, "data");
        Assert.Equal(0, (await WardlineCli.RunAsync(["users", "add", "escrow.test", "--data", data])).ExitCode);
        var escrowFile = Path.Combine(_folder, "escrow.json");
        const string passphrase = "correct horse battery staple";

        var result = await WardlineCli.RunAsync(["keys", "escrow", "--data", data, "--out", escrowFile], escrowPassphrase: passphrase);

        Assert.Equal(0, result.ExitCode);
        var original = Keyring.Load(Path.Combine(data, "keyring.json"), null);
        var copy = Keyring.Load(escrowFile, passphrase);
        Assert.Equal(original.KekIds, copy.KekIds);
        Assert.Equal(original.ActiveKekId, copy.ActiveKekId);
        Assert.Throws<KeyringException>(() => Keyring.Load(escrowFile, "a wrong passphrase entirely"));
        Assert.Throws<KeyringException>(() => Keyring.Load(escrowFile, null));
        if (OperatingSystem.IsWindows()) throw new PlatformNotSupportedException("Key file modes are checked on Unix.");
        Assert.Equal(UnixFileMode.UserRead | UnixFileMode.UserWrite, File.GetUnixFileMode(escrowFile));
    }

    [Fact]
    public async Task Escrow_refuses_a_missing_or_short_passphrase_and_an_existing_file()
    {
        var data = Path.Combine(_folder, "data");
        Assert.Equal(0, (await WardlineCli.RunAsync(["users", "add", "escrow.test", "--data", data])).ExitCode);
        var escrowFile = Path.Combine(_folder, "escrow.json");

        var none = await WardlineCli.RunAsync(["keys", "escrow", "--data", data, "--out", escrowFile]);
        Assert.Equal(2, none.ExitCode);
        Assert.Contains("WARDLINE_ESCROW_PASSPHRASE", none.Output);
        Assert.Equal(2, (await WardlineCli.RunAsync(["keys", "escrow", "--data", data, "--out", escrowFile], escrowPassphrase: "short")).ExitCode);
        Assert.False(File.Exists(escrowFile));

        await File.WriteAllTextAsync(escrowFile, "occupied");
        var exists = await WardlineCli.RunAsync(["keys", "escrow", "--data", data, "--out", escrowFile], escrowPassphrase: "a long enough escrow passphrase");
        Assert.Equal(3, exists.ExitCode);
        Assert.Equal("occupied", await File.ReadAllTextAsync(escrowFile));
    }
}
