// Depthwise 2-D convolution (groups = channels, one kh×kw filter per channel) in fp32, channels last, as
// MobileNet's blocks use it: the runtime's own kernel, since ATen's convolution is slow for it at batch 1.
// One implementation per instruction set, vectorised across channels, chosen by the Isa argument; any shape,
// stride, padding and dilation, fastest for 3×3 at stride 1 or 2 (depthwise.cc says how). A call allocates
// nothing; its output rows are split over the OpenMP threads where the work pays for it, each row computed as
// one thread computes it.
#pragma once

#include <cstdint>

#include "core/isa.h"

namespace adze {
namespace runtime {

struct DepthwiseShape {
  int64_t n = 1, h = 0, w = 0, c = 0;  ///< input [n, h, w, c]
  int64_t kh = 3, kw = 3;
  int64_t stride_y = 1, stride_x = 1, pad_y = 0, pad_x = 0, dilation_y = 1, dilation_x = 1;
  /// Output size (PyTorch's formula): (h + 2·pad_y − dilation_y·(kh − 1) − 1) / stride_y + 1, likewise x.
  int64_t out_h() const { return (h + 2 * pad_y - dilation_y * (kh - 1) - 1) / stride_y + 1; }
  int64_t out_w() const { return (w + 2 * pad_x - dilation_x * (kw - 1) - 1) / stride_x + 1; }
};

/// y [n, out_h, out_w, c] = clamp(Σ_taps x · w + bias, lo, hi) with zero padding. x [n, h, w, c];
/// w [kh·kw, c] (tap-major: tap i·kw + j holds every channel's weight, contiguous); bias [c] or null.
/// The clamp is v < lo ? lo : v > hi ? hi : v, so NaN stays NaN; ±infinity for no clamp, 0 and 6 for ReLU6.
/// y must not overlap x. `isa` must be one this CPU runs (active_isa(), or any of runnable_isas()); paths
/// differ only in rounding. Error(kInternal) for a non-positive size, stride or dilation, a negative padding,
/// or a padded input smaller than the dilated kernel (as PyTorch); n = 0 or c = 0 writes nothing.
void depthwise_conv2d_nhwc(const DepthwiseShape& s, const float* x, const float* w, const float* bias, float lo,
                           float hi, float* y, Isa isa);

}  // namespace runtime
}  // namespace adze
