using System.Text;
using Wardline.Backup.Format;
using Wardline.Crypto;

namespace Wardline.Backup.Tests.Format;

public sealed class ManifestTests : IDisposable
{
    private readonly string _folder = Directory.CreateTempSubdirectory("wardline-manifest-").FullName;

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    private Keyring NewKeyring(string name) => Keyring.LoadOrCreate(Path.Combine(_folder, name), null);

    private static Manifest Sample(DateTimeOffset created) => new()
    {
        Id = Manifest.NewId(created),
        Created = created,
        Kind = "incremental",
        Chain = "20261128-000000000-00000000",
        Parent = "manifests/0000000000000010-20261128-000000000-00000000.json",
        Engine = "postgres",
        Schema = 8,
        LedgerFrom = 10,
        LedgerSize = 42,
        LedgerRoot = new string('a', 64),
        Keks = ["kek-1"],
        Objects = [new ManifestObject { Name = "segments/x/ledger-1.seg", Sha256 = new string('b', 64), Bytes = 10, Kind = "ledger", From = 10, To = 42, Rows = 32, Fingerprint = new string('c', 64) }],
    };

    [Fact]
    public void A_sealed_manifest_opens_to_the_same_backup()
    {
        var auth = new ContentAuthenticator(NewKeyring("k.json"), "backup.manifest");
        var m = Sample(DateTimeOffset.UtcNow);

        var opened = Manifest.Open(auth, m.Name, m.Seal(auth));

        Assert.Equal(m.Id, opened.Id);
        Assert.Equal(m.LedgerSize, opened.LedgerSize);
        Assert.Equal(m.Objects[0], opened.Objects[0]);
        Assert.StartsWith("manifests/0000000000000042-", m.Name, StringComparison.Ordinal);
    }

    [Fact]
    public void A_manifest_made_with_another_keyring_is_refused()
    {
        var m = Sample(DateTimeOffset.UtcNow);
        var bytes = m.Seal(new ContentAuthenticator(NewKeyring("a.json"), "backup.manifest"));

        var ex = Assert.Throws<BackupFormatException>(() => Manifest.Open(new ContentAuthenticator(NewKeyring("b.json"), "backup.manifest"), m.Name, bytes));

        Assert.Contains("not signed by this keyring", ex.Message, StringComparison.Ordinal);
    }

    [Fact]
    public void An_edited_manifest_is_refused()
    {
        var auth = new ContentAuthenticator(NewKeyring("k.json"), "backup.manifest");
        var m = Sample(DateTimeOffset.UtcNow);
        var text = Encoding.UTF8.GetString(m.Seal(auth)).Replace("\"ledgerSize\":42", "\"ledgerSize\":41", StringComparison.Ordinal);

        Assert.Throws<BackupFormatException>(() => Manifest.Open(auth, m.Name, Encoding.UTF8.GetBytes(text)));
    }

    [Fact]
    public void A_manifest_without_a_tag_or_renamed_is_refused()
    {
        var auth = new ContentAuthenticator(NewKeyring("k.json"), "backup.manifest");
        var m = Sample(DateTimeOffset.UtcNow);
        var bytes = m.Seal(auth);

        Assert.Contains("no tag", Assert.Throws<BackupFormatException>(() => Manifest.Open(auth, m.Name, Encoding.UTF8.GetBytes("{\"format\":1}"))).Message, StringComparison.Ordinal);
        Assert.Contains("renamed", Assert.Throws<BackupFormatException>(() => Manifest.Open(auth, "manifests/0000000000000099-x.json", bytes)).Message, StringComparison.Ordinal);
    }

    [Fact]
    public void The_manifest_tag_survives_a_key_rotation()
    {
        var keyring = NewKeyring("k.json");
        var m = Sample(DateTimeOffset.UtcNow);
        var bytes = m.Seal(new ContentAuthenticator(keyring, "backup.manifest"));

        var rotated = keyring.Rotate(null);

        Assert.Equal(m.Id, Manifest.Open(new ContentAuthenticator(rotated, "backup.manifest"), m.Name, bytes).Id);
    }

    [Fact]
    public void Manifest_names_sort_by_ledger_size_whatever_the_clock_said()
    {
        var early = Sample(DateTimeOffset.UtcNow.AddHours(5)) with { LedgerSize = 9 };
        var late = Sample(DateTimeOffset.UtcNow) with { LedgerSize = 10 };

        Assert.True(string.CompareOrdinal(early.Name, late.Name) < 0);
    }
}
