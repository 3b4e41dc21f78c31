#!/usr/bin/env bash
# CPU before/after: the same training work on two builds, alternated so that both see the same machine load.
# Usage: build/bench/before-after.sh [BASE_REF] [ROUNDS]   (default: main, 3 rounds). Alone on the machine for numbers
# to publish (uptime below ~1.5 and nothing else started until it ends); on a busy machine only the ratios mean something.
#   - bench cases: `forgetless bench finetune --case "MODEL|METHOD" --steps 6` in a child process each (tokens/s of
#     the timed steps, the same code in both builds);
#   - the finetune stage: the default pipeline's finetune, 12 steps, train_seconds from its summary.json.
# BASE_REF is exported with git archive and built in $TMPDIR/forgetless-before-<ref>; results go to
# artifacts/bench/before-after.tsv (build, round, case, tokens/s) and a summary with medians and ratios.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/../.."
base=${1:-main}; rounds=${2:-3}
# No OMP_WAIT_POLICY here: each build sets its OpenMP wait itself, as it does for a user.
before_dir="${TMPDIR:-/tmp}/forgetless-before-${base//\//-}"
if [ ! -f "$before_dir/stages/bin/Release/net10.0/forgetless.dll" ]; then
  rm -rf "$before_dir"; mkdir -p "$before_dir"
  git archive "$base" | tar -x -C "$before_dir"
  (cd "$before_dir" && dotnet build stages/Forgetless.Stages.csproj -c Release -v q -nologo)
fi
dotnet build stages/Forgetless.Stages.csproj -c Release -v q -nologo
declare -A dll=([before]="$before_dir/stages/bin/Release/net10.0/forgetless.dll" [after]="$PWD/stages/bin/Release/net10.0/forgetless.dll")
out=artifacts/bench; mkdir -p "$out"; tsv="$out/before-after.tsv"
printf 'build\tround\tcase\ttokens_per_s\n' > "$tsv"
# CASES="MODEL|METHOD;MODEL|METHOD" replaces the default cases.
IFS=';' read -ra cases <<< "${CASES:-base 4L d256|lora;base 4L d256|full;large 8L d512|qlora}"
for round in $(seq 1 "$rounds"); do
  for build in before after; do
    for c in "${cases[@]}"; do
      tps=$(dotnet "${dll[$build]}" bench finetune --case "$c" --steps 6 --peak 85 | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["TokensPerSecond"])')
      printf '%s\t%s\t%s\t%s\n' "$build" "$round" "$c" "$tps" >> "$tsv"
    done
    root="$PWD/$out/runs-$build"
    dotnet "${dll[$build]}" finetune --force --set run.root="$root" --set finetune.steps=12 --set finetune.evalEvery=100 --set finetune.checkpointEvery=100 > "$out/finetune-$build.log" 2>&1
    python3 - "$root/finetune/summary.json" "$build" "$round" >> "$tsv" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
print(f"{sys.argv[2]}\t{sys.argv[3]}\tfinetune stage (default config, 12 steps)\t{s['tokens'] / s['train_seconds']:.1f}")
PY
  done
done
python3 - "$tsv" <<'PY'
import csv, statistics, sys
rows = list(csv.DictReader(open(sys.argv[1]), delimiter='\t'))
print(f"{'case':45} {'before':>10} {'after':>10} {'after/before':>13}")
for case in dict.fromkeys(r['case'] for r in rows):
    med = {b: statistics.median(float(r['tokens_per_s']) for r in rows if r['case'] == case and r['build'] == b) for b in ('before', 'after')}
    print(f"{case:45} {med['before']:10.1f} {med['after']:10.1f} {med['after'] / med['before']:13.3f}")
PY
