#!/usr/bin/env bash
# The main job end to end on the embedded default: train the reference models (cached after the first run),
# then inspect and evaluate each of them, then compress each (post-training INT8, and N:M + low-bit weights
# with fine-tuning) and compare before/after. Later stages (search, export, verify) join as they land.
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
echo "== compress the reference models (before/after on the test split, sizes counted honestly)"
out=build/main-job
rm -rf "$out" && mkdir -p "$out"
compress() {  # NAME MODEL PLAN PIPELINE DATA
  echo
  echo "-- $1"
  $adze compress "$2" --plan "configs/plans/$3.json" --pipeline "configs/pipelines/$4.json" --data "$5" --out "$out/$1"
}
compress fmnist-cnn-w8a8-ptq         fmnist-cnn  w8a8          ptq-activations fmnist
compress fmnist-cnn-2of4-int4-a8-ste fmnist-cnn  2of4-int4-a8  qat             fmnist
compress fmnist-vit-2of4-int4-ste    fmnist-vit  vit-2of4-int4 qat-weights     fmnist
compress fortune-gpt-2of4-int8-ste   fortune-gpt gpt-2of4-int8 qat-weights     fortunes
echo
echo "== summary"
$adze compare "$out"/*/
echo
echo "Reports: $out/*/report.md"
