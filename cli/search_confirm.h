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
  std::string select_split;    ///< also evaluated on, to choose among plans (empty: none)
  int64_t limit = 0;           ///< samples evaluated (0: all)
  int64_t train_limit = 0;     ///< samples fine-tuning and calibration learn from (0: all of "train")
  bool progress = false;
};

/// The pipeline's steps and options as one string: what a record was made with.
std::string describe(const Pipeline& pipeline);

/// Runs `pipeline` on each candidate of `problem` over the model and data of `space` unless `records` holds one
/// with the same label, choice, pipeline and splits; appends a record per run ({label, choice, pipeline, split,
/// before, after, outcomes (per sample of the split, outcomes_to_hex), select_split and select (the compressed
/// model's metrics there) when selecting, compressed_bytes, average_weight_bits, seconds}) and calls
/// `done(record, from_disk)` for every candidate.
void confirm(const Problem& problem, const std::vector<Candidate>& candidates, const Pipeline& pipeline,
             const SpaceOptions& space, const MeasuredSpace& measured, const ConfirmSettings& settings,
             nlohmann::json& records, const std::function<void(const nlohmann::json&, bool)>& done);

/// Of the records of `candidates` under `pipeline`, the one with the best top-1 on the selection split (then the
/// least loss there, then the first); null when none has a selection.
const nlohmann::json* selected(const nlohmann::json& records, const Pipeline& pipeline,
                               const std::vector<Candidate>& candidates);

/// `reference`'s top-1 lead over `other` on the same samples (paired_difference of their outcomes), as
/// {against, difference, low, high, only_reference, only_other} in points; null when either has no outcomes.
nlohmann::json lead(const nlohmann::json& reference, const nlohmann::json& other);

}  // namespace adze::cli
