// The threads a benchmark program runs with: ADZE_BENCH_THREADS (default 1), set once for OpenMP, ATen and the
// BLAS under ATen (OpenBLAS or MKL, whose own thread pools ignore the other two).
#pragma once

#include <algorithm>
#include <cstdlib>

#include "model/compute_threads.h"

namespace adze::bench {

inline int set_bench_threads() {
  const char* env = std::getenv("ADZE_BENCH_THREADS");
  const int n = std::max(1, env && *env ? std::atoi(env) : 1);
  set_compute_threads(n);
  return n;
}

}  // namespace adze::bench
