// Plan: what to do to each layer. Defaults plus selectors, in JSON:
//
//   {
//     "defaults": {"weight_bits": 8, "act_bits": 8},
//     "layers": {
//       "features.*":   {"weight_bits": 4, "nm": "2:4"},
//       "classifier.3": {"weight_bits": 8, "granularity": "tensor"}
//     }
//   }
//
// A selector is a glob over layer names (`*`, `?`), the weight's parameter name, or a regular expression
// written "re:<ECMAScript regex>"; selectors apply in file order over the defaults, later ones winning field by
// field. Fields (all optional): weight_bits (2..8, 16, 32), quantizer ("uniform" | "pow2"), symmetric (bool),
// granularity ("tensor" | "channel" | "group"), group_size, pow2_scale (bool), scale_method ("minmax" |
// "percentile" | "mse"), percentile, act_bits (8 | 16 | "none"), nm ("N:M" | "none"), sparsity ([0, 1)),
// decompose ("none" | "lowrank" | "monarch" | "smartdeal", compress/decompose.h) with rank (>= 1) or
// rank_ratio ((0, 1]; rank wins when both are set) for lowrank, blocks (default 4) for monarch and basis
// (default 3) for smartdeal. A decomposed layer's weight fields apply to each of its factors.
// Everything is validated against the model before any work: an error names the file, the layer and the field;
// a selector that matches nothing is a warning.
#pragma once

#include <map>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/encoding.h"

namespace adze {

struct LayerTable;

struct PlanSelector {
  std::string pattern;
  nlohmann::ordered_json fields;  ///< the overrides, as written
};

struct Plan {
  std::string source;  ///< where it came from (a path), for messages
  LayerConfig defaults;
  std::vector<PlanSelector> selectors;
};

/// Parses a plan document; `source` names it in messages (a path). Throws Error(kInvalidConfig) naming the
/// field for wrong types, unknown fields and out-of-range values.
Plan parse_plan(const nlohmann::ordered_json& doc, const std::string& source);
/// Reads and parses a plan file (Error(kIo) if unreadable, kInvalidConfig if not JSON, naming line and column).
Plan load_plan(const std::string& path);

struct ResolvedPlan {
  std::map<std::string, LayerConfig> layers;  ///< by layer name, every layer of the table
  std::vector<std::string> warnings;          ///< selectors that matched nothing
};

/// Applies the plan to every layer and checks each config against its layer (check_config). Throws
/// Error(kInvalidConfig) listing every layer whose config cannot apply, each with its field.
ResolvedPlan resolve_plan(const Plan& plan, const LayerTable& table, const std::string& source);

/// The plan as applied: {"layers": {name: {every field}}}, readable by parse_plan.
nlohmann::ordered_json to_json(const ResolvedPlan& plan);
nlohmann::ordered_json to_json(const LayerConfig& config);

/// Glob match with `*` and `?` (no escapes); "re:..." patterns use std::regex (ECMAScript, whole match).
bool selector_matches(const std::string& pattern, const std::string& name);

}  // namespace adze
