// Uniform affine quantization of weight matrices, row by row.
//
// Works on a 2-D matrix [R, K] whose rows each get one scale and zero point (the caller lays a weight out so
// that rows are output channels, or groups of one, or the whole tensor). The arithmetic is exactly that of
// torch::fake_quantize_per_channel_affine, so simulation and PyTorch agree bit for bit:
//   code = clamp(round_half_even(w * (1/s)) + z, qmin, qmax),   ŵ = (code − z) · s      (all in float32)
// Symmetric: codes in [−2^(b−1), 2^(b−1)−1], z = 0, s = clip / (2^(b−1)−1). Asymmetric: codes in [0, 2^b−1].
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <string>

namespace adze {

enum class ScaleMethod {
  kMinMax,      ///< clip at the extreme values
  kPercentile,  ///< clip at a percentile of |w| (symmetric) or of w (asymmetric)
  kMse,         ///< clip at the ratio of the range, from a grid, that minimises the squared error per row
};
const char* to_string(ScaleMethod method);
/// "minmax", "percentile", "mse"; throws Error(kInvalidConfig) otherwise, naming `where`.
ScaleMethod parse_scale_method(const std::string& text, const std::string& where);

struct UniformSpec {
  int bits = 8;  ///< 2..8
  bool symmetric = true;
  bool pow2_scale = false;  ///< round each scale up to a power of two (shift-only hardware)
  ScaleMethod method = ScaleMethod::kMinMax;
  double percentile = 99.99;  ///< for kPercentile, in (50, 100]
  int64_t qmin() const { return symmetric ? -(int64_t{1} << (bits - 1)) : 0; }
  int64_t qmax() const { return symmetric ? (int64_t{1} << (bits - 1)) - 1 : (int64_t{1} << bits) - 1; }
};

struct RowQuantParams {
  at::Tensor scale;       ///< float32 [R], > 0
  at::Tensor zero_point;  ///< int32 [R] (zeros when symmetric)
};

/// ScaleMethod::kMse tries this many clipping ratios of each row's range: 1.00 down to 0.30 in steps of 0.02.
constexpr int kMseCandidates = 36;

/// Chooses a scale and zero point per row of `rows` [R, K]. Elements where `keep` (bool [R, K], optional) is
/// false are ignored (pruned weights must not widen the range). All-zero rows get scale 1. Throws
/// Error(kInvalidArgument) when `rows` holds a NaN or Inf (found in the same pass that finds the ranges).
RowQuantParams choose_row_params(const at::Tensor& rows, const UniformSpec& spec, const at::Tensor& keep = {});

/// Integer codes (int8; int16 when asymmetric 8-bit needs 0..255) for each row. Where `keep` (optional) is
/// false the code is the zero point, which decodes to exactly 0.
at::Tensor quantize_rows(const at::Tensor& rows, const RowQuantParams& params, const UniformSpec& spec,
                         const at::Tensor& keep = {});

/// (code − z) · s in float32, row by row.
at::Tensor dequantize_rows(const at::Tensor& codes, const RowQuantParams& params);

}  // namespace adze
