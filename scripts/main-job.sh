#!/usr/bin/env bash
# The main job end to end on the embedded default: train the reference models (cached after the first run),
# then inspect and evaluate each of them, then compress each (post-training INT8, N:M + low-bit weights and a
# low-rank layer, with fine-tuning) and compare before/after, then export to TorchScript, ONNX, adze's packed
# format and C for microcontrollers, verify each export in its runtime (libtorch, ONNX Runtime, adze's packed
# runtime, the C compiler), and time the packed export side by side with the original (adze bench). Per-layer
# searches come first after training: fmnist-cnn under a microcontroller's flash budget (its plan is confirmed
# against the best uniform plan, compressed alongside the hand-written ones and priced on the target) and
# fmnist-vit under 3 bits per weight by NSGA-II within a time budget. Last, a small sweep (configs/sweeps/
# reference-small.yaml: 27 runs) and its report.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --target adze_cli
bash scripts/install-ort.sh
adze=build/cli/adze

echo "== reference models (trained once, then cached in ${ADZE_CACHE_DIR:-~/.cache/adze}/models)"
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

out=build/main-job
rm -rf "$out" && mkdir -p "$out"
echo
echo "== search: fmnist-cnn within 150 KB of flash on a Cortex-M7 (sensitivity, then dynamic programming)"
$adze sensitivity fmnist-cnn --data fmnist --plot "$out/fmnist-cnn-sensitivity.svg"
$adze search fmnist-cnn --target cortex-m7 --budget size=150KB --data fmnist --out "$out/search-cnn-150KB"
echo
echo "== search: fmnist-vit at 3 bits per weight (metadata included), NSGA-II over measured plans, 3 minutes"
$adze search fmnist-vit --target host --budget bits=3 --data fmnist --algo evo --time-budget 3min \
  --confirm-baseline w3 --out "$out/search-vit-3bits"

echo
echo "== compress the reference models (before/after on the test split, sizes counted honestly)"
compressed=()  # the compress runs' directories, for the summary
compress() {  # NAME MODEL PLAN PIPELINE DATA
  echo
  echo "-- $1"
  $adze compress "$2" --plan "configs/plans/$3.json" --pipeline "configs/pipelines/$4.json" --data "$5" --out "$out/$1"
  compressed+=("$out/$1")
}
compress fmnist-cnn-w8a8-ptq         fmnist-cnn  w8a8          ptq-activations fmnist
compress fmnist-cnn-2of4-int4-a8-ste fmnist-cnn  2of4-int4-a8  qat             fmnist
compress fmnist-vit-2of4-int4-ste    fmnist-vit  vit-2of4-int4 qat-weights     fmnist
compress fortune-gpt-2of4-int8-ste   fortune-gpt gpt-2of4-int8 qat-weights     fortunes
compress fmnist-cnn-w7a8-ptq         fmnist-cnn  w7a8          ptq-activations fmnist
compress fmnist-cnn-lowrank32-int4-ste fmnist-cnn cnn-classifier-lowrank32-int4 qat-weights fmnist
echo
echo "-- fmnist-cnn-searched-150KB-ptq (the searched plan)"
$adze compress fmnist-cnn --plan "$out/search-cnn-150KB/plan.json" --pipeline configs/pipelines/ptq.json --data fmnist \
  --out "$out/fmnist-cnn-searched-150KB-ptq"
compressed+=("$out/fmnist-cnn-searched-150KB-ptq")
$adze cost fmnist-cnn --plan "$out/search-cnn-150KB/plan.json" --target cortex-m7
echo
echo "== summary"
$adze compare "${compressed[@]}"

echo
echo "== export and verify in the real runtimes"
$adze export "$out/fmnist-cnn-2of4-int4-a8-ste" --format torchscript --out "$out/fmnist-cnn-2of4-int4-a8-ste.pt"
$adze verify "$out/fmnist-cnn-2of4-int4-a8-ste.pt" --against "$out/fmnist-cnn-2of4-int4-a8-ste" --data fmnist
$adze export "$out/fmnist-cnn-2of4-int4-a8-ste" --format onnx --batch 250 --out "$out/fmnist-cnn-2of4-int4-a8-ste.onnx"
echo "-- ONNX Runtime, the graph as written (no fusions)"
$adze verify "$out/fmnist-cnn-2of4-int4-a8-ste.onnx" --against "$out/fmnist-cnn-2of4-int4-a8-ste" --data fmnist --ort-optimization basic
$adze export "$out/fmnist-cnn-w7a8-ptq" --format onnx --batch 250 --out "$out/fmnist-cnn-w7a8-ptq.onnx"
echo "-- ONNX Runtime as deployed (QDQ fused into integer kernels)"
$adze verify "$out/fmnist-cnn-w7a8-ptq.onnx" --against "$out/fmnist-cnn-w7a8-ptq" --data fmnist
echo "-- ONNX Runtime, a low-rank layer as its two factors"
$adze export "$out/fmnist-cnn-lowrank32-int4-ste" --format onnx --batch 250 --out "$out/fmnist-cnn-lowrank32-int4-ste.onnx"
$adze verify "$out/fmnist-cnn-lowrank32-int4-ste.onnx" --against "$out/fmnist-cnn-lowrank32-int4-ste" --data fmnist
for m in fmnist-cnn-2of4-int4-a8-ste:fmnist fmnist-vit-2of4-int4-ste:fmnist fortune-gpt-2of4-int8-ste:fortunes \
  fmnist-cnn-lowrank32-int4-ste:fmnist; do
  name=${m%%:*}
  echo "-- packed: $name"
  $adze export "$out/$name" --format packed --batch 250 --out "$out/$name.adze"
  $adze verify "$out/$name.adze" --against "$out/$name" --data "${m##*:}"
done
echo "-- speed, side by side: the packed runtime against the original in libtorch and its own ONNX export in ONNX Runtime (batch 1, one thread)"
$adze export "$out/fmnist-cnn-2of4-int4-a8-ste" --format packed --batch 1 --out "$out/fmnist-cnn-2of4-int4-a8-ste-b1.adze"
$adze export "$out/fmnist-cnn-2of4-int4-a8-ste" --format onnx --batch 1 --out "$out/fmnist-cnn-2of4-int4-a8-ste-b1.onnx"
$adze bench "$out/fmnist-cnn-2of4-int4-a8-ste-b1.adze" "$out/fmnist-cnn-2of4-int4-a8-ste-b1.onnx" --against fmnist-cnn --threads 1
echo "-- C for microcontrollers, compiled with cc -std=c99 -Wall -Wextra -Werror"
$adze export "$out/fmnist-cnn-2of4-int4-a8-ste" --format c-header --out "$out/fmnist-cnn-2of4-int4-a8-ste-mcu"
$adze verify "$out/fmnist-cnn-2of4-int4-a8-ste-mcu" --against "$out/fmnist-cnn-2of4-int4-a8-ste" --data fmnist
echo
echo "== a small sweep: 3 reference models x 3 plans, post-training and a short fine-tune (2 seeds), resumable"
$adze sweep plan configs/sweeps/reference-small.yaml
$adze sweep run configs/sweeps/reference-small.yaml --out "$out/sweep-reference-small"
$adze sweep report "$out/sweep-reference-small" --plot "$out/sweep-reference-small/plots"
echo
echo "Reports: $out/*/report.md; the sweep's store and runs: $out/sweep-reference-small"
