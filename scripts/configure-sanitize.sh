#!/usr/bin/env bash
# Configures build-sanitize/: clang, AddressSanitizer and UndefinedBehaviorSanitizer, the libFuzzer targets and
# the tests. scripts/fuzz.sh builds the fuzz targets there, scripts/test.sh --sanitize the tests. Line tables
# (-gline-tables-only) name source lines in sanitizer reports.
set -euo pipefail
cd "$(dirname "$0")/.."
CC=clang CXX=clang++ cmake -S . -B build-sanitize -DCMAKE_BUILD_TYPE=Release -DCMAKE_CXX_FLAGS="-gline-tables-only" \
  -DADZE_SANITIZE=ON -DADZE_FUZZ=ON -DADZE_BUILD_TESTS=ON -DADZE_BUILD_BENCH=OFF >/dev/null
