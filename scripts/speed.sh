#!/usr/bin/env bash
# The speed tables (docs/results/*speed*.md), side by side in one run per model: each model compressed two ways (2:4 + INT4
# weights, or INT4 weights only; INT8 weights and activations, W8A8), exported at batch 1 to adze's packed format
# and to ONNX (for ONNX Runtime on any x86 CPU, --ort-target portable, and on VNNI CPUs, --ort-target vnni), and
# timed by `adze bench` against the original in libtorch and PyTorch's own fp32 ONNX export in ONNX Runtime,
# with one thread and with two (three rounds, the models in turn, each at one and two threads: `adze bench
# --thread-counts 1,2 --rounds 3`). Every ONNX export
# and packed file is then checked by `adze verify` (ONNX at ONNX Runtime's default optimization level;
# OUT_DIR/verify.txt).
# Models: the three reference models (trained once, cached), torchvision's resnet18 and mobilenet_v2 at 64x64
# (trained briefly on Fashion-MNIST by scripts/speed_models.py, so that verify's agreement means something) and
# the Python-traced nn.TransformerEncoder of tests/data (random weights). About 25 minutes on 2 cores.
#
# Usage: scripts/speed.sh [OUT_DIR] (default build/speed). Writes OUT_DIR/NAME.json (adze bench --json) and
# the tables (scripts/speed_table.py) to OUT_DIR/tables.md.
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
refs+=(tests/data/transformer_traced.pt)
/usr/bin/python3 scripts/speed_models.py "$out/models" "${refs[@]}" 2> "$out/models/log"

compress() {  # compress NAME MODEL PLAN PIPELINE DATA
  $adze -q compress "$2" --plan "configs/plans/$3.json" --pipeline "configs/pipelines/$4.json" --data "$5" \
    --out "$out/$1" > "$out/$1.log"
  $adze export "$out/$1" --format packed --out "$out/$1.adze" --batch 1 > /dev/null
  $adze export "$out/$1" --format onnx --out "$out/$1.onnx" --batch 1 > /dev/null
  $adze export "$out/$1" --format onnx --out "$out/$1-vnni.onnx" --batch 1 --ort-target vnni > /dev/null
  echo "$1 $5" >> "$out/compressed.txt"
}
bench() {  # bench NAME ORIGINAL COMPRESSED...: each compressed model's packed and ONNX exports
  local name=$1 original=$2 rows=()
  shift 2
  for c in "$@"; do rows+=("$out/$c.adze" "$out/$c.onnx" "$out/$c-vnni.onnx"); done
  set -- "${rows[@]}"
  # One measurement: three rounds, in each the models in turn, each at one thread and then at two, their runs
  # pooled (adze bench --thread-counts 1,2 --rounds 3).
  $adze -q bench "$out/models/$name.onnx" "$@" --against "$original" --thread-counts 1,2 --runs 200 --rounds 3 \
    --json > "$out/$name.json"
  echo "== $name: $out/$name.json"
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
tokens="tensors:tests/data/tensors_tokens.pt"
compress transformer-int4 tests/data/transformer_traced.pt int4 ptq             "$tokens"
compress transformer-w8a8 tests/data/transformer_traced.pt w8a8 ptq-activations "$tokens"

bench fmnist-cnn   fmnist-cnn                   cnn-2of4-int4 cnn-w8a8
bench fmnist-vit   fmnist-vit                   vit-2of4-int4 vit-w8a8
bench fortune-gpt  fortune-gpt                  gpt-2of4-int4 gpt-w8a8
bench resnet18     "$out/models/resnet18.pt"     resnet18-2of4-int4 resnet18-w8a8
bench mobilenet_v2 "$out/models/mobilenet_v2.pt" mobilenet_v2-2of4-int4 mobilenet_v2-w8a8
bench transformer_traced tests/data/transformer_traced.pt transformer-int4 transformer-w8a8
/usr/bin/python3 scripts/speed_table.py "$out" | tee "$out/tables.md"

# Fidelity: each export against its simulation, the packed file in adze's runtime (calibrated activations static,
# weight-only plans' dynamic), the ONNX ones at ONNX Runtime's default optimization level.
echo
echo "== adze verify, every export (adze runtime; ONNX Runtime, optimization all)" | tee "$out/verify.txt"
while read -r name data; do
  for f in "$name.adze" "$name.onnx" "$name-vnni.onnx"; do
    if result=$($adze verify "$out/$f" --against "$out/$name" --data "$data" --json); then verdict=verified; else verdict="NOT verified"; fi
    echo "$f: $verdict $(echo "$result" | /usr/bin/python3 -c "
import json, sys
r = json.load(sys.stdin)
print('(agreement %.2f%% of %d predictions, min %.2f%%; cosine %.6f)' % (100 * r['argmax_agreement'], r['predictions'], 100 * r['thresholds']['min_agreement'], r['cosine']))" 2>/dev/null)" \
      | tee -a "$out/verify.txt"
  done
done < "$out/compressed.txt"
