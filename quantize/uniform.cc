#include "quantize/uniform.h"

#include <torch/torch.h>

#include <cmath>

#include "core/error.h"

namespace adze {
namespace {

// float32 helpers that reproduce fake_quantize_per_channel_affine's arithmetic.
at::Tensor quantize_with(const at::Tensor& rows, const at::Tensor& scale, const at::Tensor& zero_point, int64_t qmin,
                         int64_t qmax) {
  at::Tensor inv = (1.0f / scale.to(torch::kFloat)).unsqueeze(1);
  return (torch::round(rows.to(torch::kFloat) * inv) + zero_point.to(torch::kFloat).unsqueeze(1)).clamp(qmin, qmax);
}

at::Tensor dequantize_with(const at::Tensor& codes_float, const at::Tensor& scale, const at::Tensor& zero_point) {
  return (codes_float - zero_point.to(torch::kFloat).unsqueeze(1)) * scale.to(torch::kFloat).unsqueeze(1);
}

// Scale and zero point for clipping range [lo, hi] per row (lo <= 0 <= hi).
RowQuantParams params_for_range(const at::Tensor& lo, const at::Tensor& hi, const UniformSpec& spec) {
  RowQuantParams p;
  const double levels = static_cast<double>(spec.qmax() - spec.qmin());
  at::Tensor scale;
  if (spec.symmetric) {
    scale = torch::maximum(lo.abs(), hi.abs()) / static_cast<double>(spec.qmax());
  } else {
    scale = (hi - lo) / levels;
  }
  scale = torch::where(scale > 0, scale, torch::ones_like(scale)).to(torch::kFloat);
  if (spec.pow2_scale) scale = torch::pow(2.0, torch::ceil(torch::log2(scale)));
  p.scale = scale.to(torch::kFloat).contiguous();
  if (spec.symmetric) {
    p.zero_point = torch::zeros(scale.sizes(), torch::kInt);
  } else {
    at::Tensor z = torch::round(static_cast<double>(spec.qmin()) - lo.to(torch::kFloat) / p.scale);
    p.zero_point = z.clamp(spec.qmin(), spec.qmax()).to(torch::kInt).contiguous();
  }
  return p;
}

// Per-row lo/hi of the kept elements: masked elements are replaced by 0, which never widens a range that
// must contain 0 anyway.
std::pair<at::Tensor, at::Tensor> row_range(const at::Tensor& rows, const at::Tensor& keep) {
  at::Tensor w = keep.defined() ? rows.masked_fill(keep.logical_not(), 0.0) : rows;
  return {std::get<0>(w.min(1)).clamp_max(0.0), std::get<0>(w.max(1)).clamp_min(0.0)};
}

}  // namespace

const char* to_string(ScaleMethod method) {
  switch (method) {
    case ScaleMethod::kMinMax: return "minmax";
    case ScaleMethod::kPercentile: return "percentile";
    case ScaleMethod::kMse: return "mse";
  }
  return "minmax";
}

ScaleMethod parse_scale_method(const std::string& text, const std::string& where) {
  if (text == "minmax") return ScaleMethod::kMinMax;
  if (text == "percentile") return ScaleMethod::kPercentile;
  if (text == "mse") return ScaleMethod::kMse;
  throw Error(ErrorKind::kInvalidConfig,
              "failed to parse " + where + " '" + text + "': expected minmax, percentile or mse");
}

RowQuantParams choose_row_params(const at::Tensor& rows_in, const UniformSpec& spec, const at::Tensor& keep) {
  TORCH_INTERNAL_ASSERT(rows_in.dim() == 2 && spec.bits >= 2 && spec.bits <= 8);
  const at::Tensor rows = rows_in.to(torch::kFloat);
  auto [lo, hi] = row_range(rows, keep);
  if (spec.method == ScaleMethod::kMinMax) return params_for_range(lo, hi, spec);

  if (spec.method == ScaleMethod::kPercentile) {
    const double q = spec.percentile / 100.0;
    at::Tensor w = keep.defined() ? rows.masked_fill(keep.logical_not(), 0.0) : rows;
    if (spec.symmetric) {
      at::Tensor clip = torch::quantile(w.abs(), q, 1);
      return params_for_range(-clip, clip, spec);
    }
    return params_for_range(torch::quantile(w, 1.0 - q, 1).clamp_max(0.0), torch::quantile(w, q, 1).clamp_min(0.0), spec);
  }

  // MSE: try clipping ratios 1.00, 0.99, ..., 0.30 of the range and keep, per row, the one with the least
  // squared error over the kept elements.
  at::Tensor weight = keep.defined() ? keep.to(torch::kFloat) : torch::ones_like(rows);
  RowQuantParams best = params_for_range(lo, hi, spec);
  at::Tensor best_err = torch::full({rows.size(0)}, INFINITY, torch::kFloat);
  for (int step = 0; step <= 70; ++step) {
    const double ratio = 1.0 - 0.01 * step;
    RowQuantParams p = params_for_range(lo * ratio, hi * ratio, spec);
    at::Tensor q = dequantize_with(quantize_with(rows, p.scale, p.zero_point, spec.qmin(), spec.qmax()), p.scale, p.zero_point);
    at::Tensor err = ((q - rows).pow(2) * weight).sum(1);
    at::Tensor better = err < best_err;
    best_err = torch::where(better, err, best_err);
    best.scale = torch::where(better, p.scale, best.scale);
    best.zero_point = torch::where(better, p.zero_point, best.zero_point);
  }
  return best;
}

at::Tensor quantize_rows(const at::Tensor& rows, const RowQuantParams& params, const UniformSpec& spec) {
  at::Tensor codes = quantize_with(rows, params.scale, params.zero_point, spec.qmin(), spec.qmax());
  return codes.to(spec.qmax() > 127 ? torch::kShort : torch::kChar).contiguous();
}

at::Tensor dequantize_rows(const at::Tensor& codes, const RowQuantParams& params) {
  return dequantize_with(codes.to(torch::kFloat), params.scale, params.zero_point);
}

}  // namespace adze
