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

/// Error(kInvalidArgument) naming `where`, the record's index and the field unless every record has the fields
/// confirm() writes, of the right types (outcomes: as many as the evaluation's predictions).
void check_records(const nlohmann::json& records, const std::string& where);

/// The records made with `pipeline` and the splits of `settings`, in order (a resumed directory may hold others).
nlohmann::json records_of(const nlohmann::json& records, const Pipeline& pipeline, const ConfirmSettings& settings);

/// Of `records` (records_of) of `candidates`, the one with the best top-1 on the selection split (then the least
/// loss there, then the first); null when none has a selection.
const nlohmann::json* selected(const nlohmann::json& records, const std::vector<Candidate>& candidates);

/// The top-1 lead of the record labelled `reference` over every other of `records` (records_of) on the same
/// samples (paired_difference of their outcomes): {plan, split, unit, over: [{against, difference, low, high,
/// only_reference, only_other}]}, in points. Empty when `reference` has no record; records without outcomes
/// are left out.
nlohmann::json leads_of(const nlohmann::json& records, const std::string& reference);

}  // namespace adze::cli
