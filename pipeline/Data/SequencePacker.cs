namespace Forgetless.Data;

/// <summary>
/// Builds fixed-length sequences of one source. Pack mode places whole documents one after another (a
/// document never straddles two sequences) and pads the rest; pad mode gives each document its own sequence.
/// Segment ids mark which document each token belongs to, so attention can be kept within documents.
/// </summary>
internal sealed class SequencePacker(int seqLen, int padId, PackingMode mode, string source, string kind)
{
    private readonly List<int> ids = new(seqLen);
    private readonly List<bool> mask = new(seqLen);
    private readonly List<int> segments = new(seqLen);
    private readonly List<string> texts = [];

    /// <summary>Adds a document; returns the sequence it closed, if any.</summary>
    public PreparedSequence? Add(EncodedDocument document)
    {
        PreparedSequence? closed = null;
        if (ids.Count > 0 && (mode == PackingMode.Pad || ids.Count + document.Ids.Length > seqLen))
            closed = Flush();
        texts.Add(document.Text);
        ids.AddRange(document.Ids);
        mask.AddRange(document.LossMask);
        for (var i = 0; i < document.Ids.Length; i++) segments.Add(texts.Count);
        return closed;
    }

    /// <summary>The sequence being built, padded to the sequence length; null when empty.</summary>
    public PreparedSequence? Flush()
    {
        if (ids.Count == 0) return null;
        var length = ids.Count;
        var sequence = new PreparedSequence
        {
            Source = source,
            Kind = kind,
            Length = length,
            InputIds = new int[seqLen],
            LossMask = new bool[seqLen],
            SegmentIds = new int[seqLen],
            Text = [.. texts],
        };
        ids.CopyTo(sequence.InputIds);
        mask.CopyTo(sequence.LossMask);
        segments.CopyTo(sequence.SegmentIds);
        Array.Fill(sequence.InputIds, padId, length, seqLen - length);
        ids.Clear();
        mask.Clear();
        segments.Clear();
        texts.Clear();
        return sequence;
    }
}
