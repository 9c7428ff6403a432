// What sensitivity measurement and search share: the options that define a search space and the subset its
// sensitivity is measured on, and the measurement itself (model, layer table, space, cached sensitivity).
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "data/dataset.h"
#include "model/layer_table.h"
#include "model/model.h"
#include "search/search_space.h"
#include "search/sensitivity.h"

namespace adze {

struct Target;
struct Contract;

struct SpaceOptions {
  std::string model;  ///< the model file (a path: the CLI resolves reference model names)
  std::string data, split = "train", input_shape, input_dtype;
  int64_t limit = 256;
  int64_t eval_batch = 64;  ///< samples per forward while measuring
  std::vector<int> bits = {2, 3, 4, 8};
  std::vector<std::string> nm = {"none", "2:4"};
  std::vector<int> act_bits = {0};
  std::vector<std::string> decompose = {"none"};  ///< search_space.h's space_spec
  int probes = 8;
  uint64_t seed = 0;
};

struct MeasuredSpace {
  std::string path;  ///< the model file
  InputSpec input;
  Dataset data;
  std::unique_ptr<Model> model;
  LayerTable table;
  std::vector<LayerOptions> space;
  SensitivityTable sensitivity;
  bool cached = false;
};

/// Checks the options (Error(kInvalidArgument) naming the flag), loads the model and data, builds the space
/// (filtered by `target` and `contract`, either may be null) and measures its sensitivity or reads it from the
/// cache (`refresh`: measure again).
MeasuredSpace measure_space(const SpaceOptions& o, const Target* target, const Contract* contract, bool progress,
                            bool refresh);

}  // namespace adze
