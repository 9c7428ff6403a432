// The BLAS under libtorch keeps a thread pool of its own; set_blas_threads sizes it (core/process_settings.h),
// and set_compute_threads sizes it with ATen's and OpenMP's (model/compute_threads.h).
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <omp.h>
#include <torch/torch.h>

#include <algorithm>
#include <thread>

#include "core/process_settings.h"
#include "model/compute_threads.h"

namespace adze {
namespace {

TEST(ProcessSettings, BlasThreadPoolFollowsTheThreadCount) {
  torch::mm(torch::ones({64, 64}), torch::ones({64, 64}));  // libtorch's BLAS is loaded and has started
  const auto get = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  if (!get) GTEST_SKIP() << "libtorch here runs on a BLAS other than OpenBLAS";
  ASSERT_TRUE(set_blas_threads(1));
  EXPECT_EQ(get(), 1);
  const int two = std::min(2, static_cast<int>(std::max(1u, std::thread::hardware_concurrency())));
  ASSERT_TRUE(set_blas_threads(two));
  EXPECT_EQ(get(), two);
  set_blas_threads(1);
}

// One call sizes ATen's pool, OpenMP's (the packed runtime's kernels) and OpenBLAS's.
TEST(ComputeThreads, OneCallSizesAtenOpenMpAndTheBlas) {
  torch::mm(torch::ones({64, 64}), torch::ones({64, 64}));
  const auto blas = reinterpret_cast<int (*)()>(dlsym(RTLD_DEFAULT, "openblas_get_num_threads"));
  for (const int n : {2, 1}) {
    set_compute_threads(n);
    EXPECT_EQ(at::get_num_threads(), n);
    EXPECT_EQ(omp_get_max_threads(), n);
    if (blas) {
      EXPECT_EQ(blas(), std::min(n, static_cast<int>(std::max(1u, std::thread::hardware_concurrency()))));
    }
  }
  set_compute_threads(0);  // below 1: one thread
  EXPECT_EQ(at::get_num_threads(), 1);
}

}  // namespace
}  // namespace adze
