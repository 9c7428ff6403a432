#include "search/confirm.h"

#include <algorithm>
#include <chrono>
#include <limits>
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

nlohmann::json to_json(const ConfirmRecord& r) {
  nlohmann::json j = {{"label", r.label},
                      {"choice", r.choice},
                      {"pipeline", r.pipeline},
                      {"split", r.split},
                      {"before", to_json(r.before)},
                      {"after", to_json(r.after)},
                      {"compressed_bytes", r.compressed_bytes},
                      {"average_weight_bits", r.average_weight_bits},
                      {"seconds", r.seconds}};
  if (r.seed) j["seed"] = *r.seed;
  if (r.outcomes) j["outcomes"] = *r.outcomes;
  if (r.select) {
    j["select_split"] = r.select_split;
    j["select"] = to_json(*r.select);
  }
  return j;
}

nlohmann::json to_json(const std::vector<ConfirmRecord>& records) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& r : records) j.push_back(to_json(r));
  return j;
}

std::vector<ConfirmRecord> confirm_records_from_json(const nlohmann::json& records, const std::string& where) {
  std::vector<ConfirmRecord> out;
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
                         [](const nlohmann::json& o) {
                           return o.is_number_integer() && o.get<int64_t>() >= 0 &&
                                  o.get<int64_t>() <= std::numeric_limits<int>::max();
                         }),
         "'choice' is not a list of option indices");
    need(!r.contains("seed") || r["seed"].is_number_unsigned(), "'seed' is not a non-negative integer");
    for (const char* f : {"compressed_bytes", "average_weight_bits", "seconds"})
      need(r.contains(f) && r[f].is_number(), std::string("'") + f + "' is not a number");
    auto metrics = [&](const char* f) {
      need(r.contains(f) && r[f].is_object(), std::string("'") + f + "' is not an object of metrics");
      const nlohmann::json& m = r[f];
      for (const char* k : {"top1", "cross_entropy"})
        need(m.contains(k) && m[k].is_number(), std::string("'") + f + "." + k + "' is not a number");
      need(m.contains("predictions") && m["predictions"].is_number_unsigned(),
           std::string("'") + f + ".predictions' is not a count");
      need(!m.contains("samples") || m["samples"].is_number_unsigned(),
           std::string("'") + f + ".samples' is not a count");
      need(!m.contains("task") || m["task"] == "classification" || m["task"] == "language-model",
           std::string("'") + f + ".task' is not classification or language-model");
      Metrics x;
      x.task = m.value("task", "classification") == "language-model" ? Task::kLanguageModel : Task::kClassification;
      x.predictions = m["predictions"].get<int64_t>();
      x.samples = m.value("samples", x.predictions);
      x.top1 = m["top1"].get<double>();
      x.cross_entropy = m["cross_entropy"].get<double>();
      return x;
    };
    ConfirmRecord c;
    c.label = r["label"].get<std::string>();
    c.choice = r["choice"].get<Choice>();
    c.pipeline = r["pipeline"].get<std::string>();
    c.split = r["split"].get<std::string>();
    if (r.contains("seed")) c.seed = r["seed"].get<uint64_t>();
    c.before = metrics("before");
    c.after = metrics("after");
    if (r.contains("select")) {
      need(r.contains("select_split") && r["select_split"].is_string(), "'select_split' is not a string");
      c.select_split = r["select_split"].get<std::string>();
      c.select = metrics("select");
    }
    if (r.contains("outcomes")) {
      need(r["outcomes"].is_string(), "'outcomes' is not a string");
      try {
        (void)outcomes_from_hex(r["outcomes"].get<std::string>(), static_cast<std::size_t>(c.after.predictions));
      } catch (const Error& e) {
        need(false, "'outcomes': " + std::string(e.what()));
      }
      c.outcomes = r["outcomes"].get<std::string>();
    }
    c.compressed_bytes = static_cast<int64_t>(r["compressed_bytes"].get<double>());
    c.average_weight_bits = r["average_weight_bits"].get<double>();
    c.seconds = r["seconds"].get<double>();
    out.push_back(std::move(c));
  }
  return out;
}

void confirm(const Problem& problem, const std::vector<Point>& plans, const Pipeline& pipeline,
             const SpaceOptions& space, const MeasuredSpace& m, const ConfirmSettings& settings,
             std::vector<ConfirmRecord>& records, const std::function<void(const ConfirmRecord&, bool)>& done) {
  const std::string pipeline_text = describe(pipeline);
  struct Pending {
    const Point* plan;
    uint64_t seed;
  };
  std::vector<Pending> runs;
  for (const auto& c : plans)
    for (int64_t k = 0; k < settings.seeds; ++k) runs.push_back({&c, settings.seed + static_cast<uint64_t>(k)});
  auto recorded = [&](const Pending& run) {
    return std::find_if(records.begin(), records.end(), [&](const ConfirmRecord& r) {
      return r.label == run.plan->label && r.choice == run.plan->choice && r.pipeline == pipeline_text &&
             r.split == settings.split && r.select_split == settings.select_split &&
             r.seed.value_or(settings.seed) == run.seed;
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
    ConfirmRecord record;
    record.label = c.label;
    record.choice = c.choice;
    record.pipeline = pipeline_text;
    record.split = settings.split;
    record.seed = pending.seed;
    record.before = run.context.metrics.at("before");
    record.after = run.context.metrics.at("after");
    record.outcomes = outcomes_to_hex(outcomes);
    if (select) {
      record.select_split = settings.select_split;
      record.select = evaluate(*run.model, *select, {run.model->traced_batch(), settings.progress});
    }
    record.compressed_bytes = run.report["size"]["compressed_bytes"].get<int64_t>();
    record.average_weight_bits = run.report["size"]["average_weight_bits"].get<double>();
    record.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    records.push_back(std::move(record));
    done(records.back(), false);
  }
}

std::vector<ConfirmRecord> records_of(const std::vector<ConfirmRecord>& records, const Pipeline& pipeline,
                                      const ConfirmSettings& settings) {
  const std::string pipeline_text = describe(pipeline);
  std::vector<ConfirmRecord> out;
  for (const auto& r : records) {
    const uint64_t seed = r.seed.value_or(settings.seed);
    if (r.pipeline == pipeline_text && r.split == settings.split && r.select_split == settings.select_split &&
        seed >= settings.seed && seed - settings.seed < static_cast<uint64_t>(settings.seeds)) {
      out.push_back(r);
      out.back().seed = seed;
    }
  }
  return out;
}

namespace {

// `records` by plan label, in the order of each label's first record.
std::vector<std::vector<const ConfirmRecord*>> runs_by_plan(const std::vector<ConfirmRecord>& records) {
  std::vector<std::vector<const ConfirmRecord*>> plans;
  for (const auto& r : records) {
    auto plan = std::find_if(plans.begin(), plans.end(), [&](const auto& p) { return p[0]->label == r.label; });
    if (plan == plans.end()) plan = plans.insert(plans.end(), std::vector<const ConfirmRecord*>{});
    plan->push_back(&r);
  }
  return plans;
}

// The mean over `runs` of what `of` reads from each.
template <typename F>
double mean_of(const std::vector<const ConfirmRecord*>& runs, F of) {
  double sum = 0;
  for (const auto* r : runs) sum += of(*r);
  return sum / static_cast<double>(runs.size());
}

}  // namespace

nlohmann::json to_json(const ConfirmedPlan& p) {
  nlohmann::json j = {{"label", p.label},
                      {"choice", p.choice},
                      {"runs", p.seeds.size()},
                      {"seeds", p.seeds},
                      {"before_top1", p.before_top1},
                      {"top1", p.top1},
                      {"top1_min", p.top1_min},
                      {"top1_max", p.top1_max},
                      {"compressed_bytes", p.compressed_bytes},
                      {"average_weight_bits", p.average_weight_bits},
                      {"seconds", p.seconds}};
  if (p.select_top1) {
    j["select_top1"] = *p.select_top1;
    j["select_cross_entropy"] = *p.select_cross_entropy;
  }
  return j;
}

nlohmann::json to_json(const std::vector<ConfirmedPlan>& plans) {
  nlohmann::json j = nlohmann::json::array();
  for (const auto& p : plans) j.push_back(to_json(p));
  return j;
}

std::vector<ConfirmedPlan> plans_of(const std::vector<ConfirmRecord>& records) {
  std::vector<ConfirmedPlan> plans;
  for (const auto& runs : runs_by_plan(records)) {
    const ConfirmRecord& first = *runs[0];
    ConfirmedPlan p;
    p.label = first.label;
    p.choice = first.choice;
    p.top1_min = 1;
    for (const auto* r : runs) {
      p.seeds.push_back(r->seed.value_or(0));
      p.top1_min = std::min(p.top1_min, r->after.top1);
      p.top1_max = std::max(p.top1_max, r->after.top1);
      p.seconds += r->seconds;
    }
    p.before_top1 = first.before.top1;
    p.top1 = mean_of(runs, [](const ConfirmRecord& r) { return r.after.top1; });
    p.compressed_bytes = first.compressed_bytes;
    p.average_weight_bits = first.average_weight_bits;
    if (first.select) {  // records_of keeps the runs of one selection split: all have it
      p.select_top1 = mean_of(runs, [](const ConfirmRecord& r) { return r.select->top1; });
      p.select_cross_entropy = mean_of(runs, [](const ConfirmRecord& r) { return r.select->cross_entropy; });
    }
    plans.push_back(std::move(p));
  }
  return plans;
}

const ConfirmedPlan* selected(const std::vector<ConfirmedPlan>& plans, const std::vector<Point>& among) {
  const ConfirmedPlan* best = nullptr;
  for (const auto& p : plans) {
    const bool candidate = std::any_of(among.begin(), among.end(),
                                       [&](const Point& c) { return p.label == c.label && p.choice == c.choice; });
    if (!candidate || !p.select_top1) continue;
    if (!best || *p.select_top1 > *best->select_top1 ||
        (*p.select_top1 == *best->select_top1 && *p.select_cross_entropy < *best->select_cross_entropy))
      best = &p;
  }
  return best;
}

nlohmann::json to_json(const Leads& leads) {
  if (leads.empty()) return nlohmann::json::object();
  nlohmann::json over = nlohmann::json::array();
  for (const Lead& l : leads.over) {
    nlohmann::json lead = {{"against", l.against}, {"difference", l.difference},         {"low", l.low},
                           {"high", l.high},       {"only_reference", l.only_reference}, {"only_other", l.only_other}};
    if (!l.per_seed.empty()) {
      nlohmann::json per_seed = nlohmann::json::array();
      for (const auto& [seed, difference] : l.per_seed)
        per_seed.push_back({{"seed", seed}, {"difference", difference}});
      lead["per_seed"] = per_seed;
      lead["seeds_low"] = l.seeds_low;
      lead["seeds_high"] = l.seeds_high;
    }
    over.push_back(std::move(lead));
  }
  return {{"plan", leads.plan}, {"split", leads.split}, {"unit", "points of top-1"}, {"over", over}};
}

Leads leads_of(const std::vector<ConfirmRecord>& records, const std::string& reference) {
  // Per plan, its runs' outcomes by seed.
  std::vector<std::pair<std::string, std::map<uint64_t, std::vector<uint8_t>>>> plans;
  for (const auto& runs : runs_by_plan(records)) {
    std::map<uint64_t, std::vector<uint8_t>> by_seed;
    for (const auto* r : runs)
      if (r->outcomes)
        by_seed[r->seed.value_or(0)] = outcomes_from_hex(*r->outcomes, static_cast<std::size_t>(r->after.predictions));
    if (!by_seed.empty()) plans.emplace_back(runs[0]->label, std::move(by_seed));
  }
  const auto ref = std::find_if(plans.begin(), plans.end(), [&](const auto& p) { return p.first == reference; });
  if (ref == plans.end()) return {};
  auto runs_of = [](const std::map<uint64_t, std::vector<uint8_t>>& by_seed) {
    std::vector<std::vector<uint8_t>> runs;
    for (const auto& kv : by_seed) runs.push_back(kv.second);
    return runs;
  };
  Leads leads;
  leads.plan = reference;
  leads.split = records[0].split;  // records_of: all of one split
  for (const auto& other : plans) {
    if (other.first == reference) continue;
    const PairedDifference d = paired_difference(runs_of(ref->second), runs_of(other.second));
    Lead lead;
    lead.against = other.first;
    lead.difference = d.difference * 100;
    lead.low = d.low * 100;
    lead.high = d.high * 100;
    lead.only_reference = d.only_a;
    lead.only_other = d.only_b;
    std::vector<std::pair<uint64_t, double>> per_seed;
    for (const auto& [seed, mine] : ref->second)
      if (const auto theirs = other.second.find(seed); theirs != other.second.end())
        per_seed.emplace_back(seed, paired_difference(mine, theirs->second).difference * 100);
    if (per_seed.size() > 1) {
      std::vector<double> by_seed;
      for (const auto& p : per_seed) by_seed.push_back(p.second);
      const MeanInterval over_seeds = t_interval(by_seed);
      lead.per_seed = per_seed;
      lead.seeds_low = over_seeds.low;
      lead.seeds_high = over_seeds.high;
    }
    leads.over.push_back(std::move(lead));
  }
  return leads;
}

}  // namespace adze
