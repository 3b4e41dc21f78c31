using Forgetless.FineTuning;
using Forgetless.Model;
using Forgetless.Model.Tokenizers;
using Forgetless.Training;
using TorchSharp;

namespace Forgetless.Distill;

/// <summary>How close a student is to its teacher, and whether a teacher can teach it at all (same tokenizer).</summary>
public static class TeacherAgreement
{
    /// <summary>
    /// Mean per-token KL(teacher ‖ student) in nats over the target tokens of <paramref name="rows"/>, with the full
    /// softmax at temperature 1 (no top-k approximation): the stage's "KL to teacher" metric. Eval mode, no random
    /// generator touched.
    /// </summary>
    public static double MeanKl(CausalLM student, CausalLM teacher, IReadOnlyList<PreparedRow> rows, int batchRows = 8) =>
        TargetTokenMean.Of([student, teacher], rows, batchRows, batch =>
        {
            long width = batch.Targets.shape[1];
            var s = batch.Logits(student).narrow(1, 0, width);
            var t = batch.Logits(teacher).narrow(1, 0, width);
            using var tokens = ((double)batch.TargetTokens).ToScalar();
            return Distillation.ForwardKl(s, t, batch.TargetMask).to(TorchSharp.torch.ScalarType.Float64).mul(tokens);
        });

    /// <summary>
    /// Throws a <see cref="UserInputException"/> unless the teacher's tokenizer maps text to the same ids as the base
    /// model's: same vocabulary size, and every probe text encodes identically.
    /// </summary>
    public static void CheckSameTokenizer(ITokenizer baseTokenizer, int baseVocab, ITokenizer teacherTokenizer, int teacherVocab,
        string teacherDirectory, IEnumerable<string> probes)
    {
        string Where() => $"distill.teacher = {teacherDirectory}";
        if (teacherVocab != baseVocab)
            throw new UserInputException($"{Where()}: the teacher's vocabulary has {teacherVocab} entries, the base model's {baseVocab}; " +
                                         "distillation compares per-token distributions, so the teacher must use the base model's tokenizer");
        if (teacherTokenizer.VocabSize != baseTokenizer.VocabSize)
            throw new UserInputException($"{Where()}: its tokenizer has {teacherTokenizer.VocabSize} ids, the base model's {baseTokenizer.VocabSize}; " +
                                         "the teacher must use the base model's tokenizer");
        foreach (var text in probes)
        {
            int[] a, b;
            try { a = baseTokenizer.Encode(text); }
            catch (InvalidOperationException) { continue; } // a probe the base tokenizer cannot encode tells nothing
            string? failure = null;
            try { b = teacherTokenizer.Encode(text); }
            catch (InvalidOperationException e) { b = []; failure = e.Message; }
            if (failure is not null)
                throw new UserInputException($"{Where()}: its tokenizer differs from the base model's — it cannot encode text the base model's encodes ({failure})");
            if (!a.AsSpan().SequenceEqual(b))
            {
                string shown = text.Length > 60 ? text[..60] + "…" : text;
                throw new UserInputException($"{Where()}: its tokenizer differs from the base model's — \"{shown}\" encodes as " +
                                             $"[{string.Join(", ", b.Take(12))}{(b.Length > 12 ? ", …" : "")}] instead of [{string.Join(", ", a.Take(12))}{(a.Length > 12 ? ", …" : "")}]");
            }
        }
    }
}
