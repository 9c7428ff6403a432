// A worked example of a weight scheme (docs/design.md, "How to add"): "ternary", Ternary Weight Networks (Li et
// al., 2016): every weight is −α, 0 or +α per row. Weights below Δ = 0.7 · mean|w| become 0 and α is the mean
// magnitude of the others, the least-squares choice for that support. Its value is code · α, so it is affine
// and integer kernels could take its codes as int8 as they are. As a built-in it would live in
// compress/schemes/, add its id to Quantizer (compress/scheme.h, the next one never used) and take one line of
// core/builtins.def: ADZE_SCHEME(ternary_scheme).
#include <torch/torch.h>

#include "compress/encoding.h"

namespace adze::example {
namespace {

constexpr Quantizer kTernary = static_cast<Quantizer>(2);  // the next id no scheme has had

int64_t min_code(int, bool) { return -1; }
int64_t max_code(int, bool) { return 1; }

GridRows project(const at::Tensor& rows, const LayerConfig&, const at::Tensor& keep, const GridRows& given) {
  const at::Tensor kept = keep.defined() ? keep : torch::ones_like(rows, torch::kBool);
  const at::Tensor magnitude = rows.abs() * kept.to(torch::kFloat);
  at::Tensor codes;
  at::Tensor scale = given.scale;
  if (scale.defined()) {
    codes = torch::round(rows / scale.unsqueeze(1)).clamp(-1, 1);
  } else {
    const at::Tensor counted = kept.sum(1, /*keepdim=*/true).clamp_min(1).to(torch::kFloat);
    const at::Tensor delta = 0.7 * magnitude.sum(1, /*keepdim=*/true) / counted;
    const at::Tensor support = magnitude.gt(delta);
    codes = torch::sign(rows) * support.to(torch::kFloat);
    const at::Tensor n = support.sum(1).to(torch::kFloat);
    scale = torch::where(n.gt(0), (magnitude * support.to(torch::kFloat)).sum(1) / n.clamp_min(1),
                         torch::ones_like(n));  // an all-zero row: any scale decodes it
  }
  codes = (codes * kept.to(torch::kFloat)).to(torch::kChar);  // pruned weights get the code of zero
  return {codes, scale.to(torch::kFloat).contiguous(), torch::zeros({rows.size(0)}, torch::kInt)};
}

at::Tensor decode(const GridRows& g, const LayerConfig&) { return g.codes.to(torch::kFloat) * g.scale.unsqueeze(1); }

std::pair<at::Tensor, at::Tensor> range(const GridRows& g, const LayerConfig&) {
  const at::Tensor s = g.scale.unsqueeze(1);
  return {-s, s};
}

float value(int64_t code, float scale, float, int) { return static_cast<float>(code) * scale; }

}  // namespace

SchemeTraits ternary_scheme() {
  return {kTernary,
          "ternary",
          "example.ternary.v1",
          "ternary (TWN): −α, 0 or +α per row, 0 below 0.7 · mean|w|",
          /*zero_points=*/false,
          /*per_group=*/false,
          /*affine=*/true,
          min_code,
          max_code,
          project,
          decode,
          range,
          value};
}

}  // namespace adze::example
