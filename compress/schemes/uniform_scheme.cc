// uniform: value = (code − zero point) · scale on a b-bit grid, symmetric or not (quantize/uniform.h).
#include <torch/torch.h>

#include "compress/encoding.h"
#include "core/error.h"
#include "quantize/uniform.h"

namespace adze {
namespace {

UniformSpec spec_of(const LayerConfig& c) {
  UniformSpec spec;
  spec.bits = c.weight_bits;
  spec.symmetric = c.symmetric;
  spec.pow2_scale = c.pow2_scale;
  spec.method = c.scale_method;
  spec.percentile = c.percentile;
  return spec;
}

int64_t min_code(int bits, bool symmetric) { return UniformSpec{bits, symmetric}.qmin(); }
int64_t max_code(int bits, bool symmetric) { return UniformSpec{bits, symmetric}.qmax(); }

GridRows project(const at::Tensor& rows, const LayerConfig& c, const at::Tensor& keep, const GridRows& given) {
  const UniformSpec spec = spec_of(c);
  if (given.scale.defined() && (given.scale.dim() != 1 || given.scale.size(0) != rows.size(0) ||
                                given.zero_point.sizes() != given.scale.sizes()))
    throw Error(ErrorKind::kInternal, "scales " + c10::str(given.scale.sizes()) + " do not fit the " +
                                          std::to_string(rows.size(0)) + " rows of the quantization grid");
  const RowQuantParams params =
      given.scale.defined() ? RowQuantParams{given.scale, given.zero_point} : choose_row_params(rows, spec, keep);
  return {quantize_rows(rows, params, spec, keep), params.scale, params.zero_point};
}

at::Tensor decode(const GridRows& g, const LayerConfig&) {
  return dequantize_rows(g.codes, RowQuantParams{g.scale, g.zero_point});
}

std::pair<at::Tensor, at::Tensor> range(const GridRows& g, const LayerConfig& c) {
  const UniformSpec spec = spec_of(c);
  const at::Tensor s = g.scale.unsqueeze(1), z = g.zero_point.to(torch::kFloat).unsqueeze(1);
  return {(static_cast<float>(spec.qmin()) - z) * s, (static_cast<float>(spec.qmax()) - z) * s};
}

float value(int64_t code, float scale, float zero_point, int) {
  return (static_cast<float>(code) - zero_point) * scale;
}

}  // namespace

SchemeTraits uniform_scheme() {
  return {Quantizer::kUniform,
          "uniform",
          "adze.uniform.v1",
          "uniform grid: (code − zero point) · scale",
          /*zero_points=*/true,
          /*per_group=*/true,
          /*affine=*/true,
          min_code,
          max_code,
          project,
          decode,
          range,
          value};
}

}  // namespace adze
