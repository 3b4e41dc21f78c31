#!/usr/bin/env python3
"""Outside anchor for `forgetless bench finetune`: the same Llama shapes, batches and optimizer in PyTorch eager.

Not a dependency of Forgetless or its tests. On Debian 12: `apt-get install python3-torch libopenblas0-pthread`
(PyTorch 1.13 with OpenBLAS; without libopenblas0-pthread it falls back to the slow reference BLAS). Run it alone on
the machine (`uptime` below ~1.5) and in the same window as the bench, since both divide by a peak measured then:

    OMP_WAIT_POLICY=PASSIVE /usr/bin/python3 docs/benchmarks/pytorch_reference.py --steps 6

It prints one Markdown table: per model, full fine-tuning s/step (AdamW, 4 x 256 tokens on "base", 2 x 256 on
"large", random tokens, all positions scored), the matmul-only lower bound at the peak it measured (the bench's
convention: (6·N + 12·L·d·T) FLOPs per token for full fine-tuning), and the ratio. A weak anchor: an older
PyTorch and another BLAS than libtorch 2.10 inside TorchSharp.
"""
import argparse
import math
import time

import torch
import torch.nn as nn
import torch.nn.functional as F

MODELS = {"base 4L d256": (4, 256, 4, 704, 4), "large 8L d512": (8, 512, 8, 1408, 2)}  # layers, d, heads, mlp, batch
VOCAB, SEQ = 8192, 256


class RMSNorm(nn.Module):
    def __init__(self, d, eps=1e-5):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(d))
        self.eps = eps

    def forward(self, x):
        return self.weight * (x * torch.rsqrt(x.pow(2).mean(-1, keepdim=True) + self.eps))


def rotate_half(x):
    a, b = x.chunk(2, -1)
    return torch.cat((-b, a), -1)


class Block(nn.Module):
    def __init__(self, d, heads, mlp):
        super().__init__()
        self.heads = heads
        self.input_layernorm, self.post_attention_layernorm = RMSNorm(d), RMSNorm(d)
        self.q_proj, self.k_proj, self.v_proj, self.o_proj = (nn.Linear(d, d, bias=False) for _ in range(4))
        self.gate_proj, self.up_proj = nn.Linear(d, mlp, bias=False), nn.Linear(d, mlp, bias=False)
        self.down_proj = nn.Linear(mlp, d, bias=False)

    def forward(self, x, cos, sin):
        b, t, d = x.shape
        h = self.input_layernorm(x)
        q, k, v = (p(h).view(b, t, self.heads, -1).transpose(1, 2) for p in (self.q_proj, self.k_proj, self.v_proj))
        q, k = q * cos + rotate_half(q) * sin, k * cos + rotate_half(k) * sin
        a = F.scaled_dot_product_attention(q, k, v, is_causal=True) if hasattr(F, "scaled_dot_product_attention") \
            else (torch.softmax((q @ k.transpose(-2, -1) / math.sqrt(q.shape[-1])).masked_fill(
                torch.ones(t, t, dtype=torch.bool).triu(1), float("-inf")), -1) @ v)
        x = x + self.o_proj(a.transpose(1, 2).reshape(b, t, d))
        h = self.post_attention_layernorm(x)
        return x + self.down_proj(F.silu(self.gate_proj(h)) * self.up_proj(h))


class Llama(nn.Module):
    def __init__(self, layers, d, heads, mlp):
        super().__init__()
        self.embed_tokens = nn.Embedding(VOCAB, d)
        self.layers = nn.ModuleList(Block(d, heads, mlp) for _ in range(layers))
        self.norm = RMSNorm(d)
        inv = 1.0 / (10000 ** (torch.arange(0, d // heads, 2).float() / (d // heads)))
        freqs = torch.outer(torch.arange(SEQ).float(), inv)
        emb = torch.cat((freqs, freqs), -1)
        self.register_buffer("cos", emb.cos()), self.register_buffer("sin", emb.sin())

    def forward(self, ids):
        x = self.embed_tokens(ids)
        for layer in self.layers:
            x = layer(x, self.cos, self.sin)
        return F.linear(self.norm(x), self.embed_tokens.weight)  # tied embeddings, as the bench's models


def matmul_peak(n=1024, repeats=7):
    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        a @ b
        times.append(time.perf_counter() - start)
    return 2 * n ** 3 / sorted(times)[len(times) // 2] / 1e9


def model_flops_per_token(layers, d, heads, mlp):
    n = layers * (4 * d * d + 3 * d * mlp) + d * VOCAB
    return 6 * n + 12 * layers * d * SEQ


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=6)
    args = parser.parse_args()
    torch.manual_seed(1)
    peak = matmul_peak()
    print(f"PyTorch {torch.__version__}, {torch.get_num_threads()} threads, f32 matmul peak {peak:.1f} GFLOP/s\n")
    print("| model | method | s/step | matmul bound s/step | × bound | tokens/s |")
    print("|---|---|---:|---:|---:|---:|")
    for name, (layers, d, heads, mlp, batch) in MODELS.items():
        model = Llama(layers, d, heads, mlp)
        optimizer = torch.optim.AdamW(model.parameters(), lr=1e-4)
        ids = torch.randint(VOCAB, (batch, SEQ))
        times = []
        for step in range(args.steps + 1):
            start = time.perf_counter()
            logits = model(ids)  # every row is SEQ tokens, all scored, as in the bench
            loss = F.cross_entropy(logits.reshape(-1, VOCAB), ids.roll(-1, 1).reshape(-1))
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            optimizer.step()
            if step > 0:  # the first step warms up
                times.append(time.perf_counter() - start)
        seconds = sum(times) / len(times)
        bound = model_flops_per_token(layers, d, heads, mlp) * batch * SEQ / (peak * 1e9)
        print(f"| {name} | full | {seconds:.2f} | {bound:.3f} | {seconds / bound:.2f} | {batch * SEQ / seconds:.0f} |")


if __name__ == "__main__":
    main()
