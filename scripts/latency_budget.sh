#!/usr/bin/env bash
# End to end, a latency budget on this machine: `adze search MODEL --target host --cost-model measured --budget
# latency=X`, the plan compressed (configs/pipelines/ptq.json) and exported packed at batch 1, then timed by
# `adze bench` (three rounds). Prints the plan's predicted latency, the measured median, and both against X.
#
# Usage: scripts/latency_budget.sh MODEL DATA BUDGET [THREADS] [OUT_DIR]
#   e.g. scripts/latency_budget.sh fmnist-cnn fmnist 70us 1
# Writes OUT_DIR, which must not exist (default build/latency-budget/MODEL-BUDGET-tTHREADS, replaced): the
# search, the compressed model, the packed file and bench.json, all at once at the end. Bad arguments: one line,
# exit 2.
set -euo pipefail
cd "$(dirname "$0")/.."
fail() { echo "latency_budget.sh: $1" >&2; exit 2; }
[ $# -ge 3 ] && [ $# -le 5 ] || fail "usage: $0 MODEL DATA BUDGET [THREADS] [OUT_DIR]"
model=$1 data=$2 budget=$3 threads=${4:-1}
[[ $threads =~ ^[1-9][0-9]*$ ]] || fail "THREADS '$threads': expected a whole number of threads, 1 or more"
if [ $# -ge 5 ]; then
  out=$5
  [ ! -e "$out" ] || fail "OUT_DIR '$out' exists: give a new directory"
else
  out=build/latency-budget/$model-$budget-t$threads  # the default is replaced
fi
bash scripts/build.sh --target adze_cli
adze=build/cli/adze
# Everything goes to a temporary sibling, renamed onto OUT_DIR at the end: a failed run leaves nothing behind.
work="$out.tmp-$$"
trap 'rm -rf "$work"' EXIT
mkdir -p "$work"
rc=0
$adze -q --threads "$threads" search "$model" --data "$data" --target host --cost-model measured \
  --budget "latency=$budget" --confirm 0 --out "$work/search" > "$work/search.txt" || rc=$?
[ $rc -le 1 ] || exit $rc  # 1: the budget cannot be met, and the closest plan is written; else adze said why
$adze -q compress "$model" --plan "$work/search/plan.json" --pipeline configs/pipelines/ptq.json --data "$data" \
  --out "$work/compressed" > /dev/null
$adze export "$work/compressed" --format packed --batch 1 --out "$work/model.adze" > /dev/null
$adze -q bench "$work/model.adze" --threads "$threads" --runs 300 --rounds 3 --json > "$work/bench.json"
rm -rf "$out" && mv "$work" "$out"
/usr/bin/python3 - "$out" <<'PY'
import json, sys
out = sys.argv[1]
front = json.load(open(out + "/search/front.json"))  # --confirm 0: the plan written is the best one
bench = json.load(open(out + "/bench.json"))
x, predicted = front["budget"]["value"], front["best"]["cost"]
row = bench["rows"][0]
measured = row["median_seconds"]
print("CPU flags: %s; %d thread(s); plan: %s" % (bench["cpu_flags"], bench["threads"], front["best"]["layers"]))
print("budget %.2f us%s; predicted %.2f us; measured median %.2f us (p10 %.2f, p90 %.2f)" % (
    x * 1e6, "" if front["satisfiable"] else " (cannot be met: the closest plan)", predicted * 1e6, measured * 1e6,
    row["p10_seconds"] * 1e6, row["p90_seconds"] * 1e6))
print("measured / predicted %.3f; measured / budget %.3f (%s)" % (
    measured / predicted, measured / x, "within 10%" if measured <= 1.1 * x else "OVER by more than 10%"))
PY
