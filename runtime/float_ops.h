// Float ops the packed runtime computes itself rather than through ATen's dispatcher, for the shapes of
// single-sample inference where ATen's per-call overhead dominates: tensor-level wrappers of the kernels in
// kernels/float_kernels.h and kernels/depthwise.h (on the active instruction set) and a max pool of its own.
// Each takes float32 tensors of the form its `fits_` predicate accepts (the runtime falls back to ATen's
// operator for any other) and returns a new tensor.
#pragma once

#include <ATen/core/Tensor.h>

#include <optional>
#include <vector>

#include "runtime/packed_ops.h"

namespace adze {
namespace packed {

/// max_pool2d over x [N, C, H, W] (float32) exactly as ATen's: kernel, stride (empty: the kernel), padding
/// (as −∞), dilation, ceil_mode. Error(kInvalidArgument) for a window that does not fit. With `quant`, the output
/// fake-quantized as fake_quantize_in_place does, each output pixel while it is in cache on the thread that
/// computed it (a W8A8 model's quantization of the pool's output, folded in by fusion.h). With `range`, range[0]
/// and range[1] widened to take in every output (NaN never taken), each thread's from the pixels it pooled: the
/// range a dynamically quantized convolution reading the output needs (packed_conv2d's input_range).
at::Tensor max_pool2d(const at::Tensor& x, const std::vector<int64_t>& kernel, const std::vector<int64_t>& stride,
                      const std::vector<int64_t>& padding, const std::vector<int64_t>& dilation, bool ceil_mode,
                      const std::optional<ActivationQuant>& quant = std::nullopt, float* range = nullptr);

/// x.flatten(1, 3) of x [N, C, H, W] (float32) that lies channels last and not contiguous (a convolution's or
/// pool's output as the runtime leaves it): ATen's copy in C-major order, done as one transpose per sample.
bool fits_flatten_channels_last(const at::Tensor& x, int64_t start, int64_t end);
at::Tensor flatten_channels_last(const at::Tensor& x);

/// adaptive_avg_pool2d to 1x1 of x [N, C, H, W] (float32, contiguous or channels last): [N, C, 1, 1], each mean
/// summed pixel by pixel and divided by H·W. ATen's own sum order differs by layout; the two agree within float
/// rounding (the same bits for 2x2 inputs, a unit in the last place at 7x7).
bool fits_global_avg_pool(const at::Tensor& x);
at::Tensor global_avg_pool(const at::Tensor& x);

/// Layer norm over the last dimension, gamma and beta [n] or undefined.
bool fits_layer_norm(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta);
at::Tensor layer_norm_last(const at::Tensor& x, const at::Tensor& gamma, const at::Tensor& beta, float eps);
/// Softmax over dimension `dim` where it is the last.
bool fits_softmax(const at::Tensor& x, int64_t dim);
at::Tensor softmax_last(const at::Tensor& x);
/// GELU (erf form, or the tanh approximation); gelu_in_place_ for a tensor the caller owns.
at::Tensor gelu(const at::Tensor& x, bool tanh);
void gelu_in_place(at::Tensor& x, bool tanh);
/// a + alpha·b for two tensors of the same sizes and strides (dense: contiguous in some memory format).
bool fits_add(const at::Tensor& a, const at::Tensor& b);
at::Tensor add(const at::Tensor& a, const at::Tensor& b, float alpha);
/// x clamped to [lo, hi] (ReLU, hardtanh), NaN kept; any dense tensor, its layout kept.
bool fits_clamp(const at::Tensor& x);
at::Tensor clamp(const at::Tensor& x, float lo, float hi);
/// What fusion.h folded into an op that computed y (a fresh tensor the caller owns), applied in place: its clamp,
/// then its calibrated fake quantization; ATen's operators where y is not a dense float tensor.
void apply_clamp_and_quant(at::Tensor& y, const OutputClamp& clamp, const std::optional<ActivationQuant>& quant);
/// ATen's fake_quantize_per_tensor_affine with codes 0..255, exactly: (clamp(z + round(x/s), 0, 255) − z)·s,
/// x/s computed as x·(1/s) and NaN giving code 0 (the integer kernels' static quantization, then back); any
/// dense tensor (fits_clamp), its layout kept. One difference: where x/s does not fit an int64 (+inf, 1e30),
/// ATen's cast wraps to code 0 and this clamps to 255.
at::Tensor fake_quantize(const at::Tensor& x, const ActivationQuant& q);
/// The same on a dense float tensor the caller owns (an op's fresh output), in place.
void fake_quantize_in_place(at::Tensor& x, const ActivationQuant& q);
/// x with `value` where `mask` (bool) is set, for a contiguous x whose trailing dimensions are the mask's
/// (contiguous) shape: the mask repeats over the leading ones, as a causal mask over attention heads.
bool fits_masked_fill(const at::Tensor& x, const at::Tensor& mask);
at::Tensor masked_fill(const at::Tensor& x, const at::Tensor& mask, float value);
/// alpha·a·b for a [B..., m, k] and b [B..., k, n] with the same batch dimensions (at most two), any strides:
/// [B..., m, n], contiguous.
bool fits_matmul(const at::Tensor& a, const at::Tensor& b);
at::Tensor matmul(const at::Tensor& a, const at::Tensor& b, float alpha);
/// A depthwise convolution of x [N, C, H, W] (any layout: read channels last) with taps [kh·kw, C] (tap-major)
/// and bias [C] or undefined: [N, C, oh, ow], channels last in memory unless `contiguous_out`.
at::Tensor depthwise_conv2d(const at::Tensor& x, const at::Tensor& taps, int64_t kh, int64_t kw, const at::Tensor& bias,
                            const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                            const std::vector<int64_t>& dilation, const OutputClamp& clamp, bool contiguous_out);

}  // namespace packed
}  // namespace adze
