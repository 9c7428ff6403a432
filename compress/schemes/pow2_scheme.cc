// pow2: every weight 0 or ±scale · 2^(level − levels), scale a power of two per row (quantize/pow2.h).
#include <torch/torch.h>

#include <cmath>

#include "compress/encoding.h"
#include "quantize/pow2.h"

namespace adze {
namespace {

// Sign and magnitude: 0 and ±1 .. ±(2^(bits−1) − 1), the largest level being the scale.
int64_t levels(int bits) { return (int64_t{1} << (bits - 1)) - 1; }
int64_t min_code(int bits, bool) { return -levels(bits); }
int64_t max_code(int bits, bool) { return levels(bits); }

GridRows project(const at::Tensor& rows, const LayerConfig& c, const at::Tensor& keep, const GridRows&) {
  Pow2Rows q = quantize_pow2_rows(rows, c.weight_bits, keep);
  return {q.codes, q.scale, torch::zeros(q.scale.sizes(), torch::kInt)};
}

at::Tensor decode(const GridRows& g, const LayerConfig& c) {
  return dequantize_pow2_rows(g.codes, g.scale, c.weight_bits);
}

std::pair<at::Tensor, at::Tensor> range(const GridRows& g, const LayerConfig&) {
  const at::Tensor s = g.scale.unsqueeze(1);  // the largest level is ±scale
  return {-s, s};
}

float value(int64_t code, float scale, float, int bits) {
  if (code == 0) return 0.0f;
  const int64_t magnitude = code < 0 ? -code : code;
  return (code < 0 ? -1.0f : 1.0f) * std::ldexp(scale, static_cast<int>(magnitude - levels(bits)));
}

}  // namespace

SchemeTraits pow2_scheme() {
  return {Quantizer::kPow2,
          "pow2",
          "adze.pow2.v1",
          "powers of two: ±scale · 2^(level − levels), or 0",
          /*zero_points=*/false,
          /*per_group=*/false,
          /*affine=*/false,
          min_code,
          max_code,
          project,
          decode,
          range,
          value};
}

}  // namespace adze
