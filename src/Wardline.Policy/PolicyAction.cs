namespace Wardline.Policy;

/// <summary>What a subject asks to do with a resource.</summary>
public enum PolicyAction
{
    Read,
    Search,
    Create,
    Update,
    Delete,
    Export,
}
