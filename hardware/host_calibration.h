// The `host` target: this machine, its figures measured by adze (calibrate_host) and cached as a target JSON
// file (cache_dir("targets")/host.json: ~/.cache/adze/targets/host.json by default).
#pragma once

#include <functional>
#include <string>

#include "hardware/target.h"

namespace adze {

/// Measures this machine with the current libtorch thread count: fp32 GEMM throughput (1024³ matmul), weight
/// streaming bandwidth (fp32 GEMV over a 4096×8192 matrix, larger than any cache here), the cost of one small
/// op (the per-layer overhead) and the last-level cache size. Energy figures are not measurable here: they are
/// Horowitz's 45 nm figures, marked as assumptions. Takes a few seconds.
Target calibrate_host(bool progress);

/// The fastest of `runs` timings of fn, in seconds (the least disturbed one).
double best_seconds(const std::function<void()>& fn, int runs);

/// Where the calibrated host target is cached.
std::string host_target_path();

/// calibrate_host, written to host_target_path() (atomically); origin is that path.
Target calibrate_and_cache_host(bool progress);

/// The cached host target, calibrated and cached first when there is none (or it is unreadable).
Target host_target();

}  // namespace adze
