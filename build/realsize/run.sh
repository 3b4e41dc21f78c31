#!/usr/bin/env bash
# Real-size proof on the CPU (docs/benchmarks/real-size.md): random checkpoints with the exact configs and storage of
# SmolLM2-135M and Qwen2.5-0.5B go through prepare → finetune (lora and qlora, each without and with gradient
# checkpointing) → evaluate (two small suites) → package. Each finetune runs in its own process under /usr/bin/time,
# whose maximum resident set is the measured peak; its summary.json has the estimate, load time and tokens.
# Usage: build/realsize/run.sh [SHAPE...]   (default: smollm2-135m qwen2.5-0.5b). Alone on the machine: it is CPU-heavy.
# Results: artifacts/realsize/results.tsv, one line per finetune run; a run already there is not repeated (delete the
# file, or its line, to measure again). Evaluate and package run last, on each shape's qlora run with checkpointing.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
export OMP_WAIT_POLICY=PASSIVE
# glibc hands every freed block of 128 KiB or more back at once (as `forgetless bench` does), so that the peak resident
# set is the peak of live tensors, which is what the memory estimate predicts. The pipeline itself keeps glibc's default
# (faster: freed blocks are reused), under which the resident set runs higher (docs/benchmarks/real-size.md).
export MALLOC_MMAP_THRESHOLD_=131072
fl=(dotnet stages/bin/Release/net10.0/forgetless.dll)
config=build/realsize/forgetless.realsize.json
out=artifacts/realsize
shapes=("$@"); [ ${#shapes[@]} -gt 0 ] || shapes=(smollm2-135m qwen2.5-0.5b)
mkdir -p "$out"
results="$out/results.tsv"
[ -f "$results" ] || printf 'shape\tmethod\tcheckpointing\tpeak_rss_mb\testimate_mb\tload_s\ttrain_s\ttokens\ttokens_per_s\twall_s\n' > "$results"

settings() { # shape method checkpointing
  local root="$out/runs/$1-$2-$3"
  echo --config "$config" --set "run.baseModel=../../$out/models/$1" --set "run.root=../../$root" \
       --set "finetune.method=$2" --set "finetune.gradientCheckpointing=$3" --set finetune.logEvery=1
}

for shape in "${shapes[@]}"; do
  model="$out/models/$shape"
  [ -f "$model/config.json" ] || "${fl[@]}" synthesize-model --shape "$shape" --output "$model"
  for method in lora qlora; do
    for checkpointing in false true; do
      if grep -q "^$shape	$method	$checkpointing	" "$results"; then continue; fi
      root="$out/runs/$shape-$method-$checkpointing"
      read -r -a set_args <<< "$(settings "$shape" "$method" "$checkpointing")"
      "${fl[@]}" prepare "${set_args[@]}"
      /usr/bin/time -v -o "$root.time" "${fl[@]}" finetune --force "${set_args[@]}"
      peak_kb=$(awk -F': ' '/Maximum resident set size/ {print $2}' "$root.time")
      wall=$(awk -F': ' '/Elapsed \(wall clock\)/ {print $2}' "$root.time")
      python3 - "$root/finetune" "$shape" "$method" "$checkpointing" "$peak_kb" "$wall" >> "$results" <<'PY'
import json, statistics, sys
folder, shape, method, ckpt, peak_kb, wall = sys.argv[1:7]
s = json.load(open(folder + '/summary.json'))
# tokens/s of each training step (logEvery 1); the last step also ran the closing evaluation, so it is left out.
rates = [e['tokens_per_s'] for e in map(json.loads, open(folder + '/metrics.jsonl')) if 'tokens_per_s' in e][:-1]
parts = [float(p) for p in wall.split(':')]
wall_s = sum(p * 60 ** i for i, p in enumerate(reversed(parts)))
print('\t'.join(str(v) for v in [shape, method, ckpt, round(int(peak_kb) / 1024), round(s['estimated_peak_bytes'] / 2**20),
      s['load_seconds'], s['train_seconds'], s['tokens'], round(statistics.median(rates), 1), round(wall_s, 1)]))
PY
    done
  done
done

for shape in "${shapes[@]}"; do
  read -r -a set_args <<< "$(settings "$shape" qlora true)"
  "${fl[@]}" evaluate "${set_args[@]}" || [ $? -eq 4 ]   # a failed gate (exit 4) still completed the run
  "${fl[@]}" package "${set_args[@]}" || [ $? -eq 4 ]
done
column -t -s $'\t' "$results"
