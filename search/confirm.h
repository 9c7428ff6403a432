// The confirmation runs of adze search: plans compressed for real by a pipeline and evaluated on a held-out
// split, each recorded once (a resumed search reads the records back instead of running them again).
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "compress/pass.h"
#include "data/eval.h"
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

/// One confirmation run: a plan compressed by a pipeline with one seed and evaluated. Stored in
/// search-state.json (to_json); read back by confirm_records_from_json.
struct ConfirmRecord {
  std::string label;  ///< "searched", "alternative 1", "uniform w3"
  Choice choice;
  std::string pipeline;                 ///< describe() of the pipeline
  std::string split;                    ///< evaluated on
  std::optional<uint64_t> seed;         ///< absent in records of older searches: they were made with the settings' seed
  Metrics before, after;                ///< the uncompressed and the compressed model on `split`
  std::optional<std::string> outcomes;  ///< per prediction of `after`, right or wrong (outcomes_to_hex)
  std::string select_split;             ///< also evaluated on (empty: none)
  std::optional<Metrics> select;        ///< the compressed model on `select_split`
  int64_t compressed_bytes = 0;
  double average_weight_bits = 0, seconds = 0;
};

nlohmann::json to_json(const ConfirmRecord& record);
nlohmann::json to_json(const std::vector<ConfirmRecord>& records);
/// The records of a search state's "confirmed" list. Error(kInvalidArgument) naming `where`, the record's index
/// and the field for a record without the fields confirm() writes, or of the wrong types (outcomes: as many as
/// the evaluation's predictions).
std::vector<ConfirmRecord> confirm_records_from_json(const nlohmann::json& records, const std::string& where);

/// Runs `pipeline` on each of `plans` (labelled choices of `problem`) over the model and data of `space`, once
/// per seed of `settings`, unless `records` holds a run with the same label, choice, pipeline, splits and seed;
/// appends a record per run and calls `done(record, from_disk)` for every run.
void confirm(const Problem& problem, const std::vector<Point>& plans, const Pipeline& pipeline,
             const SpaceOptions& space, const MeasuredSpace& measured, const ConfirmSettings& settings,
             std::vector<ConfirmRecord>& records, const std::function<void(const ConfirmRecord&, bool)>& done);

/// The records made with `pipeline` and the splits and seeds of `settings`, in order (a resumed directory may hold
/// others), each with its seed.
std::vector<ConfirmRecord> records_of(const std::vector<ConfirmRecord>& records, const Pipeline& pipeline,
                                      const ConfirmSettings& settings);

/// A confirmed plan: its runs (records_of) summarised.
struct ConfirmedPlan {
  std::string label;
  Choice choice;
  std::vector<uint64_t> seeds;  ///< one per run
  double before_top1 = 0;
  double top1 = 0, top1_min = 0, top1_max = 0;              ///< the mean over runs, and its range
  std::optional<double> select_top1, select_cross_entropy;  ///< means on the selection split, when selecting
  int64_t compressed_bytes = 0;
  double average_weight_bits = 0;
  double seconds = 0;  ///< all runs
};

nlohmann::json to_json(const ConfirmedPlan& plan);
nlohmann::json to_json(const std::vector<ConfirmedPlan>& plans);

/// `records` (records_of) a plan each, in the order of their first run.
std::vector<ConfirmedPlan> plans_of(const std::vector<ConfirmRecord>& records);

/// Of `plans` those among `among`, the one with the best mean top-1 on the selection split (then the least mean
/// loss there, then the first); null when none has a selection.
const ConfirmedPlan* selected(const std::vector<ConfirmedPlan>& plans, const std::vector<Point>& among);

/// The top-1 lead of one plan over another on the same samples, in points.
struct Lead {
  std::string against;
  double difference = 0, low = 0, high = 0;    ///< paired difference and its 95% interval
  int64_t only_reference = 0, only_other = 0;  ///< samples only one of the two gets right
  /// With several seeds both ran: the difference per seed and Student's t interval of their mean.
  std::vector<std::pair<uint64_t, double>> per_seed;
  double seeds_low = 0, seeds_high = 0;
};

struct Leads {
  std::string plan;  ///< the reference; empty: no leads
  std::string split;
  std::vector<Lead> over;
  bool empty() const { return plan.empty(); }
};

/// {plan, split, unit, over: [{against, difference, low, high, only_reference, only_other[, per_seed, seeds_low,
/// seeds_high]}]}; {} when empty.
nlohmann::json to_json(const Leads& leads);

/// The top-1 lead of the plan labelled `reference` over every other plan of `records` (records_of) on the same
/// samples, each sample averaged over a plan's runs (paired_difference of their outcomes). Empty when `reference`
/// has no record; runs without outcomes are left out.
Leads leads_of(const std::vector<ConfirmRecord>& records, const std::string& reference);

}  // namespace adze
