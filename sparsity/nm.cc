#include "sparsity/nm.h"

#include <torch/torch.h>

#include <cmath>

#include "core/error.h"

namespace adze {

std::string NMPattern::to_string() const {
  return enabled() ? std::to_string(n) + ":" + std::to_string(m) : "none";
}

NMPattern NMPattern::parse(const std::string& text, const std::string& where) {
  if (text == "none" || text.empty()) return {};
  const auto colon = text.find(':');
  auto fail = [&](const std::string& why) -> NMPattern {
    throw Error(ErrorKind::kInvalidConfig, "failed to parse " + where + " '" + text + "': " + why +
                                               " (expected N:M with 0 < N < M <= 16, e.g. 2:4, or none)");
  };
  if (colon == std::string::npos) return fail("no ':'");
  NMPattern p;
  try {
    std::size_t used = 0;
    p.n = std::stoi(text.substr(0, colon), &used);
    if (used != colon) return fail("N is not an integer");
    const std::string m = text.substr(colon + 1);
    p.m = std::stoi(m, &used);
    if (used != m.size()) return fail("M is not an integer");
  } catch (const std::logic_error&) {
    return fail("not integers");
  }
  if (p.m < 2 || p.m > 16 || p.n < 1 || p.n >= p.m) return fail("out of range");
  return p;
}

at::Tensor nm_mask_rows(const at::Tensor& rows, NMPattern pattern) {
  TORCH_INTERNAL_ASSERT(rows.dim() == 2 && rows.size(1) % pattern.m == 0);
  const at::Tensor w = rows.to(torch::kFloat).contiguous();
  at::Tensor mask = torch::empty(w.sizes(), torch::kBool);
  const float* src = w.data_ptr<float>();
  bool* dst = mask.data_ptr<bool>();
  const int m = pattern.m, n = pattern.n;
  const int64_t groups = w.numel() / m;
  at::parallel_for(0, groups, 4096, [&](int64_t begin, int64_t end) {
    for (int64_t g = begin; g < end; ++g) {
      const float* x = src + g * m;
      bool* keep = dst + g * m;
      float mag[16];
      for (int i = 0; i < m; ++i) mag[i] = std::fabs(x[i]);
      for (int i = 0; i < m; ++i) {
        int rank = 0;  // how many elements come before i in "larger first, lower index first"
        for (int j = 0; j < m; ++j) rank += (mag[j] > mag[i]) || (mag[j] == mag[i] && j < i);
        keep[i] = rank < n;
      }
    }
  });
  return mask;
}

bool satisfies_nm(const at::Tensor& rows, NMPattern pattern) {
  if (!pattern.enabled()) return true;
  at::Tensor nonzero = rows.ne(0).reshape({-1, pattern.m}).sum(1);
  return nonzero.le(pattern.n).all().item<bool>();
}

}  // namespace adze
