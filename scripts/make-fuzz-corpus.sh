#!/usr/bin/env bash
# Makes the fuzz targets' seed corpora (tests/fuzz/corpus/NAME/) and dictionaries (tests/fuzz/NAME.dict) from
# real files: the configs, files adze writes for the test fixtures (packed exports, a search state, a sweep
# store's records), small IDX and torch.save files, and what users type (shapes, budgets). Needs build/ (run
# scripts/build.sh first). The output is committed; run this again when a format changes.
set -euo pipefail
cd "$(dirname "$0")/.."
adze=build/cli/adze
out=tests/fuzz/corpus
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
rm -rf "$out"
mkdir -p "$out"/{packed,safetensors,plan,pipeline,target,sweep,tensors,idx,search_state,sweep_store,shape_budget}

cp configs/plans/*.json "$out/plan/"
cp configs/pipelines/*.json "$out/pipeline/"
cp configs/targets/*.json "$out/target/"
for f in configs/sweeps/*.json; do { printf '0'; cat "$f"; } >"$out/sweep/$(basename "$f")"; done  # 0: JSON
for f in configs/sweeps/*.yaml; do { printf '1'; cat "$f"; } >"$out/sweep/$(basename "$f")"; done  # 1: YAML

# Packed files of the CNN fixture (373 weights): INT8 weights, INT4 with the classifier 2:4 (the convolutions'
# rows, 27 and 9 weights, take no N:M), and W8A8 (the integer kernels with calibrated activations). A packed
# file is a safetensors file: they seed that reader too.
fx=tests/data
data="tensors:$fx/tensors_small.pt"
echo '{"defaults": {"weight_bits": 4}, "layers": {"classifier": {"nm": "2:4"}}}' >"$tmp/2of4-int4.json"
for plan in int8 2of4-int4 w8a8; do
  pipeline=configs/pipelines/ptq.json
  if [ "$plan" = w8a8 ]; then pipeline=configs/pipelines/ptq-activations.json; fi
  plan_file="configs/plans/$plan.json"
  if [ "$plan" = 2of4-int4 ]; then plan_file="$tmp/2of4-int4.json"; fi
  "$adze" -q compress "$fx/cnn_bn_traced.pt" --input-shape 1x3x16x16 --plan "$plan_file" \
    --pipeline "$pipeline" --data "$data" --limit 16 --out "$tmp/$plan" >/dev/null
  "$adze" -q export "$tmp/$plan" --format packed --out "$out/packed/cnn-$plan.adze" >/dev/null
  cp "$out/packed/cnn-$plan.adze" "$out/safetensors/cnn-$plan.safetensors"
done

# torch.save files as the tensors reader takes them, and IDX files as Fashion-MNIST ships them.
/usr/bin/python3 - "$out" <<'PY'
import gzip, struct, sys, torch
out = sys.argv[1]
torch.manual_seed(0)
torch.save({"inputs": torch.randn(4, 1, 2, 2), "targets": torch.tensor([0, 1, 2, 1])}, f"{out}/tensors/dict.pt")
torch.save((torch.randn(3, 5), torch.tensor([1, 0, 1], dtype=torch.int32)), f"{out}/tensors/tuple.pt")
images = struct.pack(">IIII", 0x803, 2, 2, 2) + bytes(range(8))
labels = struct.pack(">II", 0x801, 4) + bytes([0, 9, 3, 1])
open(f"{out}/idx/images-idx3-ubyte", "wb").write(images)
open(f"{out}/idx/labels-idx1-ubyte", "wb").write(labels)
open(f"{out}/idx/images-idx3-ubyte.gz", "wb").write(gzip.compress(images, mtime=0))
PY

# A search's state, and a sweep run's record (spec, NUL, result), on the fixture.
"$adze" -q search "$fx/cnn_bn_traced.pt" --input-shape 1x3x16x16 --data "$data" --limit 16 --probes 0 \
  --target cortex-m7 --budget bits=6 --algo evo --algo-option generations=2 --confirm 1 --out "$tmp/search" >/dev/null
cp "$tmp/search/search-state.json" "$out/search_state/"
cat >"$tmp/sweep.yaml" <<YAML
grid:
  model: [{path: $fx/cnn_bn_traced.pt, input_shape: 1x3x16x16}]
  plan: [configs/plans/int8.json]
  pipeline: [configs/pipelines/ptq.json]
  target: [cortex-m7]
  data: ["$data"]
export: [packed]
verify: true
YAML
"$adze" -q sweep run "$tmp/sweep.yaml" --out "$tmp/sw" >/dev/null
/usr/bin/python3 - "$tmp/sw" "$out/sweep_store/run" <<'PY'
import sqlite3, sys
db = sqlite3.connect(sys.argv[1] + "/sweep.db")
spec, result = db.execute("SELECT spec, result FROM runs").fetchone()
open(sys.argv[2], "wb").write(spec.encode() + b"\0" + result.encode())
PY

i=0
for s in 1x3x224x224 8,128 1x16x32 size=200KB size=1.5MiB latency=2ms energy=1mJ bits=4 10min 90s 1.5h; do
  printf '%s' "$s" >"$out/shape_budget/$i"
  i=$((i + 1))
done

# Dictionaries: the JSON keys and string values of each format's seeds.
for n in plan pipeline target sweep search_state sweep_store packed; do
  grep -aoh '"[A-Za-z_][A-Za-z0-9_.:-]*"' "$out/$n"/* | sort -u >"tests/fuzz/$n.dict"
done
cp tests/fuzz/packed.dict tests/fuzz/safetensors.dict
du -sh "$out"
