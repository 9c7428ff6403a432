// adze verify as a library: an exported model run in its real runtime (through its format's Runner) and the
// simulation it came from, side by side on the same data; how far apart they are, per layer where the runtime
// exposes layers, against thresholds.
#pragma once

#include <cmath>
#include <cstdint>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "data/eval.h"
#include "exporters/agreement.h"

namespace adze {

struct VerifyOptions {
  std::string exported;  ///< the file (or c-header directory) adze export wrote
  std::string against;   ///< the adze compress output it was exported from
  std::string data, split = "test";
  int64_t limit = 0;  ///< samples (0: all)
  /// NaN: the default, which depends on whether layers quantize their inputs on the fly (0.99 / 30 dB where they
  /// do, else 0.995 / 40 dB); verify() returns the options with the defaults filled in. min_layer_sqnr bounds
  /// each layer's own SQNR (Verification::own_layers).
  double min_agreement = NAN, min_cosine = 0.999, min_layer_sqnr = NAN;
  std::string ort_optimization = "all";  ///< all, extended, basic or disabled
  std::string activations = "dynamic";   ///< packed runtime, weight-only layers: dynamic or float
  bool progress = false;
};

struct Verification {
  VerifyOptions options;  ///< as run, thresholds resolved
  std::string format;
  nlohmann::json runtime;  ///< the runner's describe()
  int64_t samples = 0, predictions = 0;
  double max_abs_diff = 0, cosine = 0, argmax_agreement = 0;
  Metrics simulated, exported;
  /// Per layer output, where the runtime exposes them: `layers` as the runtime ran the whole model (each layer's
  /// error with all that the layers before it passed on), `own_layers` each layer run from the simulation's
  /// outputs of the layers before it (its error alone). The per-layer threshold applies to `own_layers`: a deep
  /// quantized network magnifies the one-step code differences of float rounding layer after layer, which the
  /// output's agreement and cosine judge.
  std::vector<std::pair<std::string, Agreement>> layers, own_layers;
  bool pass = false;
};

/// Error(kInvalidArgument) for a threshold out of range, an unknown format, data too small for one batch, or
/// an export that is not of the compressed model.
Verification verify(VerifyOptions options);

/// What `adze verify --json` prints.
nlohmann::json to_json(const Verification& v);

}  // namespace adze
