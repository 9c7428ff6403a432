// adze sensitivity MODEL --data SPEC: how much each layer suffers under each config of the search space, and
// each layer's Hessian trace; cached by content hash, printed, plotted (SVG).
#include "search/sensitivity.h"

#include <algorithm>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cli/commands.h"
#include "cli/space_options.h"
#include "core/error.h"
#include "core/files.h"
#include "core/table.h"
#include "hardware/target.h"

namespace adze::cli {
namespace {

struct SensitivityCliOptions {
  SpaceOptions space;
  std::string target, plot;
  bool json = false, no_cache = false;
};

void run_sensitivity(SensitivityCliOptions& o) {
  if (!o.plot.empty()) require_new_output(o.plot, "--plot");
  std::optional<Target> target;
  if (!o.target.empty()) target = load_target(o.target);
  o.space.model = resolve_model_path(o.space.model);
  const MeasuredSpace m =
      measure_space(o.space, target ? &*target : nullptr, nullptr, show_progress(o.json), o.no_cache);
  const SensitivityTable& t = m.sensitivity;
  const bool cached = m.cached;
  const std::string cache = sensitivity_cache_path(t.key);
  if (!o.plot.empty()) write_file_atomically(o.plot, sensitivity_svg(t));
  if (o.json) {
    nlohmann::json j = to_json(t);
    j["model"] = m.model->source();
    j["cached"] = cached;
    j["cache_file"] = cache;
    std::cout << j.dump(2) << "\n";
    return;
  }
  std::cout << "model " << m.model->source() << ", " << m.data.size() << " samples of " << o.space.data << " ("
            << o.space.split << "): cross-entropy " << fixed(t.base.cross_entropy, 4) << ", top-1 "
            << percent(t.base.top1, 2) << (cached ? "; from the cache " : "; cached in ") << cache << "\n"
            << "loss increase (nats) with only that layer compressed; Tr(H): Hutchinson, " << o.space.probes
            << " probes\n\n";
  std::vector<std::string> labels;
  for (const auto& l : t.layers)
    for (const auto& x : l.options)
      if (std::find(labels.begin(), labels.end(), x.label) == labels.end()) labels.push_back(x.label);
  Table table_out;
  table_out.add_column("layer");
  table_out.add_column("params", Table::Align::kRight);
  table_out.add_column("Tr(H)", Table::Align::kRight);
  for (const auto& label : labels) table_out.add_column(label, Table::Align::kRight);
  for (const auto& l : t.layers) {
    std::ostringstream trace;
    trace.precision(3);
    trace << l.hessian_trace;
    std::vector<std::string> row = {l.layer, human_count(static_cast<double>(l.params)), trace.str()};
    for (const auto& label : labels) {
      const auto it =
          std::find_if(l.options.begin(), l.options.end(), [&](const OptionImpact& x) { return x.label == label; });
      row.push_back(it == l.options.end() ? "-" : fixed(std::abs(it->loss_delta) < 5e-5 ? 0.0 : it->loss_delta, 4));
    }
    table_out.add_row(row);
  }
  table_out.print(std::cout);
  if (!o.plot.empty()) std::cout << "plot: " << o.plot << "\n";
}

}  // namespace

void setup_sensitivity(CLI::App& app) {
  auto o = std::make_shared<SensitivityCliOptions>();
  auto* sub = app.add_subcommand("sensitivity", "Measure how much each layer suffers under each compression option");
  sub->footer(
      "For every layer and every option of the search space (weight bits x N:M patterns x --decompose,\n"
      "per-channel MSE scales), compresses only that layer and evaluates a calibration subset: the loss and top-1 "
      "change\n"
      "against the unmodified model. Also each layer's Hessian trace (Hutchinson's estimator, HAWQ-V2) and\n"
      "the HAWQ-V3 proxy Tr(H)/n x |Q(W) - W|^2 (in --json). Options a --target cannot run are left out.\n"
      "Results are cached by a hash of the model file, data, space and options.\n\n"
      "Examples:\n"
      "  adze sensitivity fmnist-cnn --data fmnist --plot cnn-sensitivity.svg\n"
      "  adze sensitivity fortune-gpt --data fortunes --bits 4,8 --nm none --limit 64 --json");
  add_space_options(sub, o->space);
  sub->add_option("--batch", o->space.eval_batch, "samples per forward")->capture_default_str();
  sub->add_option("--target", o->target, "leave out what this target cannot run");
  sub->add_option("--plot", o->plot, "write an SVG heat map here");
  sub->add_flag("--no-cache", o->no_cache, "measure again even when cached");
  sub->add_flag("--json", o->json, "print JSON");
  sub->callback([o] { run_sensitivity(*o); });
}

}  // namespace adze::cli
