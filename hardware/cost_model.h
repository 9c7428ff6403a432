// Cost models: latency, energy and bytes of a layer under a config on a target, behind one interface, and the
// whole model as the sum of its layers (plus the pipelined estimate for weights streamed from storage).
//
// roofline (roofline.cc): analytical. compute = MACs / (peak MACs/s at the layer's compute precision × the
// target's N:M speedup); memory = weight bytes (the real encoded size, planned_bits) / bandwidth of the level
// the weights live in + activation bytes / bandwidth of the innermost level that holds them; latency = the
// target's per-layer overhead + max(compute, memory); energy = executed MACs × pJ/MAC + bytes × pJ/byte of
// their level.
#pragma once

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/encoding.h"
#include "core/registry.h"
#include "hardware/target.h"
#include "model/layer_table.h"

namespace adze {

struct LayerCost {
  std::string precision;    ///< what it computes in (fp16, int8, …)
  double macs = 0;          ///< executed multiply-accumulates (after N:M skipping where the target skips)
  double weight_bytes = 0;  ///< encoded weight + bias
  double activation_bytes = 0;
  std::string weight_level, activation_level;  ///< memory levels they are read from / written to
  double compute_s = 0, memory_s = 0, latency_s = 0, energy_j = 0;
  bool memory_bound() const { return memory_s > compute_s; }
};

class CostModel {
 public:
  virtual ~CostModel() = default;
  /// The cost of `layer` with `config` at `batch` samples on `target`. Error(kUnsupported) naming the layer
  /// when the target cannot run the config (Target::unsupported).
  virtual LayerCost layer(const Target& target, const Layer& layer, const LayerConfig& config, int64_t batch) const = 0;
};

/// Cost models by name ("roofline"), listed in core/builtins.def.
const Registry<CostModel>& cost_models();

struct ModelCost {
  std::vector<std::pair<std::string, LayerCost>> layers;  ///< in the table's order
  double latency_s = 0, energy_j = 0, weight_bytes = 0;
  double peak_activation_bytes = 0;  ///< the largest input + output of one layer at the batch
  /// Weights streamed from storage while earlier layers compute (STI-style pipeline): layer i starts when its
  /// weights have arrived and layer i−1 is done. 0 when the target has no storage figure.
  double streamed_latency_s = 0;
  std::vector<std::string> fit_problems;  ///< "weights 1.2 MB do not fit flash (1.0 MB)", …
};

/// Every layer of `table` under its config in `configs` (by layer name). Error(kUnsupported) listing every layer
/// the target cannot run.
ModelCost model_cost(const CostModel& model, const Target& target, const LayerTable& table,
                     const std::map<std::string, LayerConfig>& configs, int64_t batch);

nlohmann::json to_json(const ModelCost& cost);

}  // namespace adze
