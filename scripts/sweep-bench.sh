#!/usr/bin/env bash
# The sweep's two speed bars (docs/results/sweeps-2026-11-30.md), side by side in one run:
#  overhead:  50 post-training runs of fmnist-cnn (5 plans x 10 seeds, 1000 test images) through `adze sweep run`
#             against the same 50 `adze compress` commands one after another, in three pairs;
#  scale-out: the same sweep under `mpirun -n 2 ... --mpi` against `mpirun -n 1`, as runs per hour.
# Each side starts from an empty output directory; the reference model is trained once and cached before.
# About 10 minutes on 2 cores. Usage: scripts/sweep-bench.sh [OUT_DIR] (default build/sweep-bench).
set -euo pipefail
cd "$(dirname "$0")/.."
DEFAULT_OUT=build/sweep-bench
source scripts/bench-setup.sh
plans=(int8 int4 w3-channel 2of4-int4 w7a8)
cat >"$out/sweep.yaml" <<YAML
grid:
  model: [fmnist-cnn]
  plan: [$(printf 'configs/plans/%s.json, ' "${plans[@]}" | sed 's/, $//')]
  pipeline: [configs/pipelines/ptq.json]
  seed: [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]
  data: [fmnist]
options: {limit: 1000}
YAML
now() { date +%s.%N; }
seconds() { awk -v a="$1" -v b="$2" 'BEGIN { print b - a }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { print a / b }'; }
median3() { printf '%s\n' "$@" | sort -g | sed -n 2p; }

# Overhead: three pairs, each the 50 commands then the 50-run sweep, from empty directories; the ratio per pair,
# so that a drift of the machine's speed hits both sides of a pair alike.
commands=() sweeps=() ratios=()
for pair in 1 2 3; do
  echo "== pair $pair: 50 adze compress commands, one after another"
  rm -rf "$out/compress" && mkdir -p "$out/compress"
  t0=$(now)
  for plan in "${plans[@]}"; do
    for seed in 0 1 2 3 4 5 6 7 8 9; do
      $adze -q compress fmnist-cnn --plan "configs/plans/$plan.json" --pipeline configs/pipelines/ptq.json \
        --data fmnist --limit 1000 --seed "$seed" --out "$out/compress/$plan-$seed" >/dev/null
    done
  done
  t1=$(now)
  echo "== pair $pair: the same 50 runs as one sweep"
  rm -rf "$out/sweep"
  $adze -q sweep run "$out/sweep.yaml" --out "$out/sweep" >/dev/null
  t2=$(now)
  commands+=("$(seconds "$t0" "$t1")") sweeps+=("$(seconds "$t1" "$t2")")
  ratios+=("$(ratio "${sweeps[-1]}" "${commands[-1]}")")
done
# Scale-out: no binding to cores (mpirun binds each rank to one by default, and a run's threads would share it).
echo "== the sweep under mpirun -n 1 --mpi"
t3=$(now)
mpirun --bind-to none -n 1 $adze -q sweep run "$out/sweep.yaml" --out "$out/mpi1" --mpi >/dev/null
t4=$(now)
echo "== the sweep under mpirun -n 2 --mpi"
mpirun --bind-to none -n 2 $adze -q sweep run "$out/sweep.yaml" --out "$out/mpi2" --mpi >/dev/null
t5=$(now)
one=$(seconds "$t3" "$t4") two=$(seconds "$t4" "$t5")

echo
echo "CPU: $(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2 | sed 's/^ //'), $(nproc) cores"
echo "flags: $(grep -m1 flags /proc/cpuinfo | grep -o -w -E 'avx2|avx512f|avx512_vnni|amx_int8|avx512_fp16' | tr '\n' ' ')"
printf '| what | wall time (s), pairs 1, 2, 3 | ratio |\n|---|---:|---:|\n'
printf '| 50 `adze compress` commands | %.1f, %.1f, %.1f | 1.00 |\n' "${commands[@]}"
printf '| `adze sweep run`, the same 50 runs | %.1f, %.1f, %.1f | %.3f, %.3f, %.3f; median %.3f (overhead; bar: at most 1.05) |\n' \
  "${sweeps[@]}" "${ratios[@]}" "$(median3 "${ratios[@]}")"
printf '| `mpirun --bind-to none -n 1 ... --mpi` (2 threads a run) | %.1f | 1.00 |\n' "$one"
printf '| `mpirun --bind-to none -n 2 ... --mpi` (1 thread a run) | %.1f | %.2f (runs per hour against -n 1; bar: at least 1.7) |\n' \
  "$two" "$(ratio "$one" "$two")"
for d in sweep mpi1 mpi2; do $adze sweep status "$out/$d" --json | tr -d '\n '; echo " ($d)"; done
