# Sourced by scripts/test.sh --sanitize and scripts/fuzz.sh: how the sanitizer build runs. Container overflow
# checks are off because libtorch is not instrumented (its std::vector annotations would disagree with
# adze's); leaks in the libraries adze links are suppressed (tests/sanitize/lsan.supp), adze's own are not.
root=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:detect_container_overflow=0:abort_on_error=1}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$root/tests/sanitize/lsan.supp:print_suppressions=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
