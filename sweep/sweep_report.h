// A sweep's report from its store: one row per run (its axes, quality before and after, size, latency on its
// target, the measured latency and speed-up when the sweep benches, whether a search met its budget, verify
// verdicts, wall time), grouped by model × target; per-axis effects (within each group, for
// each other axis with more than one value, the mean quality change and size of the runs at each value); and
// per group a Pareto plot (SVG) of the quality drop against size, the front highlighted. As JSON, CSV or
// Markdown.
#pragma once

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "sweep/sweep_store.h"

namespace adze {

struct ReportRow {
  std::string id, state, group;  ///< group: "model" or "model @ target"
  nlohmann::ordered_json axes;
  std::string metric;  ///< top1 or cross_entropy
  std::optional<double> before, after;
  std::optional<double> drop;  ///< top1: points lost (before − after) × 100; cross_entropy: after − before
  std::optional<double> bytes, ratio, latency_s;  ///< latency_s: the roofline's on the run's target
  std::optional<double> bench_s, speedup;         ///< bench: the first export's median, the model's median over it
  std::optional<bool> within_budget;              ///< a search run: whether its plan met the budget
  std::string verify;                             ///< "" (not verified), "pass" or the formats that failed
  double wall_s = 0;
  std::string error;
};

struct AxisEffect {
  std::string group, axis, value;
  int64_t runs = 0;
  double mean_drop = 0, mean_bytes = 0;
};

struct SweepReport {
  std::vector<ReportRow> rows;      ///< by group, then run index
  std::vector<AxisEffect> effects;  ///< by axis, then value as first seen
};

SweepReport make_sweep_report(const SweepStore& store);
nlohmann::ordered_json to_json(const SweepReport& report);
std::string to_csv(const SweepReport& report);
std::string to_markdown(const SweepReport& report);
/// One SVG per group with done runs: group -> document.
std::vector<std::pair<std::string, std::string>> pareto_svgs(const SweepReport& report);

}  // namespace adze
