// Budgets: "latency=2ms", "size=200KB", "energy=1mJ", "bits=4". Sizes are bytes (KB = 1000 B, KiB = 1024 B),
// latency seconds, energy joules; bits is the average over the encoded layers' weights of their encoded bits,
// metadata (scales, zero points, N:M indices) included.
#pragma once

#include <string>

namespace adze {

struct Budget {
  enum class Metric { kLatency, kSize, kEnergy, kBits } metric = Metric::kSize;
  double value = 0;               ///< in bytes, seconds or joules
  std::string text;               ///< as given
  std::string to_string() const;  ///< "size ≤ 200.00 KB"
};

/// Error(kInvalidArgument) naming the text and what was expected, for a metric, number or unit that does not
/// parse, or a value that is not positive.
Budget parse_budget(const std::string& text);

const char* to_string(Budget::Metric metric);
/// "bytes", "seconds", "joules" or "bits per weight".
std::string unit_of(Budget::Metric m);
/// A cost in the budget's metric for people: 12.3 KB, 45 µs, 0.0012 mJ, 3.250 b/w.
std::string human_cost(Budget::Metric m, double v);

/// "90s", "10min", "2h", "1.5" (seconds) in seconds; Error(kInvalidArgument) naming `flag` unless a positive
/// number with one of the units s, min, h.
double parse_duration(const std::string& text, const std::string& flag);

}  // namespace adze
