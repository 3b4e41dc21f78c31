namespace Forgetless.Continual;

/// <summary>
/// A bounded, uniform sample of a stream (reservoir sampling, Vitter's algorithm R): after n items every item seen
/// has been kept with probability capacity / n, whatever the order, using one seeded random draw per item past the
/// capacity. The replay buffer of a task sequence keeps earlier tasks' rows this way, so its size never grows and no
/// task crowds out another by having come first or last.
/// </summary>
public sealed class Reservoir<T>(int capacity, ulong seed)
{
    private readonly List<T> items = [];
    private readonly Random random = new(unchecked((int)(seed ^ (seed >> 32))));

    public int Capacity { get; } = capacity > 0 ? capacity : throw new ArgumentOutOfRangeException(nameof(capacity), "must be positive");

    /// <summary>Items offered so far.</summary>
    public long Seen { get; private set; }

    public IReadOnlyList<T> Items => items;

    public void Offer(T item)
    {
        Seen++;
        if (items.Count < Capacity)
        {
            items.Add(item);
            return;
        }
        // Keep the n-th item with probability capacity / n, in place of a uniformly chosen kept one.
        long j = random.NextInt64(Seen);
        if (j < Capacity) items[(int)j] = item;
    }

    public void OfferAll(IEnumerable<T> stream)
    {
        foreach (var item in stream) Offer(item);
    }
}
