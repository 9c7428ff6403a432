# Sourced by the scripts that compress reference models side by side (quality.sh, decompose.sh):
#   source scripts/compress-runs.sh OUT_DIR
# builds the CLI, empties OUT_DIR, trains the reference models once (cached), and defines
#   run NAME MODEL PLAN PIPELINE DATA
# which compresses MODEL with configs/plans/PLAN.json through configs/pipelines/PIPELINE.json into OUT_DIR/NAME
# (its summary in OUT_DIR/NAME.log). $adze is the CLI, $out the directory.
bash scripts/build.sh --target adze_cli
adze=build/cli/adze
out=$1
rm -rf "$out" && mkdir -p "$out"
$adze -q reference train > /dev/null

run() {  # run NAME MODEL PLAN PIPELINE DATA
  echo "-- $1" >&2
  $adze -q compress "$2" --plan "configs/plans/$3.json" --pipeline "configs/pipelines/$4.json" --data "$5" \
    --out "$out/$1" > "$out/$1.log"
}
