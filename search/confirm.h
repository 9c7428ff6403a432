// The confirmation runs of adze search: plans compressed for real by a pipeline and evaluated on a held-out
// split, each recorded once (a resumed search reads the records back instead of running them again).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/pass.h"
#include "search/measured_space.h"
#include "search/searcher.h"

namespace adze {

struct ConfirmSettings {
  std::string split = "test";  ///< evaluated on
  std::string select_split;    ///< also evaluated on, to choose among plans (empty: none)
  int64_t limit = 0;           ///< samples evaluated (0: all)
  int64_t train_limit = 0;     ///< samples fine-tuning and calibration learn from (0: all of "train")
  uint64_t seed = 0;           ///< of the pipeline's first run of each plan (fine-tuning's data order)
  int64_t seeds = 1;           ///< runs of each plan, with seeds seed, seed + 1, ...
  bool progress = false;
};

/// The pipeline's steps and options as one string: what a record was made with.
std::string describe(const Pipeline& pipeline);

/// Runs `pipeline` on each of `plans` (labelled choices of `problem`: "searched", "alternative 1", "uniform w3") over
/// the model and data of `space`, once per seed of `settings`, unless `records` holds a run with the same label,
/// choice, pipeline, splits and seed; appends a record per run
/// ({label, choice, pipeline, split, seed, before, after, outcomes (per sample of the split, outcomes_to_hex),
/// select_split and select (the compressed model's metrics there) when selecting, compressed_bytes,
/// average_weight_bits, seconds}) and calls `done(record, from_disk)` for every run. A record without a seed was
/// made with settings.seed.
void confirm(const Problem& problem, const std::vector<Point>& plans, const Pipeline& pipeline,
             const SpaceOptions& space, const MeasuredSpace& measured, const ConfirmSettings& settings,
             nlohmann::json& records, const std::function<void(const nlohmann::json&, bool)>& done);

/// Error(kInvalidArgument) naming `where`, the record's index and the field unless every record has the fields
/// confirm() writes, of the right types (outcomes: as many as the evaluation's predictions).
void check_records(const nlohmann::json& records, const std::string& where);

/// The records made with `pipeline` and the splits and seeds of `settings`, in order (a resumed directory may hold
/// others), each with its seed.
nlohmann::json records_of(const nlohmann::json& records, const Pipeline& pipeline, const ConfirmSettings& settings);

/// `records` (records_of) a plan each, in the order of their first run: {label, choice, runs, seeds, before_top1,
/// top1 (the mean over runs), top1_min, top1_max, select_top1 and select_cross_entropy (means, when selecting),
/// compressed_bytes, average_weight_bits, seconds (all runs)}.
nlohmann::json plans_of(const nlohmann::json& records);

/// Of `plans` (plans_of) those among `among`, the one with the best mean top-1 on the selection split (then the
/// least mean loss there, then the first); null when none has a selection.
const nlohmann::json* selected(const nlohmann::json& plans, const std::vector<Point>& among);

/// The top-1 lead of the plan labelled `reference` over every other plan of `records` (records_of) on the same
/// samples, each sample averaged over a plan's runs (paired_difference of their outcomes): {plan, split, unit,
/// over: [{against, difference, low, high, only_reference, only_other, and with several seeds both ran: per_seed
/// ([{seed, difference}]) and seeds_low, seeds_high (Student's t interval of their mean)}]}, in points. Empty when
/// `reference` has no record; runs without outcomes are left out.
nlohmann::json leads_of(const nlohmann::json& records, const std::string& reference);

}  // namespace adze
