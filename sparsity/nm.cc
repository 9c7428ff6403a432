#include "sparsity/nm.h"

#include <ATen/Parallel.h>
#include <torch/torch.h>

#include <cmath>

#include "core/error.h"

namespace adze {

std::string NMPattern::to_string() const { return enabled() ? std::to_string(n) + ":" + std::to_string(m) : "none"; }

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

namespace {

// Keeps the N largest |x| of one group of M: element i survives when fewer than N elements come before it
// in the order "larger magnitude first, lower index first". Branch-free, unrolled for a fixed M.
template <int M>
inline void keep_group(const float* x, bool* keep, int n) {
  float mag[M];
  for (int i = 0; i < M; ++i) mag[i] = std::fabs(x[i]);
  for (int i = 0; i < M; ++i) {
    int rank = 0;
    for (int j = 0; j < M; ++j)
      rank += static_cast<int>(mag[j] > mag[i]) | (static_cast<int>(mag[j] == mag[i]) & static_cast<int>(j < i));
    keep[i] = rank < n;
  }
}

template <int M>
void mask_groups(const float* src, bool* dst, int64_t begin, int64_t end, int n) {
  for (int64_t g = begin; g < end; ++g) keep_group<M>(src + g * M, dst + g * M, n);
}

// M = 4 written out so that the compiler vectorises across groups (interleaved loads): element i's rank
// counts the others that are larger, or equal with a lower index.
void mask_groups4(const float* src, bool* dst, int64_t begin, int64_t end, int n) {
  for (int64_t g = begin; g < end; ++g) {
    const float a = std::fabs(src[4 * g]), b = std::fabs(src[4 * g + 1]);
    const float c = std::fabs(src[4 * g + 2]), d = std::fabs(src[4 * g + 3]);
    const int r0 = (b > a) + (c > a) + (d > a);
    const int r1 = (a >= b) + (c > b) + (d > b);
    const int r2 = (a >= c) + (b >= c) + (d > c);
    const int r3 = (a >= d) + (b >= d) + (c >= d);
    dst[4 * g] = r0 < n;
    dst[4 * g + 1] = r1 < n;
    dst[4 * g + 2] = r2 < n;
    dst[4 * g + 3] = r3 < n;
  }
}

void mask_groups_any(const float* src, bool* dst, int64_t begin, int64_t end, int n, int m) {
  switch (m) {
    case 2:
      return mask_groups<2>(src, dst, begin, end, n);
    case 4:
      return mask_groups4(src, dst, begin, end, n);
    case 8:
      return mask_groups<8>(src, dst, begin, end, n);
    case 16:
      return mask_groups<16>(src, dst, begin, end, n);
    default:
      break;
  }
  for (int64_t g = begin; g < end; ++g) {
    const float* x = src + g * m;
    bool* keep = dst + g * m;
    for (int i = 0; i < m; ++i) {
      int rank = 0;
      for (int j = 0; j < m; ++j)
        rank += static_cast<int>(std::fabs(x[j]) > std::fabs(x[i])) |
                (static_cast<int>(std::fabs(x[j]) == std::fabs(x[i])) & static_cast<int>(j < i));
      keep[i] = rank < n;
    }
  }
}

}  // namespace

at::Tensor nm_mask_rows(const at::Tensor& rows, NMPattern pattern) {
  TORCH_INTERNAL_ASSERT(rows.dim() == 2 && rows.size(1) % pattern.m == 0);
  const at::Tensor w = rows.to(torch::kFloat).contiguous();
  at::Tensor mask = torch::empty(w.sizes(), torch::kBool);
  const float* src = w.data_ptr<float>();
  bool* dst = mask.data_ptr<bool>();
  const int64_t groups = w.numel() / pattern.m;
  at::parallel_for(0, groups, 1 << 14,
                   [&](int64_t begin, int64_t end) { mask_groups_any(src, dst, begin, end, pattern.n, pattern.m); });
  return mask;
}

bool satisfies_nm(const at::Tensor& rows, NMPattern pattern) {
  if (!pattern.enabled()) return true;
  at::Tensor nonzero = rows.ne(0).reshape({-1, pattern.m}).sum(1);
  return nonzero.le(pattern.n).all().item<bool>();
}

}  // namespace adze
