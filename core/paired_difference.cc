#include "core/paired_difference.h"

#include <cmath>

#include "core/error.h"

namespace adze {

PairedDifference paired_difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b) {
  if (a.empty() || a.size() != b.size())
    throw Error(ErrorKind::kInvalidArgument, "paired difference: " + std::to_string(a.size()) + " and " +
                                                 std::to_string(b.size()) + " outcomes (need the same, at least 1)");
  PairedDifference d;
  d.samples = static_cast<int64_t>(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) {
    d.only_a += a[i] && !b[i];
    d.only_b += b[i] && !a[i];
  }
  const double n = static_cast<double>(d.samples);
  d.difference = static_cast<double>(d.only_a - d.only_b) / n;
  // The per-sample differences are +1, -1 or 0: their sample variance, then the standard error of their mean.
  const double mean_square = static_cast<double>(d.only_a + d.only_b) / n;
  const double variance = d.samples > 1 ? (mean_square - d.difference * d.difference) * n / (n - 1) : 0.0;
  const double half_width = 1.959964 * std::sqrt(std::max(0.0, variance) / n);
  d.low = d.difference - half_width;
  d.high = d.difference + half_width;
  return d;
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
