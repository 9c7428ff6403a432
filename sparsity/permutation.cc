#include "sparsity/permutation.h"

#include <ATen/ATen.h>

#include <algorithm>
#include <numeric>
#include <vector>

#include "core/error.h"

namespace adze {
namespace {

// Column-major copy of the magnitudes: channel k's R values are contiguous.
struct Columns {
  int64_t rows = 0, channels = 0;
  std::vector<float> data;
  const float* column(int64_t k) const { return data.data() + k * rows; }
};

Columns columns_of(const at::Tensor& magnitude) {
  const at::Tensor t = magnitude.to(at::kFloat).t().contiguous();
  Columns c;
  c.channels = t.size(0);
  c.rows = t.size(1);
  c.data.assign(t.data_ptr<float>(), t.data_ptr<float>() + t.numel());
  return c;
}

// Σ over rows of the N largest among the M columns `group`.
double group_kept(const Columns& c, const int64_t* group, int m, int n) {
  double total = 0;
  float v[16];
  for (int64_t r = 0; r < c.rows; ++r) {
    for (int i = 0; i < m; ++i) v[i] = c.column(group[i])[r];
    std::partial_sort(v, v + n, v + m, std::greater<float>());
    for (int i = 0; i < n; ++i) total += v[i];
  }
  return total;
}

// For each slot i of a group and each row: S = Σ of the N largest of the other M−1 values, T = the N-th
// largest of them. Putting value x in slot i keeps S + max(0, x − T) in that row: a swap is scored in O(R).
struct GroupCache {
  std::vector<float> s, t;  // [M][R]
  void build(const Columns& c, const int64_t* group, int m, int n) {
    s.assign(static_cast<std::size_t>(m * c.rows), 0.0f);
    t.assign(static_cast<std::size_t>(m * c.rows), 0.0f);
    float v[16];
    for (int i = 0; i < m; ++i) {
      for (int64_t r = 0; r < c.rows; ++r) {
        int k = 0;
        for (int j = 0; j < m; ++j)
          if (j != i) v[k++] = c.column(group[j])[r];
        std::partial_sort(v, v + n, v + k, std::greater<float>());
        float sum = 0;
        for (int j = 0; j < n; ++j) sum += v[j];
        s[static_cast<std::size_t>(i * c.rows + r)] = sum;
        t[static_cast<std::size_t>(i * c.rows + r)] = v[n - 1];
      }
    }
  }
  // Kept magnitude of the group with column `x` in slot i.
  double with(int i, const float* x, int64_t rows) const {
    const float* si = s.data() + i * rows;
    const float* ti = t.data() + i * rows;
    double total = 0;
    for (int64_t r = 0; r < rows; ++r) total += si[r] + std::max(0.0f, x[r] - ti[r]);
    return total;
  }
};

}  // namespace

double nm_kept_magnitude(const at::Tensor& magnitude, NMPattern p, const at::Tensor& order) {
  const Columns c = columns_of(magnitude);
  std::vector<int64_t> slots(static_cast<std::size_t>(c.channels));
  if (order.defined()) {
    const at::Tensor o = order.to(at::kLong).contiguous();
    std::copy(o.data_ptr<int64_t>(), o.data_ptr<int64_t>() + o.numel(), slots.begin());
  } else {
    std::iota(slots.begin(), slots.end(), 0);
  }
  double total = 0;
  for (int64_t g = 0; g < c.channels / p.m; ++g) total += group_kept(c, slots.data() + g * p.m, p.m, p.n);
  return total;
}

ChannelPermutation search_channel_permutation(const at::Tensor& magnitude, NMPattern p, const PermutationSearch& o) {
  if (magnitude.dim() != 2 || !p.enabled() || magnitude.size(1) % p.m != 0)
    throw Error(ErrorKind::kInvalidArgument, "channel permutation: expected [R, K] with K a multiple of M");
  const Columns c = columns_of(magnitude);
  const int m = p.m, n = p.n;
  const int64_t groups = c.channels / m;
  std::vector<int64_t> slots(static_cast<std::size_t>(c.channels));
  std::iota(slots.begin(), slots.end(), 0);
  std::vector<double> kept(static_cast<std::size_t>(groups));
  std::vector<GroupCache> cache(static_cast<std::size_t>(groups));
  for (int64_t g = 0; g < groups; ++g) {
    kept[g] = group_kept(c, slots.data() + g * m, m, n);
    cache[g].build(c, slots.data() + g * m, m, n);
  }

  ChannelPermutation result;
  result.kept_before = std::accumulate(kept.begin(), kept.end(), 0.0);
  const int64_t window = std::min<int64_t>(o.window, groups - 1);
  for (int pass = 0; pass < o.max_passes && window > 0; ++pass) {
    result.passes = pass + 1;
    bool improved = false;
    for (int64_t a = 0; a < groups; ++a) {
      for (int64_t d = 1; d <= window; ++d) {
        // Partners a+1.., shifted each pass so that later passes meet other groups.
        const int64_t b = (a + d + static_cast<int64_t>(pass) * window) % groups;
        if (b == a) continue;
        int64_t* ga = slots.data() + a * m;
        int64_t* gb = slots.data() + b * m;
        double best_gain = 1e-9 * (kept[a] + kept[b]);  // ignore float noise
        int best_i = -1, best_j = -1;
        for (int i = 0; i < m; ++i) {
          for (int j = 0; j < m; ++j) {
            const double gain = cache[a].with(i, c.column(gb[j]), c.rows) + cache[b].with(j, c.column(ga[i]), c.rows) -
                                kept[a] - kept[b];
            if (gain > best_gain) {
              best_gain = gain;
              best_i = i;
              best_j = j;
            }
          }
        }
        if (best_i >= 0) {
          std::swap(ga[best_i], gb[best_j]);
          kept[a] = group_kept(c, ga, m, n);  // exact, not accumulated gains
          kept[b] = group_kept(c, gb, m, n);
          cache[a].build(c, ga, m, n);
          cache[b].build(c, gb, m, n);
          improved = true;
        }
      }
    }
    if (!improved) break;
  }
  result.kept_after = std::accumulate(kept.begin(), kept.end(), 0.0);
  result.order = at::tensor(slots, at::kLong);
  return result;
}

}  // namespace adze
