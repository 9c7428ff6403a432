#!/usr/bin/env bash
# The main job end to end on the embedded default: train the reference models (cached after the first run),
# then inspect and evaluate each of them, then compress fmnist-cnn two ways and report before/after. Later
# stages (fine-tuning, search, export, verify) join as they land.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --target adze_cli
adze=build/cli/adze

echo "== reference models (trained once, then cached in ${ADZE_CACHE_DIR:-~/.cache/adze/models})"
$adze reference train

for model in fmnist-cnn fmnist-vit fortune-gpt; do
  echo
  echo "== inspect $model"
  $adze inspect "$model"
done

echo
echo "== evaluate on the test splits"
$adze eval fmnist-cnn --data fmnist
$adze eval fmnist-vit --data fmnist
$adze eval fortune-gpt --data fortunes

echo
echo "== compress fmnist-cnn (before/after on the test split, sizes counted honestly)"
out=build/main-job
rm -rf "$out" && mkdir -p "$out"
echo "-- INT8 weights + INT8 activations, post-training"
$adze compress fmnist-cnn --plan configs/plans/w8a8.json --pipeline configs/pipelines/ptq-activations.json \
  --data fmnist --out "$out/fmnist-cnn-w8a8"
echo
echo "-- 2:4 sparsity + INT4 weights, one-shot (no fine-tuning yet)"
$adze compress fmnist-cnn --plan configs/plans/2of4-int4.json --pipeline configs/pipelines/ptq.json \
  --data fmnist --out "$out/fmnist-cnn-2of4-int4"
echo
echo "Reports: $out/*/report.md"
