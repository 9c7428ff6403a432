// Sensitivity: how much each layer's accuracy suffers under each config of the search space, measured cheaply
// on a calibration subset, and each layer's Hessian trace (Hutchinson's estimator, as HAWQ-V2 uses).
//
// Per option: only that layer's weight is replaced by its projection (the rest of the model stays fp32) and the
// subset is evaluated: loss and top-1 deltas against the unmodified model. An option with activation bits adds
// the deltas of that layer's input alone fake-quantized at those bits (min-max calibrated on the subset, on a
// copy of the model): the two effects are taken as additive, as the search assumes across layers.
//
// Per layer: Tr(H) of the loss with respect to the weight, E[vᵀHv] over Rademacher probes v, all layers at once
// by double backpropagation; the HAWQ-V3 proxy of an option is |Tr(H)|/n · ‖Q(W) − W‖² (away from a minimum, as
// in an untrained network, an inner layer's trace can be negative).
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "data/eval.h"
#include "model/layer_table.h"
#include "search/search_space.h"

namespace adze {

class Model;

struct SensitivityOptions {
  int64_t batch = 64;             ///< samples per forward
  int hessian_probes = 8;         ///< Rademacher probes for Hutchinson's estimator (0: skip the Hessian)
  int64_t hessian_samples = 128;  ///< calibration samples the Hessian is taken over
  uint64_t seed = 0;
  bool progress = false;
};

struct OptionImpact {
  LayerConfig config;
  std::string label;
  double loss_delta = 0;     ///< cross-entropy with this layer compressed − baseline (nats)
  double top1_delta = 0;     ///< top-1 with this layer compressed − baseline (fraction)
  double weight_error = 0;   ///< ‖Q(W) − W‖²
  double hessian_proxy = 0;  ///< |Tr(H)|/n · ‖Q(W) − W‖² (0 without the Hessian)
};

/// The loss increase the search predicts for an option: the larger of its measured delta (noisy on a small
/// subset; a negative one is noise, not a gain) and the second-order Taylor term ½·Tr(H)/n·‖ΔW‖² (smooth and
/// positive), so that a measured harm counts and options the measurement cannot tell apart are still ranked.
double predicted_loss_increase(const OptionImpact& impact);

struct LayerSensitivity {
  std::string layer;
  int64_t params = 0;
  double hessian_trace = 0;
  std::vector<OptionImpact> options;  ///< in the search space's order
};

struct SensitivityTable {
  std::string key;  ///< content hash of what was measured (the cache key)
  Metrics base;     ///< the unmodified model on the subset
  std::vector<LayerSensitivity> layers;
  /// The option of `layer` with the weight bits, N:M pattern, sparsity and activation bits of `config`, or
  /// nullptr (the other fields are the space's base config, the same for every option).
  const OptionImpact* find(const std::string& layer, const LayerConfig& config) const;
};

/// Measures the table for `space` on `calibration`. The model is left as it was.
SensitivityTable measure_sensitivity(Model& model, const LayerTable& table, const Dataset& calibration,
                                     const std::vector<LayerOptions>& space, const SensitivityOptions& options);

/// measure_sensitivity, or the table cached under the same key. `identity` names what is measured (the model
/// file's content hash, the data spec, split and size); the key adds the space and the options. With `refresh`
/// it measures again. `from_cache` (may be null) tells which happened.
SensitivityTable cached_sensitivity(Model& model, const LayerTable& table, const Dataset& calibration,
                                    const std::vector<LayerOptions>& space, const SensitivityOptions& options,
                                    const std::string& identity, bool refresh, bool* from_cache);

nlohmann::json to_json(const SensitivityTable& table);
/// Error(kInvalidConfig) naming `where` for a malformed table.
SensitivityTable sensitivity_from_json(const nlohmann::json& j, const std::string& where);

/// The cache file of `key`: ~/.cache/adze/sensitivity/KEY.json ($ADZE_CACHE_DIR instead of ~/.cache/adze).
std::string sensitivity_cache_path(const std::string& key);

/// An SVG heat map: one row per layer, one column per option label, colour = loss delta; the Hessian trace
/// as a bar beside each row.
std::string sensitivity_svg(const SensitivityTable& table);

}  // namespace adze
