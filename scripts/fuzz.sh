#!/usr/bin/env bash
# Builds the libFuzzer targets (tests/fuzz/) with clang, AddressSanitizer and UndefinedBehaviorSanitizer in
# build-sanitize/, and runs each for SECONDS (default 60) from its committed seed corpus.
#
#   scripts/fuzz.sh [SECONDS] [NAME...]     # NAME: packed, plan, sweep, ... (default: every target)
#
# The committed corpus (tests/fuzz/corpus/NAME) is only read; what the fuzzer finds goes to
# build-sanitize/fuzz/corpus/NAME. A crash, a leak, a sanitizer report or an exception other than adze::Error
# leaves its input in build-sanitize/fuzz/crashes/ and makes the script fail. Prints each target's executions.
# The mutations are drawn from seed FUZZ_SEED (default 1), so a run can be repeated. FUZZ_RUNS=N stops each
# target after N executions instead (SECONDS still bounds it):
#
#   FUZZ_RUNS=1000000 scripts/fuzz.sh 7200 plan    # the bar: a million executions
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${1:-60}
shift || true
bash scripts/install-deps.sh
bash scripts/configure-sanitize.sh
names=("$@")
if [ ${#names[@]} -eq 0 ]; then
  names=(packed safetensors plan pipeline target sweep tensors idx search_state sweep_store shape_budget)
fi
targets=()
for n in "${names[@]}"; do targets+=("fuzz_$n"); done
cmake --build build-sanitize -j "$(nproc)" --target "${targets[@]}"

source scripts/sanitizer-env.sh
work=build-sanitize/fuzz
mkdir -p "$work/crashes"
status=0
printf '%-14s %12s %10s %8s  %s\n' target executions "exec/s" seconds verdict
for n in "${names[@]}"; do
  mkdir -p "$work/corpus/$n"
  runs=()
  if [ -n "${FUZZ_RUNS:-}" ]; then runs=(-runs="$FUZZ_RUNS"); fi
  dict=()
  if [ -f "tests/fuzz/$n.dict" ]; then dict=(-dict="tests/fuzz/$n.dict"); fi
  log="$work/$n.log"
  if "build-sanitize/tests/fuzz/fuzz_$n" "$work/corpus/$n" "tests/fuzz/corpus/$n" "${dict[@]}" "${runs[@]}" \
      -seed="${FUZZ_SEED:-1}" -max_total_time="$seconds" -timeout=20 -rss_limit_mb=4096 -print_final_stats=1 \
      -artifact_prefix="$work/crashes/$n-" >"$log" 2>&1; then
    verdict=clean
  else
    verdict="FAILED (see $log)"
    status=1
  fi
  executed=$(sed -n 's/^stat::number_of_executed_units: *//p' "$log" | tail -1)
  time=$(grep -o 'Done [0-9]* runs in [0-9]* second' "$log" | awk '{print $5}' | tail -1 || true)
  rate=$(sed -n 's/^stat::average_exec_per_sec: *//p' "$log" | tail -1)
  printf '%-14s %12s %10s %8s  %s\n' "$n" "${executed:-?}" "${rate:-?}" "${time:-$seconds}" "$verdict"
done
exit $status
