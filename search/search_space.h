// SearchSpace: the configs the search may give each layer — weight bits × N:M patterns × activation bits ×
// decompositions on top of a base config — each kept only when it applies to the layer (check_config), the
// target runs it (Target::unsupported) and the chosen exporter can write it (its Contract).
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
  /// Block decompositions (compress/decompose.h): each entry's decompose, rank_ratio, blocks and basis fields
  /// count, the rest is ignored; one with decompose none for undecomposed configs.
  std::vector<LayerConfig> decompositions = {LayerConfig{}};
  LayerConfig base;  ///< every other field (granularity, scale method, …)
};

struct LayerOptions {
  std::string layer;
  std::vector<LayerConfig> configs;   ///< the legal ones, in spec order
  std::vector<std::string> excluded;  ///< "w2 2:4: <why>" for each one left out
};

/// The space of weight bits × N:M patterns ("none" for dense) × activation bits (0: float) × decompositions
/// ("none", "lowrank:RATIO" with RATIO of min(C, K) in (0, 1], "monarch:BLOCKS", "smartdeal:BASIS") given on the
/// command line, with per-channel MSE scales: what adze sensitivity and adze search explore.
/// Error(kInvalidArgument) naming the flag (--bits, --nm, --act-bits, --decompose) for a width adze has no
/// quantizer for, a pattern or decomposition that does not parse.
SpaceSpec space_spec(const std::vector<int>& weight_bits, const std::vector<std::string>& nm,
                     const std::vector<int>& act_bits, const std::vector<std::string>& decompose = {"none"});

/// Every config of the spec (weight bits × N:M × activation bits × decompositions on the base), in spec order,
/// before any filter.
std::vector<LayerConfig> spec_configs(const SpaceSpec& spec);

/// One entry per layer of `table`, in its order. `target` and `contract` may be null (no such filter).
/// Error(kInvalidConfig) naming the layer when a layer is left with no config at all.
std::vector<LayerOptions> build_search_space(const LayerTable& table, const SpaceSpec& spec, const Target* target,
                                             const Contract* contract);

/// A short name for a config: "w4", "w4 2:4", "w8 a8", "fp32", "w8 rank0.25", "fp32 monarch4", "w4 smartdeal3".
std::string config_label(const LayerConfig& config);

}  // namespace adze
