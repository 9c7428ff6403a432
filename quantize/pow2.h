// Power-of-two quantization: every weight becomes 0 or ±s·2^e (multiplier-free hardware, SmartDeal-style
// coefficient matrices). With b bits, one encodes the sign and K = 2^(b−1)−1 levels are exponents:
//   code c in [−K, K];  c = 0 → 0;  otherwise ŵ = sign(c) · s · 2^(|c| − K).
// s is a power of two per row (the nearest to the row's largest magnitude, in log scale), so every ŵ is an
// exact power of two. Each weight goes to the nearest level in log scale; below half the smallest level it
// becomes 0.
#pragma once

#include <ATen/core/Tensor.h>

namespace adze {

struct Pow2Rows {
  at::Tensor codes;  ///< int8 [R, K]
  at::Tensor scale;  ///< float32 [R], powers of two
};

/// Projects rows [R, K] onto b-bit power-of-two values (2 <= bits <= 8); `keep` (optional bool) marks the
/// elements that count for choosing s, the others are coded 0.
Pow2Rows quantize_pow2_rows(const at::Tensor& rows, int bits, const at::Tensor& keep = {});
at::Tensor dequantize_pow2_rows(const at::Tensor& codes, const at::Tensor& scale, int bits);

}  // namespace adze
