#include "runtime/packed_ops.h"

#include <torch/torch.h>

#include <algorithm>
#include <cstring>

#include "core/error.h"
#include "runtime/buffer_pool.h"
#include "runtime/isa.h"
#include "runtime/parallel.h"

namespace adze {
namespace packed {
namespace {

constexpr int64_t kTileRows = 64;  // output rows the fp32 path decodes at a time

// Encoded-layout column j holds the layer's column gather()[j] (the permutation repeated over the runs).
// Rows [M, K] from the layer's column order into the encoded one (`to_encoded`), or back: a loop over the
// permutation the view holds, with no index tensor built per call.
at::Tensor permute_columns(const LayerView& layer, const at::Tensor& rows, bool to_encoded) {
  const int64_t M = rows.size(0), K = rows.size(1);
  const int64_t* g = layer.gather().data();
  at::Tensor out = runtime::empty_output(rows.sizes());
  const float* from = rows.data_ptr<float>();
  float* to = out.data_ptr<float>();
  for (int64_t r = 0; r < M; ++r, from += K, to += K)
    for (int64_t j = 0; j < K; ++j) {
      if (to_encoded)
        to[j] = from[g[j]];
      else
        to[g[j]] = from[j];
    }
  return out;
}

at::Tensor float_bias(const at::Tensor& bias, int64_t channels, const char* op) {
  if (!bias.defined()) return {};
  // As it is where it can be (a file tensor usually is): a conversion is a call through ATen's dispatcher.
  const at::Tensor b =
      bias.scalar_type() == at::kFloat && bias.is_contiguous() ? bias : bias.to(torch::kFloat).contiguous();
  if (b.numel() != channels)
    throw Error(ErrorKind::kInvalidArgument, std::string("packed ") + op + ": a bias of " + std::to_string(b.numel()) +
                                                 " values for " + std::to_string(channels) + " outputs");
  return b;
}

// Per-thread buffers of the quantized activations, kept between calls so that a warm run allocates none.
struct QuantScratch {
  std::vector<uint8_t> codes, rows, padded;
  std::vector<float> scale, mid;
  std::vector<int32_t> zero;
};

QuantScratch& quant_scratch() {
  thread_local QuantScratch s;
  return s;
}

template <typename T>
T* sized(std::vector<T>& v, int64_t n) {
  if (static_cast<int64_t>(v.size()) < n) v.resize(static_cast<std::size_t>(n));
  return v.data();
}

// How the integer kernels will read M activation rows of a layer: from its prebuilt panels (built at the
// layer's first call with that many rows, only for layers that use them) in the panels' positions and order,
// or from rows of k_pad bytes in the encoded order.
struct ActivationLayout {
  const runtime::QPanels* panels = nullptr;
  int64_t stride = 0;               ///< bytes per activation row
  const int64_t* gather = nullptr;  ///< the encoded order's permutation still to apply (null: none)
};

ActivationLayout activation_layout(const LayerView& layer, int64_t rows) {
  ActivationLayout a;
  a.panels = runtime::panel_rows(rows, layer.integer_weights()->layout) ? layer.panels() : nullptr;
  const bool on_panels = a.panels && !a.panels->empty();  // empty: this ISA has no microkernel
  a.stride = on_panels ? a.panels->k() : layer.integer_weights()->layout.k_pad;
  if (!layer.gather().empty() && !(on_panels && a.panels->in_layer_order())) a.gather = layer.gather().data();
  return a;
}

// M rows of K floats (K = the layer's reduction, in the layer's own column order) through the integer kernels
// into y [M, C] (rows C apart): quantized with `act`, or per row.
void integer_rows(const LayerView& layer, const float* rows, int64_t M, const float* bias, const ActivationQuant* act,
                  const OutputClamp& clamp, float* y) {
  const runtime::QWeights& w = *layer.integer_weights();
  const int64_t K = layer.reduction(), C = layer.channels();
  const ActivationLayout l = activation_layout(layer, M);
  QuantScratch& s = quant_scratch();
  uint8_t* const q = sized(s.codes, M * l.stride);
  float* const scale = sized(s.scale, M);
  int32_t* const zero = sized(s.zero, M);
  if (act)
    runtime::quantize_rows_static(rows, M, K, K, l.gather, l.stride, act->scale, act->zero_point, q, scale, zero);
  else
    runtime::quantize_rows_dynamic(rows, M, K, K, l.gather, l.stride, q, scale, zero);
  runtime::qgemm(w, {q, M, l.stride, scale, zero}, bias, y, C, runtime::active_isa(), {l.panels, clamp.lo, clamp.hi});
}

// x [..., K] (float, contiguous) through the integer kernels: [..., C].
at::Tensor integer_product(const LayerView& layer, const at::Tensor& rows, const at::Tensor& bias,
                           const ActivationQuant* act, const OutputClamp& clamp) {
  at::DimVector shape(rows.sizes().begin(), rows.sizes().end());
  shape.back() = layer.channels();
  at::Tensor y = runtime::empty_output(shape);
  integer_rows(layer, rows.data_ptr<float>(), rows.numel() / layer.reduction(),
               bias.defined() ? bias.data_ptr<float>() : nullptr, act, clamp, y.data_ptr<float>());
  return y;
}

at::Tensor float_contiguous(const at::Tensor& x) {
  return x.scalar_type() == at::kFloat && x.is_contiguous() ? x : runtime::contiguous_output(x.to(torch::kFloat));
}

// A 1x1 convolution of stride 1 without padding: its patches are the input's pixels.
bool pointwise(int64_t kh, int64_t kw, const std::vector<int64_t>& stride, const std::vector<int64_t>& padding) {
  return kh == 1 && kw == 1 && stride[0] == 1 && stride[1] == 1 && padding[0] == 0 && padding[1] == 0;
}

// The input (channels last) quantized once (calibrated, or one dynamic range for the whole tensor), then one
// row of codes per output position: rows of l.stride bytes, their scales and zero points.
uint8_t* quantized_patches(const at::Tensor& nhwc, int64_t Cin, int64_t kh, int64_t kw, int64_t oh, int64_t ow,
                           const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                           const std::vector<int64_t>& dilation, const ActivationQuant* act, const ActivationLayout& l,
                           QuantScratch& scratch, float* scales, int32_t* zeros) {
  // The input's scale and zero point (calibrated, or one dynamic range for the whole tensor) ...
  const int64_t total = nhwc.numel();
  const float* const x = nhwc.data_ptr<float>();
  float s = act ? act->scale : 0.0f;
  int32_t z = act ? act->zero_point : 0;
  if (!act) runtime::dynamic_params(x, total, &s, &z);
  // ... then one row of codes per output position, in the column order (kh, kw, Cin), the channels permuted
  // as the encoded layout holds them where the kernels read that order, the zero padding as the zero point.
  // Bytes past the K of a row meet zero weights: whatever the scratch holds there adds nothing. A 1x1
  // convolution of stride 1 whose rows the panels read as they lie needs no copy at all.
  const int64_t N = nhwc.size(0), H = nhwc.size(1), W = nhwc.size(2), M = N * oh * ow;
  const int64_t* perm = l.gather;  // per run of Cin channels
  const bool as_it_lies = pointwise(kh, kw, stride, padding) && !perm && l.stride == Cin;
  const bool parallel = M * kh * kw * Cin >= (int64_t{1} << 16);
  const bool tap_rows = !as_it_lies && !perm && dilation[1] == 1;
  const int64_t py = padding[0], px = padding[1];
  uint8_t* xq = nullptr;  // the input's codes, channels last: in place of the padded copy where there is none
  if (!tap_rows || !(py || px)) {
    xq = sized(scratch.codes, total);
    float unused_s = 0;
    int32_t unused_z = 0;
    runtime::quantize_rows_static(x, 1, total, total, nullptr, total, s, z, xq, &unused_s, &unused_z);
  }
  uint8_t* const rows = as_it_lies ? xq : sized(scratch.rows, M * l.stride);
  if (tap_rows) {
    // The input with a border of zero points, so that each tap row (kw pixels, channels last) is one copy.
    const int64_t Hp = H + 2 * py, Wp = W + 2 * px, span = kw * Cin;
    const uint8_t* padded = xq;
    if (py || px) {
      // Quantized straight into the bordered buffer, a padded row at a time (split over the threads where the
      // input is large): one pass, where a copy of the codes would be a second.
      uint8_t* const p = sized(scratch.padded, N * Hp * Wp * Cin);
      const auto u8z = static_cast<uint8_t>(z);
      runtime::maybe_parallel(total >= (int64_t{1} << 14), [&] {
#pragma omp for schedule(static)
        for (int64_t r = 0; r < N * Hp; ++r) {
          uint8_t* const dst = p + r * Wp * Cin;
          const int64_t iy = r % Hp - py;
          if (iy < 0 || iy >= H) {
            std::fill_n(dst, Wp * Cin, u8z);
            continue;
          }
          float unused_s = 0;
          int32_t unused_z = 0;
          std::fill_n(dst, px * Cin, u8z);
          runtime::quantize_rows_static(x + (r / Hp * H + iy) * W * Cin, 1, W * Cin, W * Cin, nullptr, W * Cin, s, z,
                                        dst + px * Cin, &unused_s, &unused_z);
          std::fill_n(dst + (px + W) * Cin, px * Cin, u8z);
        }
      });
      padded = p;
    }
    runtime::maybe_parallel(parallel, [&] {
#pragma omp for schedule(static)
      for (int64_t m = 0; m < M; ++m) {
        const int64_t n = m / (oh * ow), oy = m / ow % oh, ox = m % ow;
        uint8_t* row = rows + m * l.stride;
        for (int64_t i = 0; i < kh; ++i, row += span)
          std::memcpy(row, padded + ((n * Hp + oy * stride[0] + i * dilation[0]) * Wp + ox * stride[1]) * Cin,
                      static_cast<std::size_t>(span));
      }
    });
  } else if (!as_it_lies) {
    runtime::maybe_parallel(parallel, [&] {
#pragma omp for schedule(static)
      for (int64_t m = 0; m < M; ++m) {
        const int64_t n = m / (oh * ow), oy = m / ow % oh, ox = m % ow;
        uint8_t* row = rows + m * l.stride;
        for (int64_t i = 0; i < kh; ++i) {
          const int64_t iy = oy * stride[0] - padding[0] + i * dilation[0];
          for (int64_t j = 0; j < kw; ++j, row += Cin) {
            const int64_t ix = ox * stride[1] - padding[1] + j * dilation[1];
            if (iy < 0 || iy >= H || ix < 0 || ix >= W) {
              std::fill(row, row + Cin, static_cast<uint8_t>(z));
              continue;
            }
            const uint8_t* pixel = xq + ((n * H + iy) * W + ix) * Cin;
            if (perm)
              for (int64_t c = 0; c < Cin; ++c) row[c] = pixel[perm[c]];
            else
              std::memcpy(row, pixel, static_cast<std::size_t>(Cin));
          }
        }
      }
    });
  }
  std::fill_n(scales, M, s);
  std::fill_n(zeros, M, z);
  return rows;
}

}  // namespace

at::Tensor packed_matmul(const LayerView& layer, const at::Tensor& x, const at::Tensor& bias,
                         const ActivationQuant* act, bool dynamic, const OutputClamp& clamp) {
  const int64_t C = layer.channels(), K = layer.reduction();
  if (x.dim() == 0 || x.size(-1) != K)
    throw Error(ErrorKind::kInvalidArgument,
                "packed matmul: input " + c10::str(x.sizes()) + " does not end in " + std::to_string(K));
  const at::Tensor b = float_bias(bias, C, "matmul");
  if (layer.integer_weights() && (act || dynamic)) return integer_product(layer, float_contiguous(x), b, act, clamp);
  at::Tensor x2 = x.reshape({-1, K}).to(torch::kFloat).contiguous();
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end() - 1);
  shape.push_back(C);
  if (!layer.gather().empty()) x2 = permute_columns(layer, x2, true);
  at::Tensor y = runtime::empty_output({x2.size(0), C});
  std::vector<float> tile(static_cast<std::size_t>(std::min(kTileRows, C) * K));
  for (int64_t r0 = 0; r0 < C; r0 += kTileRows) {
    const int64_t rows = std::min(kTileRows, C - r0);
    layer.decode_rows(r0, r0 + rows, tile.data());
    y.narrow(1, r0, rows).copy_(torch::mm(x2, torch::from_blob(tile.data(), {rows, K}, torch::kFloat).t()));
  }
  y = y.reshape(shape);
  if (b.defined()) y = y + b;
  return clamp.lo > -std::numeric_limits<float>::infinity() || clamp.hi < std::numeric_limits<float>::infinity()
             ? y.clamp(clamp.lo, clamp.hi)
             : y;
}

at::Tensor packed_factored_matmul(const LayerView& first, const LayerView& second, const at::Tensor& x,
                                  const at::Tensor& bias, const ActivationQuant* act, const OutputClamp& clamp) {
  if (!first.integer_weights() || !second.integer_weights() || first.channels() != second.reduction())
    throw Error(ErrorKind::kInternal, "packed factored matmul: factors " + std::to_string(first.channels()) + " and " +
                                          std::to_string(second.reduction()) + " wide, or without integer weights");
  const int64_t K = first.reduction(), r = first.channels();
  if (x.dim() == 0 || x.size(-1) != K)
    throw Error(ErrorKind::kInvalidArgument,
                "packed factored matmul: input " + c10::str(x.sizes()) + " does not end in " + std::to_string(K));
  const at::Tensor b = float_bias(bias, second.channels(), "factored matmul");
  const at::Tensor in = float_contiguous(x);
  const int64_t M = in.numel() / K;
  float* const mid = sized(quant_scratch().mid, M * r);  // the first factor's product, never a tensor
  integer_rows(first, in.data_ptr<float>(), M, nullptr, act, {}, mid);
  at::DimVector shape(in.sizes().begin(), in.sizes().end());
  shape.back() = second.channels();
  at::Tensor y = runtime::empty_output(shape);
  integer_rows(second, mid, M, b.defined() ? b.data_ptr<float>() : nullptr, nullptr, clamp, y.data_ptr<float>());
  return y;
}

namespace {

// Rows [r0, r0 + n) of packed weights, as a matrix of their own.
runtime::QWeights rows_of(const runtime::QWeights& w, int64_t r0, int64_t n) {
  runtime::QWeights v = w;
  v.layout.rows = n;
  v.planes += r0 * w.layout.plane_row_bytes();
  if (v.mask) v.mask += r0 * w.layout.mask_row_words();
  v.offset += r0;
  v.scale += r0 * w.layout.groups;
  v.wsum += r0 * w.layout.groups;
  return v;
}

}  // namespace

at::Tensor packed_monarch_matmul(const LayerView& first, const LayerView& second, const at::Tensor& x,
                                 const at::Tensor& bias, bool integer, const OutputClamp& clamp) {
  const int64_t b = second.reduction(), C = second.channels(), Kb = first.reduction(), K = b * Kb;
  if (first.channels() != b * b || C % b != 0)
    throw Error(ErrorKind::kInternal, "packed monarch: factors [" + std::to_string(first.channels()) + ", " +
                                          std::to_string(Kb) + "] and [" + std::to_string(C) + ", " +
                                          std::to_string(b) + "] are not the blocks of one layer");
  if (x.dim() == 0 || x.size(-1) != K)
    throw Error(ErrorKind::kInvalidArgument,
                "packed monarch: input " + c10::str(x.sizes()) + " does not end in " + std::to_string(K));
  const at::Tensor bs = float_bias(bias, C, "monarch");
  const at::Tensor in = float_contiguous(x);
  const int64_t M = in.numel() / K, Cb = C / b;
  at::DimVector shape(in.sizes().begin(), in.sizes().end());
  shape.back() = C;
  const runtime::QWeights *wr = first.integer_weights(), *wl = second.integer_weights();
  if (!integer || !wr || !wl || !first.gather().empty() || !second.gather().empty()) {
    // fp32 on the decoded factors: z[m, l, k] = Σ_j x[m, k, j]·R[k·b + l, j], y[m, l, o] = Σ_k L[l·C/b + o, k]·z[m, l,
    // k]
    const at::Tensor z =
        torch::einsum("mkj,klj->mlk", {in.reshape({M, b, Kb}), decoded_weight(first).reshape({b, b, Kb})});
    at::Tensor y = torch::einsum("mlk,lok->mlo", {z, decoded_weight(second).reshape({b, Cb, b})}).reshape(shape);
    if (bs.defined()) y = y + bs;
    return clamp.lo > -std::numeric_limits<float>::infinity() || clamp.hi < std::numeric_limits<float>::infinity()
               ? y.clamp(clamp.lo, clamp.hi)
               : y;
  }
  // Integer kernels: each row of x quantized once (one range), then input block k's b rows of R read from its
  // K/b codes (the rows' padding is zero weights: what they read past the block adds nothing) ...
  QuantScratch& s = quant_scratch();
  const runtime::Isa isa = runtime::active_isa();
  const int64_t stride = K + wr->layout.k_pad;
  uint8_t* q = sized(s.codes, M * stride);
  float* const scale = sized(s.scale, M);
  int32_t* const zero = sized(s.zero, M);
  runtime::quantize_rows_dynamic(in.data_ptr<float>(), M, K, K, nullptr, stride, q, scale, zero);
  float* const z = sized(s.mid, 2 * M * b * b);  // z[m, k·b + l], then zt[m, l·b + k]
  for (int64_t k = 0; k < b; ++k)
    runtime::qgemm(rows_of(*wr, k * b, b), {q + k * Kb, M, stride, scale, zero}, nullptr, z + k * b, b * b, isa);
  // ... then output block l's C/b rows of L from z's values of block l, side by side and quantized per row.
  float* const zt = z + M * b * b;
  for (int64_t m = 0; m < M; ++m)
    for (int64_t k = 0; k < b; ++k)
      for (int64_t l = 0; l < b; ++l) zt[m * b * b + l * b + k] = z[m * b * b + k * b + l];
  const int64_t stride2 = b * b + wl->layout.k_pad;
  q = sized(s.rows, M * stride2);
  runtime::quantize_rows_dynamic(zt, M, b * b, b * b, nullptr, stride2, q, scale, zero);
  at::Tensor y = runtime::empty_output(shape);
  for (int64_t l = 0; l < b; ++l)
    runtime::qgemm(rows_of(*wl, l * Cb, Cb), {q + l * b, M, stride2, scale, zero},
                   bs.defined() ? bs.data_ptr<float>() + l * Cb : nullptr, y.data_ptr<float>() + l * Cb, C, isa,
                   {nullptr, clamp.lo, clamp.hi});
  return y;
}

at::Tensor packed_conv2d(const LayerView& layer, const at::Tensor& x, const at::Tensor& bias,
                         const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                         const std::vector<int64_t>& dilation, const ActivationQuant* act, bool dynamic,
                         const OutputClamp& clamp, bool contiguous_out) {
  const Shape& shape = layer.layout().shape;  // [Cout, Cin, kh, kw], encoded as [Cout, kh·kw·Cin]
  const runtime::QWeights* w = layer.integer_weights();
  if (!w || !(act || dynamic) || shape.size() != 4)
    throw Error(ErrorKind::kInternal, "packed conv2d: a layer without integer weights");
  const int64_t C = shape[0], Cin = shape[1], kh = shape[2], kw = shape[3];
  if (x.dim() != 4 || x.size(1) != Cin)
    throw Error(ErrorKind::kInvalidArgument,
                "packed conv2d: input " + c10::str(x.sizes()) + " does not have " + std::to_string(Cin) + " channels");
  const int64_t N = x.size(0), H = x.size(2), W = x.size(3);
  const int64_t oh = (H + 2 * padding[0] - dilation[0] * (kh - 1) - 1) / stride[0] + 1;
  const int64_t ow = (W + 2 * padding[1] - dilation[1] * (kw - 1) - 1) / stride[1] + 1;
  if (oh < 1 || ow < 1)
    throw Error(ErrorKind::kInvalidArgument,
                "packed conv2d: input " + c10::str(x.sizes()) + " is smaller than the kernel");
  const at::Tensor nhwc = runtime::contiguous_output(x.to(torch::kFloat).permute({0, 2, 3, 1}));
  const int64_t M = N * oh * ow;
  const ActivationLayout l = activation_layout(layer, M);
  const int64_t* perm = l.gather;  // per run of Cin channels
  QuantScratch& scratch = quant_scratch();
  float* const scales = sized(scratch.scale, M);
  int32_t* const zeros = sized(scratch.zero, M);
  uint8_t* rows = nullptr;
  if (pointwise(kh, kw, stride, padding) && !act) {
    // A 1x1 convolution on the fly: each output position's input (one pixel's channels) with its own range, as a
    // linear layer's tokens are (the channels permuted where the kernels read the encoded order).
    rows = sized(scratch.rows, M * l.stride);
    runtime::quantize_rows_dynamic(nhwc.data_ptr<float>(), M, Cin, Cin, perm, l.stride, rows, scales, zeros);
  } else {
    rows = quantized_patches(nhwc, Cin, kh, kw, oh, ow, stride, padding, dilation, act, l, scratch, scales, zeros);
  }
  const at::Tensor b = float_bias(bias, C, "conv2d");
  at::Tensor y = runtime::empty_output({N, oh, ow, C});
  runtime::qgemm(*w, {rows, M, l.stride, scales, zeros}, b.defined() ? b.data_ptr<float>() : nullptr,
                 y.data_ptr<float>(), C, runtime::active_isa(), {l.panels, clamp.lo, clamp.hi});
  const at::Tensor nchw = y.permute({0, 3, 1, 2});
  return contiguous_out ? runtime::contiguous_output(nchw) : nchw;
}

at::Tensor packed_embedding(const LayerView& layer, const at::Tensor& ids) {
  const int64_t D = layer.reduction();
  const at::Tensor flat = ids.reshape({-1}).to(torch::kLong).contiguous();
  at::Tensor out = runtime::empty_output({flat.numel(), D});
  layer.decode_listed_rows(flat.data_ptr<int64_t>(), flat.numel(), out.data_ptr<float>());
  if (!layer.gather().empty()) out = permute_columns(layer, out, false);
  std::vector<int64_t> shape(ids.sizes().begin(), ids.sizes().end());
  shape.push_back(D);
  return out.reshape(shape);
}

at::Tensor decoded_weight(const LayerView& layer) {
  at::Tensor canonical = torch::empty({layer.channels(), layer.reduction()}, torch::kFloat);
  layer.decode_rows(0, layer.channels(), canonical.data_ptr<float>());
  return layer.layout().from_canonical(canonical);
}

}  // namespace packed
}  // namespace adze
