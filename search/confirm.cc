#include "search/confirm.h"

#include <algorithm>
#include <chrono>
#include <map>
#include <optional>

#include "compress/compress_run.h"
#include "core/error.h"
#include "core/paired_difference.h"
#include "data/model_data.h"

namespace adze {

std::string describe(const Pipeline& p) {
  nlohmann::json steps = nlohmann::json::array();
  for (const auto& s : p.steps) steps.push_back({{"name", s.name}, {"options", s.options}});
  return steps.dump();
}

void confirm(const Problem& problem, const std::vector<Point>& plans, const Pipeline& pipeline,
             const SpaceOptions& space, const MeasuredSpace& m, const ConfirmSettings& settings,
             nlohmann::json& records, const std::function<void(const nlohmann::json&, bool)>& done) {
  const std::string pipeline_text = describe(pipeline);
  struct Pending {
    const Point* plan;
    uint64_t seed;
  };
  std::vector<Pending> runs;
  for (const auto& c : plans)
    for (int64_t k = 0; k < settings.seeds; ++k) runs.push_back({&c, settings.seed + static_cast<uint64_t>(k)});
  auto recorded = [&](const Pending& run) {
    return std::find_if(records.begin(), records.end(), [&](const nlohmann::json& j) {
      return j["label"] == run.plan->label && j["choice"] == nlohmann::json(run.plan->choice) &&
             j["pipeline"] == pipeline_text && j["split"] == settings.split &&
             j.value("select_split", "") == settings.select_split && j.value("seed", settings.seed) == run.seed;
    });
  };
  if (std::all_of(runs.begin(), runs.end(), [&](const Pending& run) { return recorded(run) != records.end(); })) {
    for (const auto& run : runs) done(*recorded(run), true);
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
  std::optional<Metrics> before;
  for (const auto& pending : runs) {
    if (const auto it = recorded(pending); it != records.end()) {
      done(*it, true);
      continue;
    }
    const Point& c = *pending.plan;
    const auto start = std::chrono::steady_clock::now();
    ResolvedPlan plan;
    for (std::size_t l = 0; l < problem.layers.size(); ++l)
      plan.layers[problem.layers[l]] = problem.configs[l][static_cast<std::size_t>(c.choice[l])];
    std::vector<uint8_t> outcomes;
    const CompressRun run = compress_run(m.path, input, parse_plan(to_json(plan), c.label), c.label, pipeline, &eval,
                                         train ? &*train : nullptr, pending.seed, settings.progress, &outcomes,
                                         before ? &*before : nullptr);
    if (!before) before = run.context.metrics.at("before");  // the same uncompressed model every time
    // Empty when the pipeline evaluated "after" itself.
    if (outcomes.empty()) (void)evaluate(*run.model, eval, {run.model->traced_batch(), settings.progress, &outcomes});
    nlohmann::json record = {{"label", c.label},
                             {"choice", c.choice},
                             {"pipeline", pipeline_text},
                             {"split", settings.split},
                             {"seed", pending.seed},
                             {"before", to_json(run.context.metrics.at("before"))},
                             {"after", to_json(run.context.metrics.at("after"))},
                             {"outcomes", outcomes_to_hex(outcomes)}};
    if (select) {
      record["select_split"] = settings.select_split;
      record["select"] = to_json(evaluate(*run.model, *select, {run.model->traced_batch(), settings.progress}));
    }
    record["compressed_bytes"] = run.report["size"]["compressed_bytes"];
    record["average_weight_bits"] = run.report["size"]["average_weight_bits"];
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
    need(!r.contains("seed") || r["seed"].is_number_unsigned(), "'seed' is not a non-negative integer");
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
  for (const auto& r : records) {
    const uint64_t seed = r.value("seed", settings.seed);
    if (r["pipeline"] == pipeline_text && r["split"] == settings.split &&
        r.value("select_split", "") == settings.select_split && seed >= settings.seed &&
        seed - settings.seed < static_cast<uint64_t>(settings.seeds)) {
      out.push_back(r);
      out.back()["seed"] = seed;
    }
  }
  return out;
}

namespace {

// `records` by plan label, in the order of each label's first record.
std::vector<std::vector<const nlohmann::json*>> runs_by_plan(const nlohmann::json& records) {
  std::vector<std::vector<const nlohmann::json*>> plans;
  for (const auto& r : records) {
    auto plan = std::find_if(plans.begin(), plans.end(), [&](const auto& p) { return (*p[0])["label"] == r["label"]; });
    if (plan == plans.end()) plan = plans.insert(plans.end(), std::vector<const nlohmann::json*>{});
    plan->push_back(&r);
  }
  return plans;
}

// The mean over `runs` of the number at `metrics`.`name`.
double mean_of(const std::vector<const nlohmann::json*>& runs, const char* metrics, const char* name) {
  double sum = 0;
  for (const auto* r : runs) sum += (*r)[metrics][name].get<double>();
  return sum / static_cast<double>(runs.size());
}

}  // namespace

nlohmann::json plans_of(const nlohmann::json& records) {
  nlohmann::json plans = nlohmann::json::array();
  for (const auto& runs : runs_by_plan(records)) {
    const nlohmann::json& first = *runs[0];
    nlohmann::json seeds = nlohmann::json::array();
    double low = 1, high = 0, seconds = 0;
    for (const auto* r : runs) {
      seeds.push_back((*r)["seed"]);
      low = std::min(low, (*r)["after"]["top1"].get<double>());
      high = std::max(high, (*r)["after"]["top1"].get<double>());
      seconds += (*r)["seconds"].get<double>();
    }
    nlohmann::json plan = {{"label", first["label"]},
                           {"choice", first["choice"]},
                           {"runs", runs.size()},
                           {"seeds", seeds},
                           {"before_top1", first["before"]["top1"]},
                           {"top1", mean_of(runs, "after", "top1")},
                           {"top1_min", low},
                           {"top1_max", high},
                           {"compressed_bytes", first["compressed_bytes"]},
                           {"average_weight_bits", first["average_weight_bits"]},
                           {"seconds", seconds}};
    if (first.contains("select")) {  // records_of keeps the runs of one selection split: all have it
      plan["select_top1"] = mean_of(runs, "select", "top1");
      plan["select_cross_entropy"] = mean_of(runs, "select", "cross_entropy");
    }
    plans.push_back(std::move(plan));
  }
  return plans;
}

const nlohmann::json* selected(const nlohmann::json& plans, const std::vector<Point>& among) {
  const nlohmann::json* best = nullptr;
  for (const auto& p : plans) {
    const bool candidate = std::any_of(among.begin(), among.end(), [&](const Point& c) {
      return p["label"] == c.label && p["choice"] == nlohmann::json(c.choice);
    });
    if (!candidate || !p.contains("select_top1")) continue;
    const double top1 = p["select_top1"].get<double>(), loss = p["select_cross_entropy"].get<double>();
    if (!best || top1 > (*best)["select_top1"].get<double>() ||
        (top1 == (*best)["select_top1"].get<double>() && loss < (*best)["select_cross_entropy"].get<double>()))
      best = &p;
  }
  return best;
}

nlohmann::json leads_of(const nlohmann::json& records, const std::string& reference) {
  // Per plan, its runs' outcomes by seed.
  std::vector<std::pair<std::string, std::map<uint64_t, std::vector<uint8_t>>>> plans;
  for (const auto& runs : runs_by_plan(records)) {
    std::map<uint64_t, std::vector<uint8_t>> by_seed;
    for (const auto* r : runs)
      if (r->contains("outcomes"))
        by_seed[(*r)["seed"].get<uint64_t>()] =
            outcomes_from_hex((*r)["outcomes"].get<std::string>(), (*r)["after"]["predictions"].get<std::size_t>());
    if (!by_seed.empty()) plans.emplace_back((*runs[0])["label"].get<std::string>(), std::move(by_seed));
  }
  const auto ref = std::find_if(plans.begin(), plans.end(), [&](const auto& p) { return p.first == reference; });
  if (ref == plans.end()) return nlohmann::json::object();
  auto runs_of = [](const std::map<uint64_t, std::vector<uint8_t>>& by_seed) {
    std::vector<std::vector<uint8_t>> runs;
    for (const auto& kv : by_seed) runs.push_back(kv.second);
    return runs;
  };
  nlohmann::json leads = {{"plan", reference},
                          {"split", records[0]["split"]},  // records_of: all of one split
                          {"unit", "points of top-1"},
                          {"over", nlohmann::json::array()}};
  for (const auto& other : plans) {
    if (other.first == reference) continue;
    const PairedDifference d = paired_difference(runs_of(ref->second), runs_of(other.second));
    nlohmann::json lead = {{"against", other.first}, {"difference", d.difference * 100}, {"low", d.low * 100},
                           {"high", d.high * 100},   {"only_reference", d.only_a},       {"only_other", d.only_b}};
    nlohmann::json per_seed = nlohmann::json::array();
    for (const auto& [seed, mine] : ref->second)
      if (const auto theirs = other.second.find(seed); theirs != other.second.end())
        per_seed.push_back({{"seed", seed}, {"difference", paired_difference(mine, theirs->second).difference * 100}});
    if (per_seed.size() > 1) {
      std::vector<double> by_seed;
      for (const auto& p : per_seed) by_seed.push_back(p["difference"].get<double>());
      const MeanInterval over_seeds = t_interval(by_seed);
      lead["per_seed"] = per_seed;
      lead["seeds_low"] = over_seeds.low;
      lead["seeds_high"] = over_seeds.high;
    }
    leads["over"].push_back(std::move(lead));
  }
  return leads;
}

}  // namespace adze
