namespace Wardline.Policy;

/// <summary>
/// A policy file is not valid. <see cref="Exception.Message"/> reads <c>file:line:col: what is wrong</c>;
/// line and column are 1-based.
/// </summary>
public sealed class PolicyException : Exception
{
    /// <summary>Creates the exception for a problem at a position in a file.</summary>
    public PolicyException(string file, int line, int column, string problem)
        : base($"{file}:{line}:{column}: {problem}")
    {
        File = file;
        Line = line;
        Column = column;
        Problem = problem;
    }

    /// <summary>Creates the exception with a message and no position.</summary>
    public PolicyException(string message) : base(message)
    {
        File = "";
        Problem = message;
    }

    /// <summary>Creates the exception with a message, no position and the underlying cause.</summary>
    public PolicyException(string message, Exception innerException) : base(message, innerException)
    {
        File = "";
        Problem = message;
    }

    /// <summary>Creates the exception with a generic message.</summary>
    public PolicyException() : this("policy error")
    {
    }

    public string File { get; }

    public int Line { get; }

    public int Column { get; }

    /// <summary>What is wrong, without the position.</summary>
    public string Problem { get; }
}
