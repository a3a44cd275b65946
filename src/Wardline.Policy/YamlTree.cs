using YamlDotNet.Core;
using YamlDotNet.Core.Events;

namespace Wardline.Policy;

/// <summary>A YAML node with the 1-based position where it starts.</summary>
internal abstract class YNode(int line, int column)
{
    public int Line { get; } = line;

    public int Column { get; } = column;

    /// <summary>The node in YAML flow style, for rule texts and messages.</summary>
    public abstract string Flow();
}

internal sealed class YScalar(int line, int column, string value, ScalarStyle style) : YNode(line, column)
{
    public string Value { get; } = value;

    /// <summary>Plain (unquoted) scalars may be numbers, booleans or null; quoted ones are always strings.</summary>
    public bool IsPlain { get; } = style is ScalarStyle.Plain or ScalarStyle.Any;

    public bool IsNull => IsPlain && Value is "" or "~" or "null" or "Null" or "NULL";

    private static readonly System.Buffers.SearchValues<char> FlowSpecial = System.Buffers.SearchValues.Create(",:[]{}#'\"");

    public override string Flow() =>
        IsPlain && Value.Length > 0 && Value.AsSpan().IndexOfAny(FlowSpecial) < 0 ? Value : "'" + Value.Replace("'", "''", StringComparison.Ordinal) + "'";
}

internal sealed class YSequence(int line, int column, List<YNode> items) : YNode(line, column)
{
    public IReadOnlyList<YNode> Items { get; } = items;

    public override string Flow() => "[" + string.Join(", ", Items.Select(i => i.Flow())) + "]";
}

internal sealed class YMapping(int line, int column, List<KeyValuePair<YScalar, YNode>> entries) : YNode(line, column)
{
    public IReadOnlyList<KeyValuePair<YScalar, YNode>> Entries { get; } = entries;

    public override string Flow() => "{" + string.Join(", ", Entries.Select(e => e.Key.Flow() + ": " + e.Value.Flow())) + "}";
}

/// <summary>
/// Reads one YAML document into a small node tree straight from YamlDotNet's parser events, so every
/// problem is reported with its position and the input is bounded: no anchors or aliases (which is what
/// makes a "billion laughs" bomb; the policy format has <c>sets</c> for sharing lists), no tags, nesting
/// at most <see cref="MaxDepth"/> deep, one document only, and mapping keys unique.
/// </summary>
internal static class YamlTree
{
    public const int MaxDepth = 16;

    /// <summary>Returns the document's root, or null when the text holds no document.</summary>
    public static YNode? Read(string text, string file)
    {
        var parser = new Parser(new StringReader(text));
        var last = Mark.Empty;
        try
        {
            Next(parser, ref last);
            Expect<StreamStart>(parser, file);
            Next(parser, ref last);
            if (parser.Current is StreamEnd) return null;
            Expect<DocumentStart>(parser, file);
            Next(parser, ref last);
            var root = ReadNode(parser, file, 1, ref last);
            Next(parser, ref last);
            Expect<DocumentEnd>(parser, file);
            Next(parser, ref last);
            if (parser.Current is not StreamEnd)
            {
                throw Error(file, parser.Current!.Start, "a policy file holds one YAML document; found a second one");
            }
            return root;
        }
        catch (YamlException e)
        {
            // YamlDotNet places a tab used as indentation at the start of the enclosing mapping (often
            // line 1); the tab itself is the useful position.
            if (e.Message.Contains("tab", StringComparison.OrdinalIgnoreCase) && IndentingTab(text) is var (line, column))
            {
                throw new PolicyException(file, line, column, "YAML syntax error: a tab in the indentation; YAML indents with spaces");
            }
            throw new PolicyException(file, Math.Max(1, (int)e.Start.Line), Math.Max(1, (int)e.Start.Column), "YAML syntax error: " + Clean(e.Message));
        }
        catch (InvalidOperationException)
        {
            // YamlDotNet's scanner throws this (instead of a YamlException) on some malformed input,
            // e.g. an unclosed flow sequence; the last event read is the best position there is.
            throw new PolicyException(file, Math.Max(1, (int)last.Line), Math.Max(1, (int)last.Column), "YAML syntax error: the text after this point is not valid YAML (an unclosed bracket or quote?)");
        }
    }

    private static YNode ReadNode(Parser parser, string file, int depth, ref Mark last)
    {
        var current = parser.Current!;
        if (depth > MaxDepth) throw Error(file, current.Start, $"nested more than {MaxDepth} levels deep");
        switch (current)
        {
            case AnchorAlias alias:
                throw Error(file, alias.Start, "YAML aliases (*name) are not allowed in a policy file; use a named list under 'sets' instead");
            case NodeEvent { Anchor.IsEmpty: false } node:
                throw Error(file, node.Start, $"YAML anchors (&{node.Anchor.Value}) are not allowed in a policy file; use a named list under 'sets' instead");
            case NodeEvent { Tag.IsEmpty: false } node:
                throw Error(file, node.Start, $"YAML tags ({node.Tag.Value}) are not allowed in a policy file");
            case Scalar scalar:
                return new YScalar(Line(scalar.Start), Column(scalar.Start), scalar.Value, scalar.Style);
            case SequenceStart start:
            {
                var items = new List<YNode>();
                while (true)
                {
                    Next(parser, ref last);
                    if (parser.Current is SequenceEnd) break;
                    items.Add(ReadNode(parser, file, depth + 1, ref last));
                }
                return new YSequence(Line(start.Start), Column(start.Start), items);
            }
            case MappingStart start:
            {
                var entries = new List<KeyValuePair<YScalar, YNode>>();
                var seen = new HashSet<string>(StringComparer.Ordinal);
                while (true)
                {
                    Next(parser, ref last);
                    if (parser.Current is MappingEnd) break;
                    var keyNode = ReadNode(parser, file, depth + 1, ref last);
                    if (keyNode is not YScalar key || key.IsNull)
                    {
                        throw Error(file, keyNode, "a mapping key must be a plain name");
                    }
                    if (!seen.Add(key.Value)) throw Error(file, key, $"duplicate key '{key.Value}'");
                    Next(parser, ref last);
                    entries.Add(KeyValuePair.Create(key, ReadNode(parser, file, depth + 1, ref last)));
                }
                return new YMapping(Line(start.Start), Column(start.Start), entries);
            }
            default:
                throw Error(file, current.Start, $"unexpected YAML {current.GetType().Name}");
        }
    }

    private static void Next(Parser parser, ref Mark last)
    {
        if (parser.Current is { } current) last = current.End;
        if (!parser.MoveNext()) throw new YamlException(last, last, "unexpected end of the YAML stream");
    }

    private static void Expect<T>(Parser parser, string file) where T : ParsingEvent
    {
        if (parser.Current is not T) throw Error(file, parser.Current!.Start, $"unexpected YAML {parser.Current.GetType().Name}");
    }

    /// <summary>The first tab in a line's leading whitespace, if any.</summary>
    private static (int Line, int Column)? IndentingTab(string text)
    {
        var line = 1;
        var column = 1;
        var leading = true;
        foreach (var c in text)
        {
            if (c == '\n')
            {
                line++;
                column = 1;
                leading = true;
                continue;
            }
            if (leading && c == '\t') return (line, column);
            if (c != ' ') leading = false;
            column++;
        }
        return null;
    }

    private static int Line(Mark mark) => Math.Max(1, (int)mark.Line);

    private static int Column(Mark mark) => Math.Max(1, (int)mark.Column);

    private static PolicyException Error(string file, Mark mark, string problem) => new(file, Line(mark), Column(mark), problem);

    private static PolicyException Error(string file, YNode node, string problem) => new(file, node.Line, node.Column, problem);

    /// <summary>YamlDotNet's messages start with "(Line: 3, Col: 5, Idx: 20) - (...): "; the position is given separately.</summary>
    private static string Clean(string message)
    {
        var at = message.IndexOf("): ", StringComparison.Ordinal);
        return message.StartsWith("(Line", StringComparison.Ordinal) && at > 0 ? message[(at + 3)..] : message;
    }
}
