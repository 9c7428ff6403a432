#!/usr/bin/env bash
# Installs ONNX Runtime for the exporter tests into build/ort (onnxruntime-node from the npm registry, with
# --ignore-scripts: its postinstall tries a download that fails here; the CPU library is in the package).
# Idempotent: does nothing when it is already there.
set -euo pipefail
cd "$(dirname "$0")/.."
dir=build/ort
if [ -f "$dir/node_modules/onnxruntime-node/package.json" ]; then exit 0; fi
command -v npm > /dev/null || { echo "install-ort: npm is missing (install Node.js with npm)" >&2; exit 1; }
mkdir -p "$dir"
echo "install-ort: installing onnxruntime-node into $dir" >&2
npm install --prefix "$dir" --ignore-scripts --no-audit --no-fund onnxruntime-node > "$dir/npm.log" 2>&1 || {
  cat "$dir/npm.log" >&2
  exit 1
}
