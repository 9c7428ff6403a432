#!/usr/bin/env bash
# Configures and builds adze (Release) in build/. Extra arguments go to `cmake --build` (e.g. --target adze_cli).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cmake -S . -B build -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build build -j "$(nproc)" "$@"
