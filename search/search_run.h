// One search run, as `adze search` does it and any C++ caller can: the space measured (sensitivity, cached),
// each option priced by a cost model in the budget's metric, a registered searcher run anytime and resumably,
// the best plan and its runners-up confirmed by real compress runs, and the one chosen written.
//
// Outputs in `out` (each replaced whole, so a kill leaves the last complete set): search-state.json (every
// measured choice and confirmation, for --resume), plan.json, front.json, front.csv, front.svg, confirmed.svg
// (once plans are confirmed) and search.log.
#pragma once

#include <cstdint>
#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "compress/pass.h"
#include "hardware/target.h"
#include "search/budget.h"
#include "search/confirm.h"
#include "search/measured_space.h"
#include "search/searcher.h"

namespace adze {

struct SearchRunOptions {
  SpaceOptions space;  ///< the model (a path), data, space and sensitivity subset; space.seed seeds everything
  Target target;
  Budget budget;
  std::string algo = "dp";
  nlohmann::json algo_options = nlohmann::json::object();  ///< as given; resolved against the searcher's options
  std::string cost_model = "roofline";  ///< prices latency and energy budgets (hardware/cost_model.h)
  std::string exporter;                 ///< keep only what this format can write (empty: any)
  std::string out;                      ///< the output directory: new, unless `resume`
  bool resume = false;
  double time_budget_s = 0;                    ///< end the search this long after the run began (0: none)
  int64_t batch = 1;                           ///< samples per inference, for latency and energy
  int64_t confirm = 1;                         ///< plans confirmed: the best and confirm - 1 runners-up (0: none)
  std::vector<std::string> confirm_baselines;  ///< uniform plans also confirmed ("w4"), even over the budget
  /// Plan files also confirmed, even over the budget (another search's plan.json, for a paired comparison of
  /// two searches on the same samples and seeds): each layer's config must be one of its options here.
  std::vector<std::string> confirm_plans;
  ConfirmSettings confirmation;  ///< split, select_split (used when confirm > 1), limits, seeds
  Pipeline pipeline;             ///< of the confirmation runs (confirmation_pipeline())
  bool progress = false;
};

/// The pipeline of the confirmation runs when none is given: a one-shot projection (with activation
/// calibration when `act_bits` quantizes activations) and `finetune_steps` of STE fine-tuning distilled from the
/// fp32 model.
Pipeline confirmation_pipeline(const std::vector<int>& act_bits, int64_t finetune_steps);

struct SearchRun {
  MeasuredSpace space;
  Problem problem;
  SearchResult result;
  std::vector<Point> baselines;  ///< the uniform plans, priced (and measured when the searcher measures)
  bool measured = false;         ///< the searcher measured whole plans (else losses are predicted sums)
  bool out_of_time = false;      ///< stopped by time_budget_s
  bool selecting = false;        ///< runners-up were confirmed and chosen among on the selection split
  double search_seconds = 0;
  Metrics best_metrics;                        ///< the best plan, every layer compressed at once, on the subset
  std::vector<ConfirmedPlan> confirmed_plans;  ///< plans_of() this run's confirmations
  Leads leads;                                 ///< the written plan's leads over the other confirmed plans (leads_of)
  std::optional<Point> chosen;                 ///< chosen on the selection split among runners-up; else the best
  nlohmann::json summary;                      ///< front.json
  const std::string& written() const;          ///< the label of the plan in plan.json
};

/// Checks every option (Error(kInvalidArgument) naming the flag), then runs the search. `log` receives each
/// line written to search.log (may be null). Never throws for an unsatisfiable budget: result.satisfiable says
/// so and the closest plan is written.
SearchRun run_search(const SearchRunOptions& options, const std::function<void(const std::string&)>& log = nullptr);

}  // namespace adze
