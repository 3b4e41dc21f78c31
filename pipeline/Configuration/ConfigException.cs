namespace Forgetless.Configuration;

/// <summary>A problem in the user's pipeline configuration; the message names the file and key.</summary>
public sealed class ConfigException(string message) : UserInputException(message);

/// <summary>Options that can check themselves after binding; each error names the key, value and what is allowed.</summary>
public interface IValidatableOptions
{
    IEnumerable<string> Validate();
}
