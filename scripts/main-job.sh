#!/usr/bin/env bash
# The main job end to end on the embedded default: train the reference models (cached after the first run),
# then inspect and evaluate each of them. Later stages (search, compress, export, verify) join as they land.
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
