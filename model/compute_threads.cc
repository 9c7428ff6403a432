#include "model/compute_threads.h"

#include <ATen/Parallel.h>
#include <omp.h>

#include "core/process_settings.h"

namespace adze {

void set_compute_threads(int threads) {
  const int n = threads < 1 ? 1 : threads;
  at::set_num_threads(n);
  omp_set_num_threads(n);
  set_blas_threads(n);
}

}  // namespace adze
