using System.Globalization;
using TorchSharp;
using static TorchSharp.torch;

// The race FL0001 prevents, made visible. One thread forces garbage collections without pause while this one runs
// a tensor op millions of times, four ways: a number made into a Scalar for the call (x.mul(0.5)), the same with a
// held Scalar, TorchSharp's add(y) (which makes its alpha of 1 inside), and add(y, held one). A temporary finalized
// during its call surfaces as libtorch's "Expected false to be true" (the scalar's kind tag is overwritten) or a
// wrong value. A fifth case runs a temporary Tensor as the receiver (x.mul(half).neg()) inside a DisposeScope, which
// keeps it reachable. With --tensor a sixth follows: the same without a scope, where TorchSharp's Tensor finalizer
// frees the temporary the same way; it ends the process with SIGSEGV (measured: within 3 s). Usage: scalar-race [seconds per case, default 20] [--tensor]
int seconds = args.Length > 0 && !args[0].StartsWith('-') ? int.Parse(args[0], CultureInfo.InvariantCulture) : 20;
bool tensorCase = args.Contains("--tensor");
torch.set_num_threads(1);
using var x = ones(8);
using var y = ones(8);
using Scalar half = 0.5, one = 1;
(string Name, Func<Tensor> Op, float Expected)[] cases =
[
    ("x.mul(0.5)         temporary", () => x.mul(0.5), 0.5f),
    ("x.mul(half)        held", () => x.mul(half), 0.5f),
    ("x.add(y)           temporary inside TorchSharp", () => x.add(y), 2f),
    ("x.add(y, one)      held", () => x.add(y, one), 2f),
    ("x.mul(half).neg()  in a DisposeScope", () => { using var scope = NewDisposeScope(); return x.mul(half).neg().MoveToOuterDisposeScope(); }, -0.5f),
];
if (tensorCase) cases = [.. cases, ("x.mul(half).neg()  temporary Tensor, no DisposeScope (expect SIGSEGV)", () => x.mul(half).neg(), -0.5f)];
foreach (var (name, op, expected) in cases)
{
    Console.Write(name + ": ");
    Console.Out.Flush(); // the tensor case may end the process
    var stop = DateTime.UtcNow.AddSeconds(seconds);
    var collector = new Thread(() => { while (DateTime.UtcNow < stop) { GC.Collect(); GC.WaitForPendingFinalizers(); } }) { IsBackground = true };
    collector.Start();
    long calls = 0, errors = 0, wrong = 0;
    string? first = null;
    while (DateTime.UtcNow < stop)
    {
        for (int i = 0; i < 1000; i++, calls++)
        {
            try
            {
                using var result = op();
                if (result.data<float>()[0] != expected) wrong++;
            }
            catch (Exception e)
            {
                errors++;
                first ??= e.Message.Split('\n')[0];
            }
        }
    }
    collector.Join();
    Console.WriteLine($"{calls:N0} calls in {seconds} s, {errors} errors, {wrong} wrong values{(first is null ? "" : $" (first: {first})")}");
}
