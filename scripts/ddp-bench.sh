#!/usr/bin/env bash
# Data-parallel fine-tuning's throughput (docs/results/finetune-step-2026-11-30.md): fmnist-cnn, INT4 weights
# (MSE scales), 300 STE steps of batch 64 with distillation, on one rank with one thread against two Gloo ranks
# under mpirun with one thread each (32 samples a rank a step), three pairs side by side. Samples per second are
# the finetune.ste pass's own: steps x batch / its seconds in report.json (rank 0's). About 3 minutes on 2 cores
# per adze build.
# Usage: scripts/ddp-bench.sh [OUT_DIR] [ADZE...] (default build/ddp-bench, and the CLI this checkout builds).
# Further adze binaries (an older build, say) are timed in turn within every pair, so that their rows are side
# by side.
set -euo pipefail
cd "$(dirname "$0")/.."
DEFAULT_OUT=build/ddp-bench
source scripts/bench-setup.sh
binaries=("${@:2}")
[ ${#binaries[@]} -eq 0 ] && binaries=("$adze")
cat >"$out/pipeline.json" <<JSON
{"passes": ["fold-bn", "quantize.weights",
  {"name": "finetune.ste", "options": {"steps": 300, "lr": 1e-4, "batch_size": 64, "distill": 0.5}}]}
JSON
args=(compress fmnist-cnn --plan configs/plans/int4.json --pipeline "$out/pipeline.json" --data fmnist --limit 500)
rate() { python3 -c "import json,sys; r=json.load(open(sys.argv[1])); s=[p['seconds'] for p in r['passes'] if p['name']=='finetune.ste'][0]; print(300*64/s)" "$1/report.json"; }
# The two-rank run's mean step time, and within it the phases finetune.ste reports (rank 0's; builds before
# the phases were reported show -): the wait for the all-reduce, and what every rank repeats.
phase() { python3 -c "import json,sys; p=[p for p in json.load(open(sys.argv[1]))['passes'] if p['name']=='finetune.ste'][0]; v=p['seconds'] if sys.argv[2]=='step' else p.get('phases',{}).get(sys.argv[2]); print('-' if v is None else '%.1f' % (v/300*1e3))" "$1/report.json" "$2"; }
printf '| pair | adze | 1 rank x 1 thread (samples/s) | 2 ranks x 1 thread (samples/s) | ratio | 2 ranks: step, all-reduce wait, projection and update (ms) |\n|---|---|---:|---:|---:|---:|\n'
for pair in 1 2 3; do
  for i in "${!binaries[@]}"; do
    bin=${binaries[$i]} run="$out/$pair-$i"
    "$bin" -q --threads 1 "${args[@]}" --out "$run-one" >/dev/null
    ADZE_STORE="$(realpath -m "$run-store")" mpirun --bind-to none -x ADZE_STORE -n 2 "$bin" -q --threads 1 "${args[@]}" \
      --out "$run-two" --data-parallel >/dev/null
    one=$(rate "$run-one") two=$(rate "$run-two")
    printf '| %d | %s | %.0f | %.0f | %.2f | %s, %s, %s |\n' "$pair" "$bin" "$one" "$two" "$(python3 -c "print($two / $one)")" \
      "$(phase "$run-two" step)" "$(phase "$run-two" gradient_average)" "$(phase "$run-two" project_and_update)"
  done
done
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores;" \
  "flags: $(grep -m1 flags /proc/cpuinfo | grep -o -w -E 'avx2|avx512f|avx512_vnni|amx_int8|avx512_fp16' | tr '\n' ' ')"
