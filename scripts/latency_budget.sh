#!/usr/bin/env bash
# End to end, a latency budget on this machine: `adze search MODEL --target host --cost-model measured --budget
# latency=X`, the plan compressed (configs/pipelines/ptq.json) and exported packed at batch 1, then timed by
# `adze bench` (three rounds). Prints the plan's predicted latency, the measured median, and both against X.
#
# Usage: scripts/latency_budget.sh MODEL DATA BUDGET [THREADS] [OUT_DIR]
#   e.g. scripts/latency_budget.sh fmnist-cnn fmnist 70us 1
# Writes OUT_DIR (default build/latency-budget/MODEL-BUDGET-tTHREADS): the search, the compressed model, the
# packed file and bench.json.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -ge 3 ] || { echo "usage: $0 MODEL DATA BUDGET [THREADS] [OUT_DIR]" >&2; exit 2; }
model=$1 data=$2 budget=$3 threads=${4:-1}
out=${5:-build/latency-budget/$model-$budget-t$threads}
bash scripts/build.sh --target adze_cli
adze=build/cli/adze
rm -rf "$out" && mkdir -p "$out"
$adze -q --threads "$threads" search "$model" --data "$data" --target host --cost-model measured \
  --budget "latency=$budget" --confirm 0 --out "$out/search" > "$out/search.txt" || true  # exit 1: unsatisfiable
$adze -q compress "$model" --plan "$out/search/plan.json" --pipeline configs/pipelines/ptq.json --data "$data" \
  --out "$out/compressed" > /dev/null
$adze export "$out/compressed" --format packed --batch 1 --out "$out/model.adze" > /dev/null
$adze -q bench "$out/model.adze" --threads "$threads" --runs 300 --rounds 3 --json > "$out/bench.json"
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
