#include "cli/search_confirm.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "cli/commands.h"
#include "cli/compress_run.h"

namespace adze::cli {

std::string describe(const Pipeline& p) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : p.steps) steps.push_back({{"name", s.name}, {"options", s.options}});
  return steps.dump();
}

void confirm(const Problem& problem, const std::vector<Candidate>& candidates, const Pipeline& pipeline,
             const SpaceOptions& space, const MeasuredSpace& m, const ConfirmSettings& settings,
             nlohmann::json& records, const std::function<void(const nlohmann::json&, bool)>& done) {
  const std::string pipeline_text = describe(pipeline);
  auto recorded = [&](const Candidate& c) {
    return std::find_if(records.begin(), records.end(), [&](const nlohmann::json& j) {
      return j["label"] == c.label && j["choice"] == nlohmann::json(c.choice) && j["pipeline"] == pipeline_text;
    });
  };
  if (std::all_of(candidates.begin(), candidates.end(),
                  [&](const Candidate& c) { return recorded(c) != records.end(); })) {
    for (const auto& c : candidates) done(*recorded(c), true);
    return;
  }
  InputSpec input = resolve_input_spec(m.path, space.input_shape, space.input_dtype);
  const Dataset eval = load_data_for_model(m.path, input, space.data, settings.split, settings.limit, 0);
  std::optional<Dataset> train;
  if (needs_training_data(pipeline)) {
    InputSpec train_input = input;
    train = load_data_for_model(m.path, train_input, space.data, "train", settings.train_limit, 0);
  }
  double weights = 0;
  for (const Layer& l : m.table.layers) weights += static_cast<double>(l.params);
  for (const auto& c : candidates) {
    if (const auto it = recorded(c); it != records.end()) {
      done(*it, true);
      continue;
    }
    const auto start = std::chrono::steady_clock::now();
    ResolvedPlan plan;
    for (std::size_t l = 0; l < problem.layers.size(); ++l)
      plan.layers[problem.layers[l]] = problem.configs[l][static_cast<std::size_t>(c.choice[l])];
    const CompressRun run = compress_run(m.path, input, parse_plan(to_json(plan), c.label), c.label, pipeline, &eval,
                                         train ? &*train : nullptr, space.seed, settings.progress);
    double bits = 0;
    for (const auto& l : run.report["layers"])
      for (const char* part : {"codes", "scales", "zero_points", "index"}) bits += l["bits"][part].get<double>();
    records.push_back({{"label", c.label},
                       {"choice", c.choice},
                       {"pipeline", pipeline_text},
                       {"split", settings.split},
                       {"before", to_json(run.context.metrics.at("before"))},
                       {"after", to_json(run.context.metrics.at("after"))},
                       {"compressed_bytes", run.report["size"]["compressed_bytes"]},
                       {"average_weight_bits", bits / std::max(1.0, weights)},
                       {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count()}});
    done(records.back(), false);
  }
}

}  // namespace adze::cli
