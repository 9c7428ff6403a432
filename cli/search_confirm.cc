#include "cli/search_confirm.h"

#include <algorithm>
#include <chrono>
#include <optional>

#include "cli/commands.h"
#include "cli/compress_run.h"
#include "core/error.h"
#include "core/paired_difference.h"

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
      return j["label"] == c.label && j["choice"] == nlohmann::json(c.choice) && j["pipeline"] == pipeline_text &&
             j["split"] == settings.split && j.value("select_split", "") == settings.select_split;
    });
  };
  if (std::all_of(candidates.begin(), candidates.end(),
                  [&](const Candidate& c) { return recorded(c) != records.end(); })) {
    for (const auto& c : candidates) done(*recorded(c), true);
    return;
  }
  InputSpec input = resolve_input_spec(m.path, space.input_shape, space.input_dtype);
  const Dataset eval = load_data_for_model(m.path, input, space.data, settings.split, settings.limit, 0);
  std::optional<Dataset> select;
  if (!settings.select_split.empty()) {  // the model's batch stays the evaluation split's
    InputSpec select_input = input;
    select = load_data_for_model(m.path, select_input, space.data, settings.select_split, 0, 0);
  }
  std::optional<Dataset> train;
  if (needs_training_data(pipeline)) {
    InputSpec train_input = input;
    train = load_data_for_model(m.path, train_input, space.data, "train", settings.train_limit, 0);
  }
  double weights = 0;
  for (const Layer& l : m.table.layers) weights += static_cast<double>(l.params);
  std::optional<Metrics> before;
  for (const auto& c : candidates) {
    if (const auto it = recorded(c); it != records.end()) {
      done(*it, true);
      continue;
    }
    const auto start = std::chrono::steady_clock::now();
    ResolvedPlan plan;
    for (std::size_t l = 0; l < problem.layers.size(); ++l)
      plan.layers[problem.layers[l]] = problem.configs[l][static_cast<std::size_t>(c.choice[l])];
    std::vector<uint8_t> outcomes;
    const CompressRun run =
        compress_run(m.path, input, parse_plan(to_json(plan), c.label), c.label, pipeline, &eval,
                     train ? &*train : nullptr, space.seed, settings.progress, &outcomes, before ? &*before : nullptr);
    if (!before) before = run.context.metrics.at("before");  // the same uncompressed model every time
    if (outcomes.empty())  // the pipeline evaluated "after" itself
      (void)evaluate(*run.model, eval, {run.model->traced_batch(), settings.progress, &outcomes});
    nlohmann::json record = {{"label", c.label},
                             {"choice", c.choice},
                             {"pipeline", pipeline_text},
                             {"split", settings.split},
                             {"before", to_json(run.context.metrics.at("before"))},
                             {"after", to_json(run.context.metrics.at("after"))},
                             {"outcomes", outcomes_to_hex(outcomes)}};
    if (select) {
      record["select_split"] = settings.select_split;
      record["select"] = to_json(evaluate(*run.model, *select, {run.model->traced_batch(), settings.progress}));
    }
    double bits = 0;
    for (const auto& l : run.report["layers"])
      for (const char* part : {"codes", "scales", "zero_points", "index"}) bits += l["bits"][part].get<double>();
    record["compressed_bytes"] = run.report["size"]["compressed_bytes"];
    record["average_weight_bits"] = bits / std::max(1.0, weights);
    record["seconds"] = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    records.push_back(std::move(record));
    done(records.back(), false);
  }
}

void check_records(const nlohmann::json& records, const std::string& where) {
  for (std::size_t i = 0; i < records.size(); ++i) {
    const nlohmann::json& r = records[i];
    const std::string at = where + ": confirmed[" + std::to_string(i) + "]";
    auto need = [&](bool ok, const std::string& what) {
      if (!ok) throw Error(ErrorKind::kInvalidArgument, at + ": " + what);
    };
    need(r.is_object(), "not an object");
    for (const char* f : {"label", "pipeline", "split"})
      need(r.contains(f) && r[f].is_string(), std::string("'") + f + "' is not a string");
    need(r.contains("choice") && r["choice"].is_array() &&
             std::all_of(r["choice"].begin(), r["choice"].end(),
                         [](const nlohmann::json& o) { return o.is_number_integer() && o.get<int64_t>() >= 0; }),
         "'choice' is not a list of option indices");
    for (const char* f : {"compressed_bytes", "average_weight_bits", "seconds"})
      need(r.contains(f) && r[f].is_number(), std::string("'") + f + "' is not a number");
    for (const char* f : {"before", "after", "select"}) {
      if (std::string(f) == "select" && !r.contains(f)) continue;
      need(r.contains(f) && r[f].is_object(), std::string("'") + f + "' is not an object of metrics");
      for (const char* m : {"top1", "cross_entropy"})
        need(r[f].contains(m) && r[f][m].is_number(), std::string("'") + f + "." + m + "' is not a number");
      need(r[f].contains("predictions") && r[f]["predictions"].is_number_unsigned(),
           std::string("'") + f + ".predictions' is not a count");
    }
    need(!r.contains("select") || (r.contains("select_split") && r["select_split"].is_string()),
         "'select_split' is not a string");
    if (r.contains("outcomes")) {
      need(r["outcomes"].is_string(), "'outcomes' is not a string");
      try {
        (void)outcomes_from_hex(r["outcomes"].get<std::string>(), r["after"]["predictions"].get<std::size_t>());
      } catch (const Error& e) {
        need(false, "'outcomes': " + std::string(e.what()));
      }
    }
  }
}

nlohmann::json records_of(const nlohmann::json& records, const Pipeline& pipeline, const ConfirmSettings& settings) {
  const std::string pipeline_text = describe(pipeline);
  nlohmann::json out = nlohmann::json::array();
  for (const auto& r : records)
    if (r["pipeline"] == pipeline_text && r["split"] == settings.split &&
        r.value("select_split", "") == settings.select_split)
      out.push_back(r);
  return out;
}

const nlohmann::json* selected(const nlohmann::json& records, const std::vector<Candidate>& candidates) {
  const nlohmann::json* best = nullptr;
  for (const auto& r : records) {
    const bool candidate = std::any_of(candidates.begin(), candidates.end(), [&](const Candidate& c) {
      return r["label"] == c.label && r["choice"] == nlohmann::json(c.choice);
    });
    if (!candidate || !r.contains("select")) continue;
    const double top1 = r["select"]["top1"].get<double>(), loss = r["select"]["cross_entropy"].get<double>();
    if (!best || top1 > (*best)["select"]["top1"].get<double>() ||
        (top1 == (*best)["select"]["top1"].get<double>() && loss < (*best)["select"]["cross_entropy"].get<double>()))
      best = &r;
  }
  return best;
}

nlohmann::json leads_of(const nlohmann::json& records, const std::string& reference) {
  const auto ref =
      std::find_if(records.begin(), records.end(), [&](const nlohmann::json& r) { return r["label"] == reference; });
  if (ref == records.end() || !ref->contains("outcomes")) return nlohmann::json::object();
  auto outcomes = [](const nlohmann::json& r) {
    return outcomes_from_hex(r["outcomes"].get<std::string>(), r["after"]["predictions"].get<std::size_t>());
  };
  const std::vector<uint8_t> mine = outcomes(*ref);
  nlohmann::json leads = {
      {"plan", reference}, {"split", (*ref)["split"]}, {"unit", "points of top-1"}, {"over", nlohmann::json::array()}};
  for (const auto& other : records) {
    if (other["label"] == reference || !other.contains("outcomes")) continue;
    const PairedDifference d = paired_difference(mine, outcomes(other));
    leads["over"].push_back({{"against", other["label"]},
                             {"difference", d.difference * 100},
                             {"low", d.low * 100},
                             {"high", d.high * 100},
                             {"only_reference", d.only_a},
                             {"only_other", d.only_b}});
  }
  return leads;
}

}  // namespace adze::cli
