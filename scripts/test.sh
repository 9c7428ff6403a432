#!/usr/bin/env bash
# Checks the formatting (scripts/check-format.sh), builds adze, installs ONNX Runtime for the exporter tests,
# and runs every test (unit, CLI, install + find_package consumer) under ctest; then runs each fuzz target
# briefly from its committed corpus (scripts/fuzz.sh 10).
#
#   scripts/test.sh [CTEST ARGS]     # the test command (CI)
#   scripts/test.sh --sanitize       # the unit and CLI tests built with clang, ASan and UBSan (build-sanitize/)
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "${1:-}" = "--sanitize" ]; then
  shift
  bash scripts/install-deps.sh
  bash scripts/configure-sanitize.sh
  cmake --build build-sanitize -j "$(nproc)"
  bash scripts/install-ort.sh
  source scripts/sanitizer-env.sh
  export ADZE_ORT_MODULE=${ADZE_ORT_MODULE:-$PWD/build/ort/node_modules/onnxruntime-node}  # install-ort.sh's
  cd build-sanitize
  # The install test builds a consumer against an installed adze: the regular build covers it.
  exec ctest --output-on-failure -j "$(nproc)" -LE install "$@"
fi
bash scripts/check-format.sh
bash scripts/build.sh
bash scripts/install-ort.sh
(cd build && ctest --output-on-failure -j "$(nproc)" "$@")
bash scripts/fuzz.sh 10
