// The BLAS under libtorch keeps a thread pool of its own; set_blas_threads sizes it (core/process_settings.h).
#include <dlfcn.h>
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <thread>

#include "core/process_settings.h"

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

}  // namespace
}  // namespace adze
