// The packed runtime's kernels of encoded layers: a layer's packed weight (packed_layer.h) applied to an input.
//
// Layers whose weights the integer kernels take (LayerView::integer_weights()) run on them
// (kernels/qgemm.h): their float input is quantized to 8 bits, with the calibrated quantizer of the graph's
// fake-quant when there is one (the simulation's codes exactly), else per row on the fly (`dynamic`), and the
// integer product is scaled back to fp32. Otherwise the weights are decoded to fp32 and ATen multiplies.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <limits>
#include <optional>
#include <vector>

#include "runtime/packed_layer.h"

namespace adze {
namespace packed {

/// A calibrated per-tensor activation quantizer (codes 0..255), as the graph's fake-quant node holds it.
struct ActivationQuant {
  float scale = 1;
  int32_t zero_point = 0;
};

/// A clamp fused into a kernel's outputs: ReLU is [0, ∞), ReLU6 and hardtanh [lo, hi]. NaN stays NaN.
struct OutputClamp {
  float lo = -std::numeric_limits<float>::infinity();
  float hi = std::numeric_limits<float>::infinity();
  /// Whether it clamps anything (a bound is finite).
  bool active() const {
    return lo > -std::numeric_limits<float>::infinity() || hi < std::numeric_limits<float>::infinity();
  }
};

/// A residual add fused into a layer's output (fusion.h): fq(x·Cᵀ + bias) + add, where fq is the calibrated
/// fake quantization `quant` if set (a W8A8 model quantizes each branch before the add).
struct Residual {
  at::Tensor add;  ///< undefined: no residual add
  std::optional<ActivationQuant> quant;
};

/// What a layer does to its outputs after the product and the bias (folded in by fusion.h), in this order, with
/// the rounding of the unfused ops: the residual add, the clamp, a calibrated fake quantization. On the integer
/// kernels all of it happens while the outputs are in cache, on the threads that computed them; a residual that
/// broadcasts is added after the product instead, as ATen's add does.
struct OutputOps {
  OutputClamp clamp;
  Residual residual;
  std::optional<ActivationQuant> quant;
  OutputOps() = default;
  OutputOps(const OutputClamp& c) : clamp(c) {}  // NOLINT(google-explicit-constructor): a clamp alone
};

/// A tensor's least and greatest value, widened to include 0, NaN never taken (runtime::value_range): where a
/// dynamically quantized convolution's input scale and zero point come from. `known` where the op that wrote
/// the tensor took it (the run's graph passes it from a convolution or a max pool to the convolutions that read
/// its output).
struct ValueRange {
  float lo = 0, hi = 0;
  bool known = false;
};

/// An encoded linear layer: x @ Cᵀ (+ bias) for the layer's encoded matrix C [C, K]. With integer weights and
/// `act` (the input is then the value before its fake-quant) or `dynamic`: the integer kernels on x quantized
/// with `act`, or per row. Otherwise it decodes 64 rows at a time into a tile that an fp32 GEMM consumes.
/// Error(kInvalidArgument) when x does not end in K or the bias does not have C values. (The host's measured
/// cost table times this kernel.)
/// `out`: what it does to its outputs after the bias.
at::Tensor packed_matmul(const LayerView& layer, const at::Tensor& x, const at::Tensor& bias,
                         const ActivationQuant* act = nullptr, bool dynamic = false, const OutputOps& out = {});

/// A low-rank linear layer's two factors (FORMAT.md, "Decomposed layers") in one call: x @ Aᵀ @ Bᵀ (+ bias) for
/// `first` A [r, K] and `second` B [C, r], both with integer weights. The values of packed_matmul(first, x, {},
/// act, true) fed to packed_matmul(second, ·, bias, nullptr, true, clamp), without the intermediate tensor or
/// the second call: A's product stays in per-thread scratch, quantized per row for B.
at::Tensor packed_factored_matmul(const LayerView& first, const LayerView& second, const at::Tensor& x,
                                  const at::Tensor& bias, const ActivationQuant* act = nullptr,
                                  const OutputClamp& clamp = {});

/// A Monarch layer (compress/decompose.h; FORMAT.md, "Decomposed layers") of b blocks run as its factors,
/// `first` R [b·b, K/b] and `second` L [C, b]: y = x·Wᵀ (+ bias) with W's block (l, k) = L[l·C/b.., k]·R[k·b + l],
/// so per row z[k·b + l] = R[k·b + l]·x's block k (b small products per input block), then output block l =
/// L's C/b rows of block l times (z[l], z[b + l], ...). With `integer` and integer weights in both factors, on the
/// integer kernels (x, then z, quantized per row); otherwise in fp32 on the decoded factors. x [..., K] ->
/// [..., C]. It reads b·K + C·b weights where the dense layer reads C·K.
at::Tensor packed_monarch_matmul(const LayerView& first, const LayerView& second, const at::Tensor& x,
                                 const at::Tensor& bias, bool integer, const OutputClamp& clamp = {});

/// A 2-D convolution (groups 1) with the layer's integer weights [Cout, Cin, kh, kw], x [N, Cin, H, W]: the
/// input quantized once (with `act`, or one dynamic range for the tensor), its patches gathered as codes in the
/// encoded column order (kh, kw, Cin), one row per output position, through the integer kernels. Needs
/// integer_weights(). The output is [N, Cout, oh, ow] in channels-last memory (the next convolution reads it
/// as it lies; ATen's element-wise ops keep the format), or contiguous with `contiguous_out`. `out`: what it
/// does to its outputs after the bias.
/// `input_range`, where known: the input's whole range, which the dynamic quantization then takes instead of
/// reading the input for it. `output_range`, where not null: the output's range, taken by the kernels as they
/// write it (QGemmOptions::range), or not known where output ops ran after them.
at::Tensor packed_conv2d(const LayerView& layer, const at::Tensor& x, const at::Tensor& bias,
                         const std::vector<int64_t>& stride, const std::vector<int64_t>& padding,
                         const std::vector<int64_t>& dilation, const ActivationQuant* act, bool dynamic,
                         const OutputOps& out = {}, bool contiguous_out = true, const ValueRange* input_range = nullptr,
                         ValueRange* output_range = nullptr);

/// The rows `ids` (int64, any shape) of the layer's weight [V, D], decoding only those rows: [ids..., D].
at::Tensor packed_embedding(const LayerView& layer, const at::Tensor& ids);

/// The whole weight decoded to fp32, in its own layout (for ops the runtime has no kernel of its own for).
at::Tensor decoded_weight(const LayerView& layer);

}  // namespace packed
}  // namespace adze
