#!/usr/bin/env bash
# Block decomposition on the reference models (docs/results/decomposition-2026-11-29.md): each run compresses a
# reference model (trained once and cached) and reports its test metric before and after in the same run;
# `adze compare` prints them side by side with their sizes, `adze cost` prices SmartDeal against INT8 on a
# Cortex-A76, and decompose_bench times a rank-K/8 layer against the same layer dense INT8 in the packed runtime.
# About 50 minutes on 2 cores. Usage: scripts/decompose.sh [OUT_DIR] (default build/decompose).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --target decompose_bench
source scripts/compress-runs.sh "${1:-build/decompose}"
run cnn-classifier-lowrank32-int4-ste fmnist-cnn  cnn-classifier-lowrank32-int4 qat-weights    fmnist
run vit-mlp-monarch4-ste              fmnist-vit  vit-mlp-monarch4              decompose-ste  fmnist
run vit-mlp-monarch4-qat-weights      fmnist-vit  vit-mlp-monarch4              qat-weights    fmnist
run gpt-int8-ptq                      fortune-gpt int8                          ptq            fortunes
run gpt-mlp-lowrank-int8-ste          fortune-gpt gpt-mlp-lowrank-int8          qat-weights    fortunes
run gpt-lowrank-int8-ste              fortune-gpt gpt-lowrank-int8              qat-weights    fortunes
run cnn-int8-ptq                      fmnist-cnn  int8                          ptq            fmnist
run cnn-smartdeal-ptq                 fmnist-cnn  cnn-smartdeal                 ptq            fmnist
run cnn-smartdeal-ste                 fmnist-cnn  cnn-smartdeal                 qat-weights    fmnist
echo
$adze compare "$out"/*/
for plan in int8 cnn-smartdeal; do
  echo
  echo "== adze cost fmnist-cnn --plan configs/plans/$plan.json --target cortex-a76"
  $adze cost fmnist-cnn --plan "configs/plans/$plan.json" --target cortex-a76
done
echo
for isa in native avx2; do
  echo "== decompose_bench, ${isa} instructions, one thread"
  ADZE_ISA=$([ $isa = native ] || echo $isa) build/bench/decompose_bench --benchmark_repetitions=5 \
    --benchmark_report_aggregates_only=true
done
