// The confirmation runs of adze search: plans compressed for real by a pipeline and evaluated on a held-out
// split, each recorded once (a resumed search reads the records back instead of running them again).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cli/space_sensitivity.h"
#include "compress/pass.h"
#include "search/searcher.h"

namespace adze::cli {

struct Candidate {
  std::string label;  ///< "searched", "front 2", "uniform w3"
  Choice choice;
};

struct ConfirmSettings {
  std::string split = "test";  ///< evaluated on
  int64_t limit = 0;           ///< samples evaluated (0: all)
  int64_t train_limit = 0;     ///< samples fine-tuning and calibration learn from (0: all of "train")
  bool progress = false;
};

/// The pipeline's steps and options as one string: what a record was made with.
std::string describe(const Pipeline& pipeline);

/// Runs `pipeline` on each candidate of `problem` over the model and data of `space` unless `records` holds one
/// with the same label, choice and pipeline; appends a record per run ({label, choice, pipeline, split, before,
/// after, compressed_bytes, average_weight_bits, seconds}) and calls `done(record, from_disk)` for every
/// candidate.
void confirm(const Problem& problem, const std::vector<Candidate>& candidates, const Pipeline& pipeline,
             const SpaceOptions& space, const MeasuredSpace& measured, const ConfirmSettings& settings,
             nlohmann::json& records, const std::function<void(const nlohmann::json&, bool)>& done);

}  // namespace adze::cli
