using System.Xml.Linq;
using Wardline.Crypto;
using Wardline.Ledger;
using Wardline.Policy;

namespace Wardline.Architecture.Tests;

/// <summary>The security kernel (crypto, ledger, policy) stays small: no web framework, no database, no FHIR model.</summary>
public sealed class KernelTests
{
    private static readonly string[] Forbidden =
    [
        "Microsoft.AspNetCore",
        "Microsoft.EntityFrameworkCore",
        "Npgsql",
        "Microsoft.Data.Sqlite",
        "Hl7.Fhir",
    ];

    [Fact]
    public void The_crypto_kernel_references_no_web_framework_database_or_fhir_assembly()
    {
        var referenced = typeof(Keyring).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();

        var offending = referenced.Where(name => Forbidden.Any(f => name.StartsWith(f, StringComparison.OrdinalIgnoreCase))).ToList();

        Assert.Empty(offending);
        Assert.Contains("System.Security.Cryptography", referenced); // the check saw real references
    }

    [Fact]
    public void The_ledger_kernel_references_no_web_framework_database_or_fhir_assembly()
    {
        var referenced = typeof(MerkleHash).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();

        var offending = referenced.Where(name => Forbidden.Any(f => name.StartsWith(f, StringComparison.OrdinalIgnoreCase))).ToList();

        Assert.Empty(offending);
        Assert.Contains("System.Security.Cryptography", referenced); // the check saw real references
    }

    [Fact]
    public void The_backup_formats_and_targets_reference_no_web_framework_database_or_fhir_assembly()
    {
        // Restore reads a target before any store or server exists; the CLI and benchmarks use it without a host.
        var referenced = typeof(Wardline.Backup.IBackupStore).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();

        var offending = referenced.Where(name => Forbidden.Any(f => name.StartsWith(f, StringComparison.OrdinalIgnoreCase))).ToList();

        Assert.Empty(offending);
        Assert.Contains("Wardline.Crypto", referenced); // the check saw real references
    }

    [Fact]
    public void The_policy_kernel_references_no_web_framework_database_or_fhir_assembly()
    {
        var referenced = typeof(PolicyRule).Assembly.GetReferencedAssemblies().Select(a => a.Name!).ToList();

        var offending = referenced.Where(name => Forbidden.Any(f => name.StartsWith(f, StringComparison.OrdinalIgnoreCase))).ToList();

        Assert.Empty(offending);
        Assert.Contains("YamlDotNet", referenced); // the check saw real references
    }

    [Fact]
    public void The_monitoring_engine_references_no_web_framework_database_or_fhir_assembly()
    {
        // The detections run in the server, the CLI's replay, the benchmark and the evaluation alike.
        var referenced = System.Reflection.Assembly.Load("Wardline.Monitoring").GetReferencedAssemblies().Select(a => a.Name!).ToList();

        var offending = referenced.Where(name => Forbidden.Any(f => name.StartsWith(f, StringComparison.OrdinalIgnoreCase))).ToList();

        Assert.Empty(offending);
        Assert.Contains("Wardline.Policy", referenced); // the check saw real references
    }

    [Fact]
    public void The_monitoring_engine_project_references_only_the_policy_kernel()
    {
        var project = XDocument.Load(Path.Combine(SourceTree.Src, "Wardline.Monitoring", "Wardline.Monitoring.csproj"));

        var references = project.Descendants()
            .Where(e => e.Name.LocalName is "PackageReference" or "FrameworkReference" or "ProjectReference")
            .Select(e => $"{e.Name.LocalName} {(string?)e.Attribute("Include")}")
            .ToList();

        Assert.Equal(["ProjectReference ../Wardline.Policy/Wardline.Policy.csproj"], references);
    }

    [Fact]
    public void The_policy_kernel_project_references_only_yamldotnet()
    {
        var project = XDocument.Load(Path.Combine(SourceTree.Src, "Wardline.Policy", "Wardline.Policy.csproj"));

        var references = project.Descendants()
            .Where(e => e.Name.LocalName is "PackageReference" or "FrameworkReference" or "ProjectReference")
            .Select(e => $"{e.Name.LocalName} {(string?)e.Attribute("Include")}")
            .ToList();

        Assert.Equal(["PackageReference YamlDotNet"], references);
    }

    [Fact]
    public void The_crypto_kernel_project_has_no_package_or_framework_references()
    {
        var project = XDocument.Load(Path.Combine(SourceTree.Src, "Wardline.Crypto", "Wardline.Crypto.csproj"));

        var references = project.Descendants()
            .Where(e => e.Name.LocalName is "PackageReference" or "FrameworkReference" or "ProjectReference")
            .Select(e => $"{e.Name.LocalName} {(string?)e.Attribute("Include")}")
            .ToList();

        Assert.Empty(references);
    }

    [Fact]
    public void The_ledger_kernel_project_has_no_package_framework_or_project_references()
    {
        var project = XDocument.Load(Path.Combine(SourceTree.Src, "Wardline.Ledger", "Wardline.Ledger.csproj"));

        var references = project.Descendants()
            .Where(e => e.Name.LocalName is "PackageReference" or "FrameworkReference" or "ProjectReference")
            .Select(e => $"{e.Name.LocalName} {(string?)e.Attribute("Include")}")
            .ToList();

        Assert.Empty(references);
    }
}
