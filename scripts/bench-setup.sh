# Sourced by the benchmark scripts that run adze under mpirun (sweep-bench.sh, ddp-bench.sh): builds the CLI,
# makes OUT empty (the script's first argument, or DEFAULT_OUT), trains (once) and caches fmnist-cnn, and lets
# Open MPI run as root. Sets `adze` and `out`.
bash scripts/build.sh --target adze_cli
adze=build/cli/adze
out=${1:-$DEFAULT_OUT}
rm -rf "$out" && mkdir -p "$out"
$adze -q reference train fmnist-cnn >/dev/null
export OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
