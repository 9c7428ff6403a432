// How much more often model A is right than model B on the same samples, with a 95% confidence interval from the
// paired outcomes: only the samples one gets right and the other wrong carry information (as in McNemar's test),
// so the interval is far narrower than two separate accuracies' intervals would suggest. A difference whose
// interval holds 0 is one this test split cannot tell from chance.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace adze {

struct PairedDifference {
  int64_t samples = 0;
  int64_t only_a = 0;        ///< samples A gets right and B wrong
  int64_t only_b = 0;        ///< samples B gets right and A wrong
  double difference = 0;     ///< accuracy of A minus accuracy of B (a fraction)
  double low = 0, high = 0;  ///< its 95% confidence interval (normal approximation of the paired mean)
};

/// Per-sample outcomes (1: right, 0: wrong) of two models on the same samples in the same order.
/// Error(kInvalidArgument) unless both have the same, non-zero length.
PairedDifference paired_difference(const std::vector<uint8_t>& a, const std::vector<uint8_t>& b);

/// The same with several runs of each model (fine-tuned with different seeds, say): per sample, the share of A's
/// runs that get it right minus the share of B's; the mean of these over the samples, and its 95% interval over
/// the samples. only_a and only_b count the samples where one share is the larger. Averaging over runs takes out
/// much of what one run's luck adds; the interval still speaks for these runs, not for every seed there could be.
/// With one run each, this is paired_difference above. Error(kInvalidArgument) unless each side has at least one
/// run and every run the same, non-zero length.
PairedDifference paired_difference(const std::vector<std::vector<uint8_t>>& a_runs,
                                   const std::vector<std::vector<uint8_t>>& b_runs);

/// A mean with its 95% confidence interval from Student's t: for a figure measured once per seed, the interval
/// says how far another set of seeds might move the mean.
struct MeanInterval {
  double mean = 0, low = 0, high = 0;
};
/// Error(kInvalidArgument) with fewer than 2 values.
MeanInterval t_interval(const std::vector<double>& values);

/// Per-sample outcomes packed 4 to a hex digit (the first outcome in the highest bit), for JSON records.
std::string outcomes_to_hex(const std::vector<uint8_t>& outcomes);
/// The inverse of outcomes_to_hex for `count` outcomes; Error(kInvalidArgument) when `hex` does not hold exactly
/// them (a wrong length, a character other than 0-9a-f, a bit set after the last outcome).
std::vector<uint8_t> outcomes_from_hex(const std::string& hex, std::size_t count);

}  // namespace adze
