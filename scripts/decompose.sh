#!/usr/bin/env bash
# Block decomposition on the reference models (docs/results/decomposition-2026-11-29.md): each run compresses a
# reference model (trained once and cached) and reports its test metric before and after in the same run;
# `adze compare` prints them side by side with their sizes, `adze cost` prices SmartDeal against INT8 on a
# Cortex-A76, and decompose_bench times a rank-K/8 layer against the same layer dense INT8 in the packed runtime.
# About 25 minutes on 2 cores. Usage: scripts/decompose.sh [OUT_DIR] (default build/decompose).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --target adze_cli decompose_bench
adze=build/cli/adze
out=${1:-build/decompose}
rm -rf "$out" && mkdir -p "$out"
$adze -q reference train > /dev/null

run() {  # run NAME MODEL PLAN PIPELINE DATA
  echo "-- $1" >&2
  $adze -q compress "$2" --plan "configs/plans/$3.json" --pipeline "configs/pipelines/$4.json" --data "$5" \
    --out "$out/$1" > "$out/$1.log"
}
run cnn-classifier-lowrank32-int4-ste fmnist-cnn  cnn-classifier-lowrank32-int4 qat-weights    fmnist
run vit-mlp-monarch4-ste              fmnist-vit  vit-mlp-monarch4              decompose-ste  fmnist
run gpt-int8-ptq                      fortune-gpt int8                          ptq            fortunes
run gpt-mlp-lowrank-int8-ste          fortune-gpt gpt-mlp-lowrank-int8          qat-weights    fortunes
run cnn-int8-ptq                      fmnist-cnn  int8                          ptq            fmnist
run cnn-smartdeal-ptq                 fmnist-cnn  cnn-smartdeal                 ptq            fmnist
echo
$adze compare "$out"/*/
for plan in int8 cnn-smartdeal; do
  echo
  echo "== adze cost fmnist-cnn --plan configs/plans/$plan.json --target cortex-a76"
  $adze cost fmnist-cnn --plan "configs/plans/$plan.json" --target cortex-a76
done
echo
build/bench/decompose_bench --benchmark_repetitions=3 --benchmark_report_aggregates_only=true
