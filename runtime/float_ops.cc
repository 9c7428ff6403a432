#include "runtime/float_ops.h"

#include <torch/torch.h>

#include <algorithm>
#include <limits>
#include <vector>

#include "core/error.h"
#include "runtime/buffer_pool.h"
#include "runtime/kernels/depthwise.h"
#include "runtime/kernels/float_kernels.h"
#include "runtime/kernels/qgemm.h"
#include "runtime/kernels/row_kernels.h"
#include "runtime/parallel.h"

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

const runtime::FloatKernels& kernels() { return runtime::float_kernels(active_isa()); }

bool is_float(const at::Tensor& x) { return x.defined() && x.scalar_type() == at::kFloat; }

// Whether x's elements fill its storage span exactly (contiguous in some dimension order), so a flat loop
// over numel() values visits each element once.
bool dense(const at::Tensor& x) { return x.is_non_overlapping_and_dense(); }

at::Tensor empty_like_dense(const at::Tensor& x) { return runtime::empty_output(x.sizes(), at::kFloat, x.strides()); }

}  // namespace

bool fits_layer_norm(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta) {
  if (!is_float(x) || x.dim() == 0 || !x.is_contiguous()) return false;
  const int64_t n = x.size(-1);
  auto fits = [&](const at::Tensor& t) { return !t.defined() || (is_float(t) && t.is_contiguous() && t.numel() == n); };
  return fits(gamma) && fits(beta);
}

at::Tensor layer_norm_last(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta, float eps) {
  at::Tensor y = runtime::empty_output(x.sizes());
  const int64_t n = x.size(-1);
  kernels().layer_norm(x.data_ptr<float>(), y.data_ptr<float>(), n ? x.numel() / n : 0, n,
                       gamma.defined() ? gamma.data_ptr<float>() : nullptr,
                       beta.defined() ? beta.data_ptr<float>() : nullptr, eps);
  return y;
}

bool fits_softmax(const at::Tensor& x, int64_t dim) {
  return is_float(x) && x.dim() > 0 && x.is_contiguous() && (dim == -1 || dim == x.dim() - 1);
}

at::Tensor softmax_last(const at::Tensor& x) {
  at::Tensor y = runtime::empty_output(x.sizes());
  const int64_t n = x.size(-1);
  kernels().softmax(x.data_ptr<float>(), y.data_ptr<float>(), n ? x.numel() / n : 0, n);
  return y;
}

at::Tensor gelu(const at::Tensor& x, bool tanh) {
  at::Tensor y = empty_like_dense(x);
  (tanh ? kernels().gelu_tanh : kernels().gelu)(x.data_ptr<float>(), y.data_ptr<float>(), x.numel());
  return y;
}

void gelu_in_place(at::Tensor& x, bool tanh) {
  (tanh ? kernels().gelu_tanh : kernels().gelu)(x.data_ptr<float>(), x.data_ptr<float>(), x.numel());
}

bool fits_add(const at::Tensor& a, const at::Tensor& b) {
  return is_float(a) && is_float(b) && a.sizes() == b.sizes() && a.strides() == b.strides() && dense(a);
}

at::Tensor add(const at::Tensor& a, const at::Tensor& b, float alpha) {
  at::Tensor y = empty_like_dense(a);
  kernels().add(a.data_ptr<float>(), b.data_ptr<float>(), alpha, y.data_ptr<float>(), a.numel());
  return y;
}

bool fits_clamp(const at::Tensor& x) { return is_float(x) && dense(x); }

at::Tensor clamp(const at::Tensor& x, float lo, float hi) {
  at::Tensor y = empty_like_dense(x);
  kernels().clamp(x.data_ptr<float>(), y.data_ptr<float>(), x.numel(), lo, hi);
  return y;
}

void apply_clamp_and_quant(at::Tensor& y, const OutputClamp& c, const std::optional<ActivationQuant>& quant) {
  const bool clamps = c.active();
  if (!clamps && !quant) return;
  if (!fits_clamp(y)) {
    if (clamps) y = y.clamp(c.lo, c.hi);
    if (quant) y = at::fake_quantize_per_tensor_affine(y, quant->scale, quant->zero_point, 0, 255);
    return;
  }
  if (clamps) kernels().clamp(y.data_ptr<float>(), y.data_ptr<float>(), y.numel(), c.lo, c.hi);
  if (quant) fake_quantize_in_place(y, *quant);
}

at::Tensor fake_quantize(const at::Tensor& x, const ActivationQuant& q) {
  at::Tensor y = empty_like_dense(x);
  runtime::fake_quantize_static(x.data_ptr<float>(), x.numel(), q.scale, q.zero_point, y.data_ptr<float>());
  return y;
}

void fake_quantize_in_place(at::Tensor& x, const ActivationQuant& q) {
  runtime::fake_quantize_static(x.data_ptr<float>(), x.numel(), q.scale, q.zero_point, x.data_ptr<float>());
}

bool fits_masked_fill(const at::Tensor& x, const at::Tensor& mask) {
  if (!is_float(x) || !x.is_contiguous() || mask.scalar_type() != at::kBool || !mask.is_contiguous() ||
      mask.dim() > x.dim() || mask.numel() == 0)
    return false;
  for (int64_t d = 1; d <= mask.dim(); ++d)
    if (mask.size(-d) != x.size(-d)) return false;
  return true;
}

at::Tensor masked_fill(const at::Tensor& x, const at::Tensor& mask, float value) {
  at::Tensor y = runtime::empty_output(x.sizes());
  const int64_t n = mask.numel(), repeats = x.numel() / n;
  const float* in = x.data_ptr<float>();
  const bool* m = mask.data_ptr<bool>();
  float* out = y.data_ptr<float>();
  for (int64_t r = 0; r < repeats; ++r, in += n, out += n)
#pragma omp simd
    for (int64_t i = 0; i < n; ++i) out[i] = m[i] ? value : in[i];
  return y;
}

bool fits_matmul(const at::Tensor& a, const at::Tensor& b) {
  if (!is_float(a) || !is_float(b) || a.dim() != b.dim() || a.dim() < 2 || a.dim() > 4) return false;
  for (int64_t d = 0; d + 2 < a.dim(); ++d)
    if (a.size(d) != b.size(d)) return false;
  return a.size(-1) == b.size(-2);
}

at::Tensor matmul(const at::Tensor& a, const at::Tensor& b, float alpha) {
  const int64_t r = a.dim(), m = a.size(-2), k = a.size(-1), n = b.size(-1);
  std::vector<int64_t> shape(a.sizes().begin(), a.sizes().end());
  shape.back() = n;
  at::Tensor c = runtime::empty_output(shape);
  // Up to two batch dimensions, walked by their strides (views of permuted heads need no copy).
  const int64_t b0 = r >= 3 ? a.size(0) : 1, b1 = r == 4 ? a.size(1) : 1;
  const int64_t as0 = r >= 3 ? a.stride(0) : 0, as1 = r == 4 ? a.stride(1) : 0;
  const int64_t bs0 = r >= 3 ? b.stride(0) : 0, bs1 = r == 4 ? b.stride(1) : 0;
  const float* pa = a.data_ptr<float>();
  const float* pb = b.data_ptr<float>();
  float* pc = c.data_ptr<float>();
  const runtime::FloatKernels& kern = kernels();
  for (int64_t i = 0; i < b0; ++i)
    for (int64_t j = 0; j < b1; ++j, pc += m * n)
      kern.matmul(pa + i * as0 + j * as1, a.stride(-2), a.stride(-1), pb + i * bs0 + j * bs1, b.stride(-2),
                  b.stride(-1), pc, n, m, n, k, alpha);
  return c;
}

at::Tensor depthwise_conv2d(const at::Tensor& x, const at::Tensor& taps, int64_t kh, int64_t kw, const at::Tensor& bias,
                            const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                            const std::vector<int64_t>& dilation, const OutputClamp& clamp, bool contiguous_out) {
  const at::Tensor nhwc = runtime::contiguous_output(x.to(at::kFloat).permute({0, 2, 3, 1}));
  runtime::DepthwiseShape s;
  s.n = nhwc.size(0), s.h = nhwc.size(1), s.w = nhwc.size(2), s.c = nhwc.size(3);
  s.kh = kh, s.kw = kw, s.stride_y = stride[0], s.stride_x = stride[1], s.pad_y = padding[0], s.pad_x = padding[1];
  s.dilation_y = dilation[0], s.dilation_x = dilation[1];
  const bool fits =
      s.h + 2 * s.pad_y >= s.dilation_y * (s.kh - 1) + 1 && s.w + 2 * s.pad_x >= s.dilation_x * (s.kw - 1) + 1;
  if (taps.size(1) != s.c || !fits || s.out_h() < 1 || s.out_w() < 1)
    throw Error(ErrorKind::kInvalidArgument, "depthwise conv2d: input " + c10::str(x.sizes()) + " does not fit its " +
                                                 std::to_string(taps.size(1)) + " channels or window");
  at::Tensor y = runtime::empty_output({s.n, s.out_h(), s.out_w(), s.c});
  runtime::depthwise_conv2d_nhwc(s, nhwc.data_ptr<float>(), taps.data_ptr<float>(),
                                 bias.defined() ? bias.data_ptr<float>() : nullptr, clamp.lo, clamp.hi,
                                 y.data_ptr<float>(), active_isa());
  const at::Tensor nchw = y.permute({0, 3, 1, 2});
  return contiguous_out ? runtime::contiguous_output(nchw) : nchw;
}

bool fits_global_avg_pool(const at::Tensor& x) {
  return x.dim() == 4 && x.scalar_type() == at::kFloat && x.size(2) * x.size(3) > 0 &&
         (x.is_contiguous() || x.is_contiguous(at::MemoryFormat::ChannelsLast));
}

at::Tensor global_avg_pool(const at::Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1), H = x.size(2), W = x.size(3);
  at::Tensor out = runtime::empty_output({N, C, 1, 1});
  const float* src = x.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  const float area = static_cast<float>(H * W);
  if (x.is_contiguous()) {  // a sum per plane
    for (int64_t p = 0; p < N * C; ++p, src += H * W) {
      float sum = 0;
      for (int64_t i = 0; i < H * W; ++i) sum += src[i];
      dst[p] = sum / area;
    }
    return out;
  }
  // Channels last (a convolution's output as the runtime leaves it): every channel's sum in vectors, pixel by pixel.
  for (int64_t n = 0; n < N; ++n, dst += C) {
    std::fill_n(dst, C, 0.0f);
    for (int64_t i = 0; i < H * W; ++i, src += C)
#pragma omp simd
      for (int64_t c = 0; c < C; ++c) dst[c] += src[c];
#pragma omp simd
    for (int64_t c = 0; c < C; ++c) dst[c] /= area;
  }
  return out;
}

bool fits_flatten_channels_last(const at::Tensor& x, int64_t start, int64_t end) {
  return x.dim() == 4 && x.scalar_type() == at::kFloat && (start == 1 || start == -3) && (end == 3 || end == -1) &&
         !x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast);
}

at::Tensor flatten_channels_last(const at::Tensor& x) {
  const int64_t N = x.size(0), C = x.size(1), HW = x.size(2) * x.size(3);
  at::Tensor out = runtime::empty_output({N, C * HW});
  const float* src = x.data_ptr<float>();
  float* dst = out.data_ptr<float>();
  // [HW, C] → [C, HW] per sample, in tiles of 8 channels so that reads and writes both stay in a few lines.
  constexpr int64_t kTile = 8;
  for (int64_t n = 0; n < N; ++n, src += HW * C, dst += C * HW)
    for (int64_t c0 = 0; c0 < C; c0 += kTile) {
      const int64_t c1 = std::min(C, c0 + kTile);
      for (int64_t p = 0; p < HW; ++p)
        for (int64_t c = c0; c < c1; ++c) dst[c * HW + p] = src[p * C + c];
    }
  return out;
}

at::Tensor max_pool2d(const at::Tensor& x, const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride_in,
                      const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation, bool ceil_mode,
                      const std::optional<ActivationQuant>& quant, float* range) {
  const std::vector<int64_t> stride = stride_in.empty() ? kernel : stride_in;
  if (x.dim() != 4 || kernel.size() != 2 || stride.size() != 2 || padding.size() != 2 || dilation.size() != 2)
    throw Error(ErrorKind::kInvalidArgument, "max_pool2d: input " + c10::str(x.sizes()) + " or its window");
  const int64_t H = x.size(2), W = x.size(3);
  const int64_t oh = pooled_size(H, kernel[0], stride[0], padding[0], dilation[0], ceil_mode);
  const int64_t ow = pooled_size(W, kernel[1], stride[1], padding[1], dilation[1], ceil_mode);
  if (oh < 1 || ow < 1 || padding[0] * 2 > kernel[0] || padding[1] * 2 > kernel[1])
    throw Error(ErrorKind::kInvalidArgument, "max_pool2d: a window that does not fit input " + c10::str(x.sizes()));
  // Locals, not the vectors: stores through dst could alias their elements as far as the compiler knows.
  const int64_t kh = kernel[0], kw = kernel[1], sy = stride[0], sx = stride[1], py = padding[0], px = padding[1],
                dy = dilation[0], dx = dilation[1];
  if (!x.is_contiguous() && x.is_contiguous(at::MemoryFormat::ChannelsLast) && x.scalar_type() == at::kFloat) {
    // Channels last (a convolution's output as the runtime leaves it): each window's maximum across the
    // channels in vectors, the output channels last too. NaN wins, as in ATen: once m is NaN no v replaces it.
    const int64_t N = x.size(0), C = x.size(1);
    at::Tensor out = runtime::empty_output({N, oh, ow, C});
    const float* src = x.data_ptr<float>();
    float* const out_data = out.data_ptr<float>();
    const runtime::FloatKernels& kern = kernels();
    const auto widen = runtime::row_kernels(active_isa()).range;
    // Output rows split over the threads where there is enough work to pay for a parallel region.
    runtime::maybe_parallel(N * oh * ow * C * kh * kw >= (int64_t{1} << 16), [&] {
      float lo = range ? range[0] : 0.0f, hi = range ? range[1] : 0.0f;  // this thread's outputs' range
      const float* on_stack[64];  // a window's pointers; larger windows (unusual) allocate
      std::vector<const float*> on_heap(kh * kw > 64 ? static_cast<std::size_t>(kh * kw) : 0);
      const float** window = on_heap.empty() ? on_stack : on_heap.data();
      runtime::work_share(N * oh, [&](int64_t row) {
        const int64_t n = row / oh, oy = row % oh;
        float* dst = out_data + row * ow * C;
        for (int64_t ox = 0; ox < ow; ++ox, dst += C) {
          // The window's channel vectors inside the input (a window always holds one: padding ≤ kernel / 2).
          int64_t count = 0;
          for (int64_t i = 0; i < kh; ++i) {
            const int64_t iy = oy * sy - py + i * dy;
            if (iy < 0 || iy >= H) continue;
            for (int64_t j = 0; j < kw; ++j) {
              const int64_t ix = ox * sx - px + j * dx;
              if (ix >= 0 && ix < W) window[count++] = src + ((n * H + iy) * W + ix) * C;
            }
          }
          if (count == 0)
            std::fill_n(dst, C, -std::numeric_limits<float>::infinity());
          else
            kern.max_of(window, count, dst, C);
          if (quant) runtime::fake_quantize_static(dst, C, quant->scale, quant->zero_point, dst);
          if (range) widen(dst, C, &lo, &hi);
        }
      });
      if (range) {  // exact min and max: the same in any order
#pragma omp critical(adze_max_pool_range)
        range[0] = std::min(range[0], lo), range[1] = std::max(range[1], hi);
      }
    });
    return out.permute({0, 3, 1, 2});
  }
  const at::Tensor in = runtime::contiguous_output(x.to(torch::kFloat));
  const int64_t planes = in.size(0) * in.size(1);
  at::Tensor out = runtime::empty_output({in.size(0), in.size(1), oh, ow});
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
  if (quant) fake_quantize_in_place(out, *quant);
  if (range) runtime::row_kernels(active_isa()).range(out.data_ptr<float>(), out.numel(), range, range + 1);
  return out;
}

}  // namespace packed
}  // namespace adze
