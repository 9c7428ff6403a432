// The runtime's own float ops against ATen's, on random shapes and every window option.
#include "runtime/float_ops.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <limits>

namespace adze {
namespace packed {
namespace {

TEST(FloatOps, MaxPool2dIsAtens) {
  torch::manual_seed(0);
  struct Window {
    std::vector<int64_t> kernel, stride, padding, dilation;
    bool ceil_mode;
  };
  for (const Window& w : std::vector<Window>{{{2, 2}, {2, 2}, {0, 0}, {1, 1}, false},
                                             {{3, 3}, {2, 2}, {1, 1}, {1, 1}, false},
                                             {{3, 3}, {2, 2}, {1, 1}, {1, 1}, true},
                                             {{2, 3}, {1, 2}, {1, 0}, {2, 1}, true},
                                             {{2, 2}, {}, {0, 0}, {1, 1}, false}}) {
    for (const auto& shape : std::vector<std::vector<int64_t>>{{1, 3, 9, 7}, {2, 4, 12, 12}}) {
      at::Tensor x = torch::randn(shape);
      x.view({-1})[5] = std::numeric_limits<float>::quiet_NaN();  // NaN wins its windows, as in ATen
      const at::Tensor want = torch::max_pool2d(x, w.kernel, w.stride, w.padding, w.dilation, w.ceil_mode);
      const at::Tensor got = max_pool2d(x, w.kernel, w.stride, w.padding, w.dilation, w.ceil_mode);
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_TRUE(torch::equal(got.isnan(), want.isnan()));
      EXPECT_TRUE(torch::equal(got.nan_to_num(0), want.nan_to_num(0)));
    }
  }
}

}  // namespace
}  // namespace packed
}  // namespace adze
