#include "exporters/agreement.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>

namespace adze {

void Agreement::add(const at::Tensor& simulated, const at::Tensor& exported) {
  const at::Tensor s = simulated.to(torch::kDouble), e = exported.to(torch::kDouble);
  signal += s.pow(2).sum().item<double>();
  noise += (e - s).pow(2).sum().item<double>();
  dot += (e * s).sum().item<double>();
  exported_energy += e.pow(2).sum().item<double>();
  if (s.numel() > 0) max_abs = std::max(max_abs, (e - s).abs().max().item<double>());
}

double Agreement::sqnr_db() const { return noise > 0 ? 10 * std::log10(signal / noise) : INFINITY; }

double Agreement::cosine() const {
  if (noise == 0) return 1.0;  // identical outputs: exactly 1, not 1 up to the rounding of two square roots
  if (signal == 0 || exported_energy == 0) return 0.0;
  return std::clamp(dot / (std::sqrt(signal) * std::sqrt(exported_energy)), -1.0, 1.0);
}

}  // namespace adze
