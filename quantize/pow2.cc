#include "quantize/pow2.h"

#include <torch/torch.h>

namespace adze {

Pow2Rows quantize_pow2_rows(const at::Tensor& rows_in, int bits, const at::Tensor& keep) {
  TORCH_INTERNAL_ASSERT(rows_in.dim() == 2 && bits >= 2 && bits <= 8);
  at::Tensor rows = rows_in.to(torch::kFloat);
  if (keep.defined()) rows = rows.masked_fill(keep.logical_not(), 0.0);
  const int64_t levels = (int64_t{1} << (bits - 1)) - 1;
  at::Tensor peak = std::get<0>(rows.abs().max(1));
  at::Tensor scale = torch::where(peak > 0, torch::pow(2.0, torch::round(torch::log2(peak))), torch::ones_like(peak));
  scale = scale.to(torch::kFloat).contiguous();
  at::Tensor ratio = rows.abs() / scale.unsqueeze(1);  // |w| / s
  // Nearest exponent in log scale, within [1 − K, 0], i.e. code magnitude within [1, K].
  at::Tensor magnitude = (torch::round(torch::log2(ratio.clamp_min(1e-30))) + levels).clamp(1, levels);
  const double smallest = std::pow(2.0, static_cast<double>(1 - levels));
  at::Tensor zero = ratio < (smallest / 2.0);
  at::Tensor codes = torch::where(zero, torch::zeros_like(magnitude), magnitude * torch::sign(rows));
  return Pow2Rows{codes.to(torch::kChar).contiguous(), scale};
}

at::Tensor dequantize_pow2_rows(const at::Tensor& codes, const at::Tensor& scale, int bits) {
  const int64_t levels = (int64_t{1} << (bits - 1)) - 1;
  at::Tensor c = codes.to(torch::kFloat);
  at::Tensor value = torch::sign(c) * torch::pow(2.0, c.abs() - static_cast<double>(levels)) * scale.unsqueeze(1);
  return torch::where(c == 0, torch::zeros_like(value), value);
}

}  // namespace adze
