#!/usr/bin/env bash
# The speed table of the README, side by side in one run per model: each model compressed two ways (2:4 + INT4
# weights; INT8 weights and activations, W8A8), exported to adze's packed format at batch 1, and timed by
# `adze bench` against the original in libtorch and PyTorch's own fp32 ONNX export in ONNX Runtime, with one
# thread and with two. Models: the three reference models (trained once, cached) and torchvision's resnet18 and
# mobilenet_v2 at 64x64 (randomly initialised from a seed: speed does not depend on what the weights learned;
# scripts/speed_models.py makes them). About 10 minutes on 2 cores.
#
# Usage: scripts/speed.sh [OUT_DIR] (default build/speed). Writes OUT_DIR/NAME-tT.json (adze bench --json) and
# prints each table.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/build.sh --target adze_cli
bash scripts/install-ort.sh
missing=()
for p in python3-torchvision python3-onnx; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  SUDO=""; [ "$(id -u)" -ne 0 ] && SUDO="sudo"
  $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}" > /dev/null
fi
adze=build/cli/adze
out=${1:-build/speed}
rm -rf "$out" && mkdir -p "$out/models"
$adze -q reference train > /dev/null
refs=()
for m in fmnist-cnn fmnist-vit fortune-gpt; do refs+=("$($adze reference list --json | /usr/bin/python3 -c "
import json, sys
print(next(r['path'] for r in json.load(sys.stdin) if r['name'] == '$m'))")"); done
/usr/bin/python3 scripts/speed_models.py "$out/models" "${refs[@]}" 2> "$out/models/log"

compress() {  # compress NAME MODEL PLAN PIPELINE DATA
  $adze -q compress "$2" --plan "configs/plans/$3.json" --pipeline "configs/pipelines/$4.json" --data "$5" \
    --out "$out/$1" > "$out/$1.log"
  $adze export "$out/$1" --format packed --out "$out/$1.adze" --batch 1 > /dev/null
}
bench() {  # bench NAME ORIGINAL ROWS...
  local name=$1 original=$2
  shift 2
  for t in 1 2; do
    echo
    echo "== $name, $t thread(s)"
    $adze -q bench "$@" "$out/models/$name.onnx" --against "$original" --threads "$t" --runs 200
    $adze -q bench "$@" "$out/models/$name.onnx" --against "$original" --threads "$t" --runs 200 --json \
      > "$out/$name-t$t.json"
  done
}

calib="tensors:$out/models/calib64.pt"
compress cnn-2of4-int4   fmnist-cnn  2of4-int4                ptq             fmnist
compress cnn-w8a8        fmnist-cnn  w8a8                     ptq-activations fmnist
compress vit-2of4-int4   fmnist-vit  vit-2of4-int4            ptq             fmnist
compress vit-w8a8        fmnist-vit  w8a8                     ptq-activations fmnist
compress gpt-2of4-int4   fortune-gpt gpt-2of4-int4            ptq             fortunes
compress gpt-w8a8        fortune-gpt w8a8                     ptq-activations fortunes
compress resnet18-2of4-int4 "$out/models/resnet18.pt" resnet18-2of4-int4 ptq "$calib"
compress resnet18-w8a8      "$out/models/resnet18.pt" w8a8               ptq-activations "$calib"
compress mobilenet_v2-2of4-int4 "$out/models/mobilenet_v2.pt" mobilenet_v2-2of4-int4 ptq "$calib"
compress mobilenet_v2-w8a8      "$out/models/mobilenet_v2.pt" w8a8                   ptq-activations "$calib"

bench fmnist-cnn   fmnist-cnn                   "$out/cnn-2of4-int4.adze" "$out/cnn-w8a8.adze"
bench fmnist-vit   fmnist-vit                   "$out/vit-2of4-int4.adze" "$out/vit-w8a8.adze"
bench fortune-gpt  fortune-gpt                  "$out/gpt-2of4-int4.adze" "$out/gpt-w8a8.adze"
bench resnet18     "$out/models/resnet18.pt"     "$out/resnet18-2of4-int4.adze" "$out/resnet18-w8a8.adze"
bench mobilenet_v2 "$out/models/mobilenet_v2.pt" "$out/mobilenet_v2-2of4-int4.adze" "$out/mobilenet_v2-w8a8.adze"
