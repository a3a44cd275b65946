using System.Text.RegularExpressions;

namespace Wardline.Architecture.Tests;

/// <summary>Rules read straight off the source files under src/.</summary>
public sealed partial class SourceRulesTests
{
    public static TheoryData<string, string> ForbiddenText => new()
    {
        { "#nullable disable", "nullable analysis is on everywhere, with no opt-outs" },
        { "NotImplementedException", "an unfinished member must not ship" },
        { "{@", "structured-logging destructuring would write whole objects (resource content) into the log" },
    };

    [Theory]
    [MemberData(nameof(ForbiddenText))]
    public void No_source_file_contains(string text, string why)
    {
        var files = SourceTree.SourceFiles().ToList();

        var offending = files
            .SelectMany(f => File.ReadLines(f).Select((line, i) => (File: f, Line: i + 1, Text: line)))
            .Where(l => l.Text.Contains(text, StringComparison.Ordinal))
            .Select(l => $"{SourceTree.Relative(l.File)}:{l.Line}: {l.Text.Trim()}")
            .ToList();

        Assert.NotEmpty(files);
        Assert.True(offending.Count == 0, $"'{text}' is not allowed ({why}):\n{string.Join("\n", offending)}");
    }

    [Fact]
    public void Every_source_files_namespace_matches_its_folder()
    {
        var mismatches = new List<string>();
        foreach (var file in SourceTree.SourceFiles())
        {
            var parts = SourceTree.Relative(file).Split('/')[1..^1]; // drop "src/" and the file name
            var project = parts[0];
            var root = project == "Wardline" ? "Wardline" : project;
            var expected = string.Join('.', [root, .. parts[1..]]);
            var declared = NamespaceDeclaration().Match(File.ReadAllText(file));
            if (declared.Success && declared.Groups[1].Value != expected)
            {
                mismatches.Add($"{SourceTree.Relative(file)}: namespace {declared.Groups[1].Value}, folder says {expected}");
            }
        }

        Assert.Empty(mismatches);
    }

    [GeneratedRegex(@"^namespace\s+([\w.]+)\s*;", RegexOptions.Multiline)]
    private static partial Regex NamespaceDeclaration();
}
