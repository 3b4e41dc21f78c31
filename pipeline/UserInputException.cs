namespace Forgetless;

/// <summary>
/// Base of every error a user can cause with their files or settings (a bad row, a bad tensor
/// shape, a missing file). The message is complete — file, line or key, and what was expected —
/// so the command line prints it alone, without a stack trace.
/// </summary>
public class UserInputException(string message, Exception? inner = null) : Exception(message, inner);
