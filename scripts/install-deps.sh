#!/usr/bin/env bash
# Installs the Debian packages adze builds, tests and runs with, if any are missing (python3-torch: the tests
# check that exported TorchScript loads in Python's torch.jit.load). Idempotent: when all are
# present it only asks dpkg (well under a second).
set -euo pipefail

packages=(
  build-essential cmake ccache
  libtorch-dev libopenblas0-pthread libeigen3-dev nlohmann-json3-dev libcli11-dev
  libgtest-dev libgmock-dev libbenchmark-dev libonnx-dev zlib1g-dev
  dataset-fashion-mnist fortunes
  python3-torch clang-format clang libclang-rt-dev
  libsqlite3-dev libxxhash-dev libyaml-cpp-dev openmpi-bin libopenmpi-dev libgloo-dev
)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$p")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "install-deps: installing ${missing[*]}" >&2
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
$SUDO apt-get update -q
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
