#!/usr/bin/env bash
# The compression quality benchmarks (docs/results/quality.md): every run compresses a reference model (trained once and
# cached) and reports its test metric before and after in the same run; `adze compare` prints the table.
# About 15 minutes on 2 cores. Usage: scripts/quality.sh [OUT_DIR] (default build/quality).
set -euo pipefail
cd "$(dirname "$0")/.."
source scripts/compress-runs.sh "${1:-build/quality}"
run cnn-w8a8-ptq            fmnist-cnn  w8a8           ptq-activations fmnist
run cnn-2of4-int4-a8-ptq    fmnist-cnn  2of4-int4-a8   ptq-activations fmnist
run cnn-2of4-int4-a8-ste    fmnist-cnn  2of4-int4-a8   qat             fmnist
run cnn-2of4-int4-a8-lsq    fmnist-cnn  2of4-int4-a8   qat-lsq         fmnist
run cnn-2of4-int4-ptq       fmnist-cnn  2of4-int4      ptq             fmnist
run cnn-2of4-int4-perm-ptq  fmnist-cnn  2of4-int4-perm ptq             fmnist
run cnn-1of4-int4-ptq       fmnist-cnn  1of4-int4      ptq             fmnist
run cnn-1of4-int4-ste       fmnist-cnn  1of4-int4      qat-weights     fmnist
run cnn-1of4-int4-admm      fmnist-cnn  1of4-int4      admm            fmnist
run vit-2of4-int4-ptq       fmnist-vit  vit-2of4-int4  ptq             fmnist
run vit-2of4-int4-ste       fmnist-vit  vit-2of4-int4  qat-weights     fmnist
run gpt-int4-ptq            fortune-gpt int4           ptq             fortunes
run gpt-2of4-int8-ptq       fortune-gpt gpt-2of4-int8  ptq             fortunes
run gpt-2of4-int8-ste       fortune-gpt gpt-2of4-int8  qat-weights     fortunes
echo
$adze compare "$out"/*/
