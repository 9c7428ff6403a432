#include "runtime/float_ops.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>

#include "core/error.h"

namespace adze {
namespace packed {
namespace {

// PyTorch's pooling output size: floor (or ceil) of the window count, and with ceil_mode no window that starts
// in the right padding.
int64_t pooled_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d, bool ceil_mode) {
  const int64_t span = in + 2 * p - d * (k - 1) - 1;
  int64_t out = (ceil_mode ? (span + s - 1) / s : span / s) + 1;
  if (ceil_mode && (out - 1) * s >= in + p) --out;
  return out;
}

}  // namespace

at::Tensor max_pool2d(const at::Tensor& x, const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride_in,
                      const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation, bool ceil_mode) {
  const std::vector<int64_t> stride = stride_in.empty() ? kernel : stride_in;
  if (x.dim() != 4 || kernel.size() != 2 || stride.size() != 2 || padding.size() != 2 || dilation.size() != 2)
    throw Error(ErrorKind::kInvalidArgument, "max_pool2d: input " + c10::str(x.sizes()) + " or its window");
  const at::Tensor in = x.to(torch::kFloat).contiguous();
  const int64_t planes = in.size(0) * in.size(1), H = in.size(2), W = in.size(3);
  const int64_t oh = pooled_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode);
  const int64_t ow = pooled_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode);
  if (oh < 1 || ow < 1 || padding[0] * 2 > kernel[0] || padding[1] * 2 > kernel[1])
    throw Error(ErrorKind::kInvalidArgument, "max_pool2d: a window that does not fit input " + c10::str(x.sizes()));
  at::Tensor out = torch::empty({in.size(0), in.size(1), oh, ow}, torch::kFloat);
  // Locals, not the vectors: stores through dst could alias their elements as far as the compiler knows.
  const int64_t kh = kernel[0], kw = kernel[1], sy = stride[0], sx = stride[1], py = padding[0], px = padding[1],
                dy = dilation[0], dx = dilation[1];
  const float* src = in.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  for (int64_t p = 0; p < planes; ++p, src += H * W)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox) {
        // Branch-free (a data-dependent branch per element mispredicts half the time); NaN wins, as in ATen.
        float m = -std::numeric_limits<float>::infinity();
        bool nan = false;
        for (int64_t i = 0; i < kh; ++i) {
          const int64_t iy = oy * sy - py + i * dy;
          if (iy < 0 || iy >= H) continue;
          const float* line = src + iy * W;
          for (int64_t j = 0; j < kw; ++j) {
            const int64_t ix = ox * sx - px + j * dx;
            if (ix < 0 || ix >= W) continue;
            const float v = line[ix];
            m = v > m ? v : m;
            nan |= v != v;
          }
        }
        *dst++ = nan ? std::numeric_limits<float>::quiet_NaN() : m;
      }
  return out;
}

}  // namespace packed
}  // namespace adze
