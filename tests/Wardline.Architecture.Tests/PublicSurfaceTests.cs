using System.Reflection;
using Wardline.Crypto;
using Wardline.Ledger;
using Wardline.Policy;
using Wardline.Server.Hosting;

namespace Wardline.Architecture.Tests;

/// <summary>
/// Types are internal unless they are a module's public face: the server's host and options, and
/// the crypto kernel's API (used by the server and by the tests of the kernel's formats), the ledger
/// kernel's API (hashing, proofs, entries and signed tree heads, shared by the server and the offline verifier), and the policy
/// kernel's API (model, decision, explanation and residual, used by the server).
/// </summary>
public sealed class PublicSurfaceTests
{
    private static readonly Assembly Crypto = typeof(Keyring).Assembly;
    private static readonly Assembly LedgerKernel = typeof(MerkleHash).Assembly;
    private static readonly Assembly PolicyKernel = typeof(PolicyRule).Assembly;
    private static readonly Assembly Server = typeof(WardlineHost).Assembly;
    private static readonly Assembly Cli = Assembly.Load("wardline");
    private static readonly Assembly Backup = typeof(Wardline.Backup.IBackupStore).Assembly;
    private static readonly Assembly Monitoring = Assembly.Load("Wardline.Monitoring");

    public static TheoryData<string> SrcAssemblies => [Crypto.GetName().Name!, LedgerKernel.GetName().Name!, PolicyKernel.GetName().Name!, Server.GetName().Name!, Cli.GetName().Name!, Backup.GetName().Name!, Monitoring.GetName().Name!];

    private static readonly HashSet<string> AllowedPublic =
    [
        // The backup target contract and its settings (bound from Wardline:Backup:Store), and the format error the CLI reports.
        "Wardline.Backup.Format.BackupFormatException",
        "Wardline.Backup.BackupImmutability",
        "Wardline.Backup.BackupObjectInfo",
        "Wardline.Backup.BackupStoreErrorKind",
        "Wardline.Backup.BackupStoreException",
        "Wardline.Backup.BackupTargets",
        "Wardline.Backup.BackupTargetSettings",
        "Wardline.Backup.IBackupStore",
        "Wardline.Crypto.BlindIndex",
        "Wardline.Crypto.ContentAuthenticator",
        "Wardline.Crypto.DataKey",
        "Wardline.Crypto.EnvelopeCipher",
        "Wardline.Crypto.EnvelopeException",
        "Wardline.Crypto.Keyring",
        "Wardline.Crypto.KeyringException",
        "Wardline.Crypto.WrappedDataKey",
        "Wardline.Ledger.CompactTree",
        "Wardline.Ledger.LedgerEntry",
        "Wardline.Ledger.LedgerFormatException",
        "Wardline.Ledger.MerkleHash",
        "Wardline.Ledger.MerkleTree",
        "Wardline.Ledger.MerkleTree+Range",
        "Wardline.Ledger.ProofCheck",
        "Wardline.Ledger.ProofVerifier",
        "Wardline.Ledger.TreeHead",
        "Wardline.Ledger.TreeHeadSigner",
        "Wardline.Policy.AtomKind",
        "Wardline.Policy.ConditionTrace",
        "Wardline.Policy.Decision",
        "Wardline.Policy.Explanation",
        "Wardline.Policy.PatientFacts",
        "Wardline.Policy.Policy",
        "Wardline.Policy.PolicyAction",
        "Wardline.Policy.PolicyException",
        "Wardline.Policy.PolicyRole",
        "Wardline.Policy.PolicyRule",
        "Wardline.Policy.RequestContext",
        "Wardline.Policy.Residual",
        "Wardline.Policy.Residual+And",
        "Wardline.Policy.Residual+Atom",
        "Wardline.Policy.Residual+Constant",
        "Wardline.Policy.Residual+Not",
        "Wardline.Policy.Residual+Or",
        "Wardline.Policy.ResourceFacts",
        "Wardline.Policy.RuleTrace",
        "Wardline.Policy.SecurityLabels",
        "Wardline.Policy.ShiftWindow",
        "Wardline.Policy.Subject",
        "Wardline.Server.Hosting.WardlineHost",
        "Wardline.Server.Hosting.WardlineOptions",
        "Wardline.Server.Modules.Access.OAuth.ExternalOidcOptions",
        "Wardline.Server.Modules.Access.AccessOptions",
        "Wardline.Server.Modules.Access.RateLimitOptions",
        "Wardline.Server.Modules.Access.NotifyOptions",
        "Wardline.Server.Modules.Backup.BackupOptions",
        "Wardline.Server.Modules.Backup.BackupRetentionOptions",
        "Wardline.Server.Modules.Ledger.LedgerOptions",
        "Wardline.Server.Modules.Monitoring.MonitoringOptions",
        "Wardline.Server.Modules.Monitoring.MonitoringNotifyOptions",
        "Wardline.Server.Modules.Ledger.LedgerExportOptions",
        "Wardline.Server.Modules.Ledger.SiemTlsOptions",
    ];

    [Fact]
    public void Only_the_modules_public_faces_are_public()
    {
        var exposed = new[] { Crypto, LedgerKernel, PolicyKernel, Server, Cli, Backup }
            .SelectMany(a => a.GetExportedTypes())
            .Where(t => !IsTopLevelProgram(t) && !IsConsoleComponent(t))
            .Select(t => t.FullName!)
            .Where(name => !AllowedPublic.Contains(name))
            .Order()
            .ToList();

        Assert.Empty(exposed);
    }

    [Fact]
    public void Every_allowed_public_type_still_exists_and_is_public()
    {
        var exported = new[] { Crypto, LedgerKernel, PolicyKernel, Server, Cli, Backup }.SelectMany(a => a.GetExportedTypes()).Select(t => t.FullName!).ToHashSet();

        var missing = AllowedPublic.Where(name => !exported.Contains(name)).ToList();

        Assert.Empty(missing);
    }

    [Theory]
    [MemberData(nameof(SrcAssemblies))]
    public void Every_type_lives_under_its_assemblys_root_namespace(string assemblyName)
    {
        var assembly = new[] { Crypto, LedgerKernel, PolicyKernel, Server, Cli, Backup, Monitoring }.Single(a => a.GetName().Name == assemblyName);
        // The CLI's assembly is "wardline" (the command's name); its root namespace is Wardline.
        var root = assemblyName == "wardline" ? "Wardline" : assemblyName;

        var strays = assembly.GetTypes()
            .Where(t => !t.IsNested && !IsCompilerOrGeneratorMade(t))
            .Where(t => t.Namespace is null || !(t.Namespace == root || t.Namespace.StartsWith(root + ".", StringComparison.Ordinal)))
            .Select(t => t.FullName!)
            .ToList();

        Assert.Empty(strays);
    }

    /// <summary>
    /// The class the compiler makes for top-level statements (src/Wardline/Program.cs): named
    /// Program, in the global namespace, and public, by the language's choice rather than ours.
    /// </summary>
    /// <summary>
    /// Razor always compiles components public (dotnet/aspnetcore#63041, closed by design), and its
    /// _Imports class with them; the console's are exempt, and only there: anything else under the
    /// console must still be internal.
    /// </summary>
    private static bool IsConsoleComponent(Type t) =>
        t.Namespace?.StartsWith("Wardline.Server.Modules.Console", StringComparison.Ordinal) == true
        && (t.GetInterfaces().Any(i => i.FullName == "Microsoft.AspNetCore.Components.IComponent") || t.Name == "_Imports");

    private static bool IsTopLevelProgram(Type t) => t.Namespace is null && t == t.Assembly.EntryPoint?.DeclaringType;

    /// <summary>
    /// Types the compiler or a source generator emits into fixed namespaces (top-level Program,
    /// embedded attributes, regex and logging generators' helpers), which no one chose.
    /// </summary>
    private static bool IsCompilerOrGeneratorMade(Type t) =>
        IsTopLevelProgram(t)
        || t.Name.StartsWith('<')
        || t.IsDefined(typeof(System.Runtime.CompilerServices.CompilerGeneratedAttribute), false)
        || t.IsDefined(typeof(System.CodeDom.Compiler.GeneratedCodeAttribute), false)
        || t.FullName == "Microsoft.CodeAnalysis.EmbeddedAttribute"
        || (t.Namespace?.StartsWith("System.", StringComparison.Ordinal) == true && t.GetCustomAttributes().Any(a => a.GetType().Name == "EmbeddedAttribute"));
}
