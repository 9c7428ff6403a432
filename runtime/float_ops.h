// Float ops the packed runtime computes itself rather than through ATen's dispatcher: plain loops over
// contiguous tensors that the compiler vectorizes, for the shapes of single-sample inference where ATen's
// per-call overhead dominates.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace adze {
namespace packed {

/// max_pool2d over x [N, C, H, W] (float32) exactly as ATen's: kernel, stride (empty: the kernel), padding
/// (as −∞), dilation, ceil_mode. Error(kInvalidArgument) for a window that does not fit.
at::Tensor max_pool2d(const at::Tensor& x, const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride,
                      const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation, bool ceil_mode);

}  // namespace packed
}  // namespace adze
