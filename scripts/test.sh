#!/usr/bin/env bash
# Checks the formatting (scripts/check-format.sh), builds adze, installs ONNX Runtime for the exporter tests,
# and runs every test (unit, CLI, install + find_package consumer) under ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/check-format.sh
bash scripts/build.sh
bash scripts/install-ort.sh
cd build
ctest --output-on-failure -j "$(nproc)" "$@"
