namespace Forgetless.Model.Tokenizers;

/// <summary>A token matched verbatim in the input before BPE (e.g. <c>&lt;|endoftext|&gt;</c>).</summary>
public sealed record AddedToken(int Id, string Content, bool Special);
