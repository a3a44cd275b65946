namespace Wardline.Policy;

/// <summary>A role declared in the policy file.</summary>
public sealed class PolicyRole
{
    internal PolicyRole(string name, string title, bool clinical, string description)
    {
        Name = name;
        Title = title;
        Clinical = clinical;
        Description = description;
    }

    public string Name { get; }

    public string Title { get; }

    public bool Clinical { get; }

    public string Description { get; }
}
