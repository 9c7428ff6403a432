#include "core/paired_difference.h"

#include <algorithm>
#include <cmath>

#include "core/error.h"

namespace adze {

namespace {
constexpr double kZ975 = 1.959964;  ///< the standard normal's 0.975 quantile
}  // namespace

PairedDifference paired_difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  return paired_difference(std::vector<std::vector<uint8_t>>{a}, std::vector<std::vector<uint8_t>>{b});
}

PairedDifference paired_difference(const std::vector<std::vector<uint8_t>>& a_runs,
                                   const std::vector<std::vector<uint8_t>>& b_runs) {
  const std::size_t n = a_runs.empty() ? 0 : a_runs.front().size();
  auto same_length = [n](const std::vector<std::vector<uint8_t>>& runs) {
    return !runs.empty() && std::all_of(runs.begin(), runs.end(), [n](const auto& r) { return r.size() == n; });
  };
  if (n == 0 || !same_length(a_runs) || !same_length(b_runs)) {
    std::string sizes;
    for (const auto* runs : {&a_runs, &b_runs})
      for (const auto& r : *runs) sizes += (sizes.empty() ? "" : " and ") + std::to_string(r.size());
    throw Error(ErrorKind::kInvalidArgument, "paired difference: " + (sizes.empty() ? "no" : sizes) +
                                                 " outcomes (need the same, at least 1, in at least one run a side)");
  }
  auto share = [](const std::vector<std::vector<uint8_t>>& runs, std::size_t i) {
    int64_t right = 0;
    for (const auto& r : runs) right += r[i] != 0;
    return static_cast<double>(right) / static_cast<double>(runs.size());
  };
  PairedDifference d;
  d.samples = static_cast<int64_t>(n);
  double sum = 0, sum_square = 0;
  for (std::size_t i = 0; i < n; ++i) {
    const double v = share(a_runs, i) - share(b_runs, i);
    d.only_a += v > 0;
    d.only_b += v < 0;
    sum += v;
    sum_square += v * v;
  }
  // The per-sample differences' sample variance, then the standard error of their mean.
  const double count = static_cast<double>(n);
  d.difference = sum / count;
  const double variance = n > 1 ? (sum_square / count - d.difference * d.difference) * count / (count - 1) : 0.0;
  const double half_width = kZ975 * std::sqrt(std::max(0.0, variance) / count);
  d.low = d.difference - half_width;
  d.high = d.difference + half_width;
  return d;
}

namespace {

// Student's t quantile at 0.975 for `df` degrees of freedom: tabulated to 30, then the Cornish-Fisher expansion
// around the normal quantile (within 0.001 of the exact value there).
double t_975(int64_t df) {
  static const double table[] = {12.706, 4.303, 3.182, 2.776, 2.571, 2.447, 2.365, 2.306, 2.262, 2.228,
                                 2.201,  2.179, 2.160, 2.145, 2.131, 2.120, 2.110, 2.101, 2.093, 2.086,
                                 2.080,  2.074, 2.069, 2.064, 2.060, 2.056, 2.052, 2.048, 2.045, 2.042};
  if (df <= 30) return table[df - 1];
  const double z = kZ975, n = static_cast<double>(df);
  return z + (z * z * z + z) / (4 * n) + (5 * std::pow(z, 5) + 16 * z * z * z + 3 * z) / (96 * n * n);
}

}  // namespace

MeanInterval t_interval(const std::vector<double>& values) {
  if (values.size() < 2)
    throw Error(ErrorKind::kInvalidArgument,
                "t interval: " + std::to_string(values.size()) + " values (need at least 2)");
  const double n = static_cast<double>(values.size());
  MeanInterval m;
  for (double v : values) m.mean += v / n;
  double squares = 0;
  for (double v : values) squares += (v - m.mean) * (v - m.mean);
  const double half_width = t_975(static_cast<int64_t>(values.size()) - 1) * std::sqrt(squares / (n - 1) / n);
  m.low = m.mean - half_width;
  m.high = m.mean + half_width;
  return m;
}

std::string outcomes_to_hex(const std::vector<uint8_t>& outcomes) {
  std::vector<int> nibbles((outcomes.size() + 3) / 4, 0);
  for (std::size_t i = 0; i < outcomes.size(); ++i)
    if (outcomes[i]) nibbles[i / 4] |= 8 >> (i % 4);
  std::string hex;
  for (int v : nibbles) hex += "0123456789abcdef"[v];
  return hex;
}

std::vector<uint8_t> outcomes_from_hex(const std::string& hex, std::size_t count) {
  if (hex.size() != (count + 3) / 4)
    throw Error(ErrorKind::kInvalidArgument, "per-sample outcomes: " + std::to_string(hex.size()) +
                                                 " hex digits cannot hold " + std::to_string(count) + " outcomes");
  std::vector<uint8_t> outcomes(count);
  for (std::size_t d = 0; d < hex.size(); ++d) {
    const char c = hex[d];
    const int v = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
    if (v < 0)
      throw Error(ErrorKind::kInvalidArgument, std::string("per-sample outcomes: '") + c + "' is not a hex digit");
    for (std::size_t bit = 0; bit < 4; ++bit) {
      const bool set = (v >> (3 - bit)) & 1;
      if (4 * d + bit < count)
        outcomes[4 * d + bit] = set;
      else if (set)  // one spelling per list of outcomes
        throw Error(ErrorKind::kInvalidArgument, "per-sample outcomes: '" + hex.substr(d) +
                                                     "' sets bits after the last of " + std::to_string(count));
    }
  }
  return outcomes;
}

}  // namespace adze
