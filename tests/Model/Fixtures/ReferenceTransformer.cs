using System.Text.Json.Nodes;

namespace Forgetless.Tests.Model.Fixtures;

/// <summary>
/// Independent oracle: the published Llama/Qwen2 and GPT-2 forward passes written as scalar loops in
/// double precision over the checkpoint's tensors. It shares no code with the production model.
/// </summary>
/// <remarks>
/// With a prefix it computes what HF PEFT's prefix tuning does (<c>PeftModelForCausalLM.forward</c>): the table
/// <c>prompt_embeddings</c> [P, L·2·token_dim] is viewed as [P, L·2, heads, head_dim] and handed to the model as
/// <c>past_key_values</c> — layer l's keys are column block 2l, its values block 2l + 1, used as given (a cache holds
/// keys already rotated) — and transformers then numbers the real tokens after the cache: position P + t, for the
/// RoPE angle and for GPT-2's <c>wpe</c> row alike. Every query also attends to all P virtual tokens.
/// </remarks>
public static class ReferenceTransformer
{
    /// <summary>
    /// Logits [T][V] for one unpadded sequence, optionally behind a PEFT prefix table [P][L·2·token_dim]. The first real
    /// token's position is P as in HF unless <paramref name="firstPosition"/> says otherwise (to show that it matters).
    /// </summary>
    public static double[][] Logits(TinyCheckpoint c, int[] ids, double[][]? prefix = null, int? firstPosition = null) =>
        c.Spec.ModelType == "gpt2"
            ? Gpt2(c, ids, prefix ?? [], firstPosition ?? prefix?.Length ?? 0)
            : Llama(c, ids, prefix ?? [], firstPosition ?? prefix?.Length ?? 0);

    /// <summary>Layer <paramref name="layer"/>'s prefix keys or values (<paramref name="part"/> 0 or 1), one row per virtual token.</summary>
    private static double[][] PrefixPart(double[][] prefix, int layer, int part, int tokenDim) =>
        prefix.Select(row => row[((2 * layer + part) * tokenDim)..((2 * layer + part + 1) * tokenDim)]).ToArray();

    private static double[][] Llama(TinyCheckpoint c, int[] ids, double[][] prefix, int first)
    {
        var s = c.Spec;
        var w = c.Tensors;
        int T = ids.Length, d = s.Hidden, hd = s.HeadDim;
        var x = ids.Select(id => Row(w["model.embed_tokens.weight"], id)).ToArray();
        var invFreq = RopeInverseFrequencies(hd, s.RopeTheta, s.RopeScaling);
        for (var l = 0; l < s.Layers; l++)
        {
            var p = $"model.layers.{l}.";
            var h = x.Select(v => RmsNorm(v, w[p + "input_layernorm.weight"])).ToArray();
            var q = h.Select(v => Linear(v, w[p + "self_attn.q_proj.weight"], w.GetValueOrDefault(p + "self_attn.q_proj.bias"))).ToArray();
            var k = h.Select(v => Linear(v, w[p + "self_attn.k_proj.weight"], w.GetValueOrDefault(p + "self_attn.k_proj.bias"))).ToArray();
            var vv = h.Select(v => Linear(v, w[p + "self_attn.v_proj.weight"], w.GetValueOrDefault(p + "self_attn.v_proj.bias"))).ToArray();
            for (var t = 0; t < T; t++)
            {
                for (var head = 0; head < s.Heads; head++) Rotate(q[t], head * hd, hd, first + t, invFreq);
                for (var head = 0; head < s.KvHeads; head++) Rotate(k[t], head * hd, hd, first + t, invFreq);
            }
            var attn = Attention(q, [.. PrefixPart(prefix, l, 0, s.KvHeads * hd), .. k], [.. PrefixPart(prefix, l, 1, s.KvHeads * hd), .. vv],
                s.Heads, s.KvHeads, hd);
            for (var t = 0; t < T; t++) Add(x[t], Linear(attn[t], w[p + "self_attn.o_proj.weight"], w.GetValueOrDefault(p + "self_attn.o_proj.bias")));
            for (var t = 0; t < T; t++)
            {
                var m = RmsNorm(x[t], w[p + "post_attention_layernorm.weight"]);
                var gate = Linear(m, w[p + "mlp.gate_proj.weight"], w.GetValueOrDefault(p + "mlp.gate_proj.bias"));
                var up = Linear(m, w[p + "mlp.up_proj.weight"], w.GetValueOrDefault(p + "mlp.up_proj.bias"));
                var act = gate.Select((g, i) => g / (1 + Math.Exp(-g)) * up[i]).ToArray();
                Add(x[t], Linear(act, w[p + "mlp.down_proj.weight"], w.GetValueOrDefault(p + "mlp.down_proj.bias")));
            }
        }
        var head_ = s.Tied ? w["model.embed_tokens.weight"] : w["lm_head.weight"];
        return x.Select(v => Linear(RmsNorm(v, w["model.norm.weight"]), head_, null)).ToArray();
    }

    private static double[][] Gpt2(TinyCheckpoint c, int[] ids, double[][] prefix, int first)
    {
        var s = c.Spec;
        var w = c.Tensors;
        int T = ids.Length, d = s.Hidden, hd = s.HeadDim;
        var x = ids.Select((id, t) => Row(w["transformer.wte.weight"], id).Zip(Row(w["transformer.wpe.weight"], first + t), (a, b) => a + b).ToArray()).ToArray();
        for (var l = 0; l < s.Layers; l++)
        {
            var p = $"transformer.h.{l}.";
            var qkv = x.Select(v => Conv1D(LayerNorm(v, w[p + "ln_1.weight"], w[p + "ln_1.bias"]), w[p + "attn.c_attn.weight"], w[p + "attn.c_attn.bias"])).ToArray();
            var q = qkv.Select(r => r[..d]).ToArray();
            var k = qkv.Select(r => r[d..(2 * d)]).ToArray();
            var v = qkv.Select(r => r[(2 * d)..]).ToArray();
            var attn = Attention(q, [.. PrefixPart(prefix, l, 0, d), .. k], [.. PrefixPart(prefix, l, 1, d), .. v], s.Heads, s.Heads, hd);
            for (var t = 0; t < T; t++) Add(x[t], Conv1D(attn[t], w[p + "attn.c_proj.weight"], w[p + "attn.c_proj.bias"]));
            for (var t = 0; t < T; t++)
            {
                var hidden = Conv1D(LayerNorm(x[t], w[p + "ln_2.weight"], w[p + "ln_2.bias"]), w[p + "mlp.c_fc.weight"], w[p + "mlp.c_fc.bias"]);
                var act = hidden.Select(z => 0.5 * z * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (z + 0.044715 * z * z * z)))).ToArray();
                Add(x[t], Conv1D(act, w[p + "mlp.c_proj.weight"], w[p + "mlp.c_proj.bias"]));
            }
        }
        var head_ = s.Tied ? w["transformer.wte.weight"] : w["lm_head.weight"];
        return x.Select(v => Linear(LayerNorm(v, w["transformer.ln_f.weight"], w["transformer.ln_f.bias"]), head_, null)).ToArray();
    }

    /// <summary>
    /// Causal softmax attention; query head h reads key/value head h / (heads / kvHeads). Keys and values may start
    /// with P prefix entries (k.Length = P + T), which every query sees.
    /// </summary>
    private static double[][] Attention(double[][] q, double[][] k, double[][] v, int heads, int kvHeads, int hd)
    {
        var T = q.Length;
        var P = k.Length - T;
        var output = new double[T][];
        for (var t = 0; t < T; t++)
        {
            output[t] = new double[heads * hd];
            for (var h = 0; h < heads; h++)
            {
                var kvh = h / (heads / kvHeads);
                var scores = new double[P + t + 1];
                for (var s = 0; s <= P + t; s++)
                {
                    double dot = 0;
                    for (var i = 0; i < hd; i++) dot += q[t][h * hd + i] * k[s][kvh * hd + i];
                    scores[s] = dot / Math.Sqrt(hd);
                }
                var max = scores.Max();
                var exp = scores.Select(z => Math.Exp(z - max)).ToArray();
                var sum = exp.Sum();
                for (var s = 0; s <= P + t; s++)
                    for (var i = 0; i < hd; i++)
                        output[t][h * hd + i] += exp[s] / sum * v[s][kvh * hd + i];
            }
        }
        return output;
    }

    /// <summary>RoPE with the "rotate half" pairing: element i pairs with element i + hd/2.</summary>
    private static void Rotate(double[] vec, int offset, int hd, int position, double[] invFreq)
    {
        for (var i = 0; i < hd / 2; i++)
        {
            var angle = position * invFreq[i];
            double a = vec[offset + i], b = vec[offset + i + hd / 2];
            vec[offset + i] = a * Math.Cos(angle) - b * Math.Sin(angle);
            vec[offset + i + hd / 2] = b * Math.Cos(angle) + a * Math.Sin(angle);
        }
    }

    /// <summary>inv_freq with HF's "linear" and "llama3" rope scaling, written from the published formulas.</summary>
    public static double[] RopeInverseFrequencies(int hd, double theta, JsonObject? scaling)
    {
        var freqs = new double[hd / 2];
        for (var i = 0; i < hd / 2; i++) freqs[i] = 1.0 / Math.Pow(theta, (2.0 * i) / hd);
        var type = (scaling?["rope_type"] ?? scaling?["type"])?.GetValue<string>();
        double Num(string key) => double.Parse(scaling![key]!.ToJsonString(), System.Globalization.CultureInfo.InvariantCulture);
        if (type == "linear") return freqs.Select(f => f / Num("factor")).ToArray();
        if (type != "llama3") return freqs;
        double factor = Num("factor"), low = Num("low_freq_factor"), high = Num("high_freq_factor"), old = Num("original_max_position_embeddings");
        var result = new double[freqs.Length];
        for (var i = 0; i < freqs.Length; i++)
        {
            var wavelen = 2 * Math.PI / freqs[i];
            var scaled = wavelen > old / low ? freqs[i] / factor : freqs[i];
            var smooth = (old / wavelen - low) / (high - low);
            var smoothed = (1 - smooth) * scaled / factor + smooth * scaled;
            var isMedium = !(wavelen < old / high) && !(wavelen > old / low);
            result[i] = isMedium ? smoothed : scaled;
        }
        return result;
    }

    private static double[] Row(TestTensor m, long row) =>
        Enumerable.Range(0, (int)m.Shape[1]).Select(j => m.At(row, j)).ToArray();

    /// <summary>nn.Linear: weight [out, in].</summary>
    private static double[] Linear(double[] x, TestTensor weight, TestTensor? bias)
    {
        var y = new double[weight.Shape[0]];
        for (var o = 0; o < y.Length; o++)
        {
            double sum = bias is null ? 0 : bias.Data[o];
            for (var i = 0; i < x.Length; i++) sum += weight.At(o, i) * x[i];
            y[o] = sum;
        }
        return y;
    }

    /// <summary>GPT-2 Conv1D: weight [in, out].</summary>
    private static double[] Conv1D(double[] x, TestTensor weight, TestTensor bias)
    {
        var y = new double[weight.Shape[1]];
        for (var o = 0; o < y.Length; o++)
        {
            double sum = bias.Data[o];
            for (var i = 0; i < x.Length; i++) sum += weight.At(i, o) * x[i];
            y[o] = sum;
        }
        return y;
    }

    private static double[] RmsNorm(double[] x, TestTensor weight)
    {
        var rms = Math.Sqrt(x.Select(v => v * v).Average() + 1e-6);
        return x.Select((v, i) => v / rms * weight.Data[i]).ToArray();
    }

    private static double[] LayerNorm(double[] x, TestTensor weight, TestTensor bias)
    {
        var mean = x.Average();
        var variance = x.Select(v => (v - mean) * (v - mean)).Average();
        return x.Select((v, i) => (v - mean) / Math.Sqrt(variance + 1e-5) * weight.Data[i] + bias.Data[i]).ToArray();
    }

    private static void Add(double[] x, double[] y)
    {
        for (var i = 0; i < x.Length; i++) x[i] += y[i];
    }
}
