#!/usr/bin/env bash
# Data-parallel fine-tuning's throughput (docs/results/finetune-step-2026-11-30.md): fmnist-cnn, INT4 weights
# (MSE scales), 300 STE steps of batch 64 with distillation, on one rank with one thread against two ranks under
# mpirun with one thread each (32 samples a rank a step), averaging over Gloo and over MPI
# (--data-parallel-backend), three rounds side by side. Samples per second are the finetune.ste pass's own:
# steps x batch / its seconds in report.json (rank 0's). Then what one average of the model's gradients costs
# each backend alone (build/bench/allreduce_bench). About 5 minutes on 2 cores per adze build.
# Usage: scripts/ddp-bench.sh [OUT_DIR] [ADZE...] (default build/ddp-bench, and the CLI this checkout builds).
# Further adze binaries (an older build, say) are timed in turn within every pair, so that their rows are side
# by side (builds before the MPI backend (--data-parallel-backend) cannot be timed so).
set -euo pipefail
cd "$(dirname "$0")/.."
DEFAULT_OUT=build/ddp-bench
source scripts/bench-setup.sh
bash scripts/build.sh --target allreduce_bench
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
printf '| pair | adze | 1 rank x 1 thread (samples/s) | 2 ranks x 1 thread, Gloo (samples/s) | ratio | 2 ranks, MPI (samples/s) | ratio | 2 ranks: step, all-reduce wait, projection and update (ms), Gloo; MPI |\n|---|---|---:|---:|---:|---:|---:|---:|\n'
for pair in 1 2 3; do
  for i in "${!binaries[@]}"; do
    bin=${binaries[$i]} run="$out/$pair-$i"
    "$bin" -q --threads 1 "${args[@]}" --out "$run-one" >/dev/null
    ADZE_STORE="$(realpath -m "$run-store")" mpirun --bind-to none -x ADZE_STORE -n 2 "$bin" -q --threads 1 "${args[@]}" \
      --out "$run-gloo" --data-parallel >/dev/null
    mpirun --bind-to none -n 2 "$bin" -q --threads 1 "${args[@]}" --out "$run-mpi" --data-parallel \
      --data-parallel-backend mpi >/dev/null
    one=$(rate "$run-one") gloo=$(rate "$run-gloo") mpi=$(rate "$run-mpi")
    printf '| %d | %s | %.0f | %.0f | %.2f | %.0f | %.2f | %s, %s, %s; %s, %s, %s |\n' "$pair" "$bin" "$one" "$gloo" \
      "$(python3 -c "print($gloo / $one)")" "$mpi" "$(python3 -c "print($mpi / $one)")" \
      "$(phase "$run-gloo" step)" "$(phase "$run-gloo" gradient_average)" "$(phase "$run-gloo" project_and_update)" \
      "$(phase "$run-mpi" step)" "$(phase "$run-mpi" gradient_average)" "$(phase "$run-mpi" project_and_update)"
  done
done
echo
bytes=$($adze inspect fmnist-cnn --json | python3 -c "import json,sys; print(json.load(sys.stdin)['total']['bytes_fp32'])")
echo "One average of fmnist-cnn's gradients ($bytes bytes) and of 4 KiB, 200 times (build/bench/allreduce_bench):"
printf '| backend | ranks | KiB | median (µs) | p10 | p90 | GB/s |\n|---|---:|---:|---:|---:|---:|---:|\n'
ADZE_STORE="$(realpath -m "$out/bench-store")" mpirun --bind-to none -x ADZE_STORE -n 2 build/bench/allreduce_bench gloo 200 4096 "$bytes"
mpirun --bind-to none -n 2 build/bench/allreduce_bench mpi 200 4096 "$bytes"
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores;" \
  "flags: $(grep -m1 flags /proc/cpuinfo | grep -o -w -E 'avx2|avx512f|avx512_vnni|amx_int8|avx512_fp16' | tr '\n' ' ')"
