// Work split over OpenMP threads only where it pays (internal to runtime/).
#pragma once

#include <omp.h>

namespace adze {
namespace runtime {

/// Runs `body`, whose loops are shared with `omp for`, on the OpenMP team where `parallel` and there is more than
/// one thread, else on this thread without entering a parallel region: an `omp parallel if (false)` region of
/// one thread still costs libgomp a team allocation and a futex wake per call (perf on decompose_bench: about a
/// tenth of a batch-1 rank-128 layer's time, 3.6 -> 3.2 us across builds). An `omp for` outside a region runs its whole
/// loop on the calling thread.
template <typename Body>
void maybe_parallel(bool parallel, const Body& body) {
  if (!parallel || omp_get_max_threads() < 2) return body();
#pragma omp parallel
  body();
}

}  // namespace runtime
}  // namespace adze
