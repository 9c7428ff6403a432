// SearchSpace: the configs the search may give each layer — weight bits × N:M patterns × activation bits on
// top of a base config — each kept only when it applies to the layer (check_config), the target runs it
// (Target::unsupported) and the chosen exporter can write it (its Contract).
#pragma once

#include <string>
#include <vector>

#include "compress/encoding.h"
#include "model/layer_table.h"

namespace adze {

struct Target;
struct Contract;

struct SpaceSpec {
  std::vector<int> weight_bits = {2, 3, 4, 8};
  std::vector<NMPattern> nm = {NMPattern{}, NMPattern{2, 4}};
  std::vector<int> act_bits = {0};
  LayerConfig base;  ///< every other field (granularity, scale method, …)
};

struct LayerOptions {
  std::string layer;
  std::vector<LayerConfig> configs;   ///< the legal ones, in spec order
  std::vector<std::string> excluded;  ///< "w2 2:4: <why>" for each one left out
};

/// The space of weight bits × N:M patterns ("none" for dense) × activation bits (0: float) given on the command
/// line, with per-channel MSE scales: what adze sensitivity and adze search explore. Error(kInvalidArgument)
/// naming the flag (--bits, --nm, --act-bits) for a width adze has no quantizer for or a pattern that does not
/// parse.
SpaceSpec space_spec(const std::vector<int>& weight_bits, const std::vector<std::string>& nm,
                     const std::vector<int>& act_bits);

/// Every config of the spec (weight bits × N:M × activation bits on the base), in spec order, before any filter.
std::vector<LayerConfig> spec_configs(const SpaceSpec& spec);

/// One entry per layer of `table`, in its order. `target` and `contract` may be null (no such filter).
/// Error(kInvalidConfig) naming the layer when a layer is left with no config at all.
std::vector<LayerOptions> build_search_space(const LayerTable& table, const SpaceSpec& spec, const Target* target,
                                             const Contract* contract);

/// A short name for a config: "w4", "w4 2:4", "w8 a8", "fp32".
std::string config_label(const LayerConfig& config);

}  // namespace adze
