// adze search MODEL --target T --budget size=200KB --algo dp|greedy|evo|rl --data SPEC --out DIR: a per-layer
// plan (bits x N:M) with the least loss within a hardware budget, anytime and resumable, confirmed by real
// compress runs.
#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <set>
#include <sstream>

#include "cli/commands.h"
#include "cli/search_confirm.h"
#include "cli/space_sensitivity.h"
#include "compress/encoding_io.h"
#include "compress/frontend.h"
#include "compress/layer_table.h"
#include "compress/plan.h"
#include "core/error.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/progress.h"
#include "core/table.h"
#include "exporters/exporter.h"
#include "hardware/cost_model.h"
#include "search/budget.h"
#include "search/front_plot.h"
#include "search/measured_loss.h"
#include "search/search_state.h"
#include "search/searcher.h"
#include "search/sensitivity.h"

namespace adze::cli {
namespace {

struct SearchCliOptions {
  SpaceOptions space;
  std::string target, budget, algo = "dp", out, exporter, time_budget, pipeline;
  std::vector<std::string> algo_options;
  int64_t batch = 1;
  int64_t confirm = 1, confirm_seeds = 1, finetune_steps = 0, confirm_limit = 0, train_limit = 0;
  std::string confirm_split = "test", select_split = "val";
  std::vector<std::string> confirm_baselines;  ///< uniform plans also confirmed ("w4"), even over the budget
  bool resume = false, json = false;
};

std::string unit_of(Budget::Metric m) {
  switch (m) {
    case Budget::Metric::kSize:
      return "bytes";
    case Budget::Metric::kLatency:
      return "seconds";
    case Budget::Metric::kEnergy:
      return "joules";
    case Budget::Metric::kBits:
      return "bits per weight";
  }
  return "?";
}

// Per layer and option, the cost in the budget's metric: encoded bytes (size), encoded bits over all encoded
// layers' weights (bits), or the roofline's latency or energy on the target at `batch`.
Problem make_problem(const LayerTable& table, const std::vector<LayerOptions>& space, const SensitivityTable& s,
                     const Target& target, const Budget& budget, int64_t batch) {
  const auto roofline = cost_models().create("roofline", nlohmann::json::object(), "search");
  Problem p;
  p.budget = budget.value;
  int64_t layer_params = 0, weights = 0;
  for (const Layer& layer : table.layers) weights += layer.params;
  for (std::size_t l = 0; l < table.layers.size(); ++l) {
    const Layer& layer = table.layers[l];
    layer_params += layer.params + layer.bias_params;
    p.layers.push_back(layer.name);
    p.configs.push_back(space[l].configs);
    std::vector<double> loss, cost;
    for (const LayerConfig& c : space[l].configs) {
      const OptionImpact* impact = s.find(layer.name, c);
      if (!impact) throw Error(ErrorKind::kInternal, "search: no sensitivity for layer '" + layer.name + "'");
      loss.push_back(predicted_loss_increase(*impact));
      if (budget.metric == Budget::Metric::kSize) {
        cost.push_back(static_cast<double>(planned_bits(layer, c).total()) / 8.0 + layer.bias_params * 4.0);
      } else if (budget.metric == Budget::Metric::kBits) {
        cost.push_back(static_cast<double>(planned_bits(layer, c).total()) / static_cast<double>(weights));
      } else {
        const LayerCost lc = roofline->layer(target, layer, c, batch);
        cost.push_back(budget.metric == Budget::Metric::kLatency ? lc.latency_s : lc.energy_j);
      }
    }
    p.loss.push_back(std::move(loss));
    p.cost.push_back(std::move(cost));
  }
  if (budget.metric == Budget::Metric::kSize)
    p.fixed_cost = static_cast<double>(table.total_params - layer_params) * 4.0;
  return p;
}

nlohmann::json point_json(const Problem& p, const Point& pt) {
  nlohmann::json layers = nlohmann::json::object();
  for (std::size_t l = 0; l < p.layers.size(); ++l)
    layers[p.layers[l]] = config_label(p.configs[l][static_cast<std::size_t>(pt.choice[l])]);
  return {{"label", pt.label}, {"predicted_loss_increase", pt.loss}, {"cost", pt.cost}, {"layers", layers}};
}

std::string front_csv(const Problem& p, const std::vector<Point>& points) {
  std::ostringstream s;
  s.precision(10);
  s << "label,cost,predicted_loss_increase";
  for (const auto& l : p.layers) s << "," << l;
  s << "\n";
  for (const auto& pt : points) {
    s << pt.label << "," << pt.cost << "," << pt.loss;
    for (std::size_t l = 0; l < p.layers.size(); ++l)
      s << "," << config_label(p.configs[l][static_cast<std::size_t>(pt.choice[l])]);
    s << "\n";
  }
  return s.str();
}

std::string human_cost(Budget::Metric m, double v) {
  switch (m) {
    case Budget::Metric::kSize:
      return human_bytes(v);
    case Budget::Metric::kLatency:
      return human_seconds(v);
    case Budget::Metric::kEnergy:
      return fixed(v * 1e3, 4) + " mJ";
    case Budget::Metric::kBits:
      return fixed(v, 3) + " b/w";
  }
  return "?";
}

// "population=32" → {"population": 32}: a value that parses as JSON (numbers, true/false) is taken as such.
nlohmann::json parse_algo_options(const std::vector<std::string>& given) {
  nlohmann::json j = nlohmann::json::object();
  for (const auto& kv : given) {
    const auto eq = kv.find('=');
    if (eq == std::string::npos || eq == 0)
      throw Error(ErrorKind::kInvalidArgument, "--algo-option '" + kv + "': expected NAME=VALUE");
    const std::string value = kv.substr(eq + 1);
    const nlohmann::json parsed = nlohmann::json::parse(value, nullptr, false);
    j[kv.substr(0, eq)] = parsed.is_discarded() ? nlohmann::json(value) : parsed;
  }
  return j;
}

// The pipeline of the confirmation runs: --pipeline, else a one-shot projection (with activation calibration
// when activations are quantized) and --finetune-steps of STE fine-tuning distilled from the fp32 model.
Pipeline confirmation_pipeline(const SearchCliOptions& o) {
  if (!o.pipeline.empty()) return load_pipeline(o.pipeline);
  nlohmann::json passes = {"fold-bn", "sparsity.nm", "quantize.weights"};
  if (std::any_of(o.space.act_bits.begin(), o.space.act_bits.end(), [](int b) { return b > 0; }))
    passes.push_back({{"name", "quantize.calibrate"}, {"options", {{"method", "minmax"}, {"batches", 8}}}});
  if (o.finetune_steps > 0)
    passes.push_back(
        {{"name", "finetune.ste"}, {"options", {{"steps", o.finetune_steps}, {"lr", 1e-4}, {"distill", 0.5}}}});
  return parse_pipeline({{"passes", passes}},
                        "confirmation pipeline (--finetune-steps " + std::to_string(o.finetune_steps) + ")");
}

// Appends timestamped lines (seconds since the search began) to DIR/search.log.
class SearchLog {
 public:
  SearchLog(const std::string& path, std::chrono::steady_clock::time_point start)
      : out_(path, std::ios::app), start_(start) {}
  void operator()(const std::string& line) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    out_ << "[" << fixed(s, 1) << " s] " << line << "\n";
    out_.flush();
  }

 private:
  std::ofstream out_;
  std::chrono::steady_clock::time_point start_;
};

// The plans confirmed: the search's best ("searched") and --confirm - 1 runners-up (alternatives()), then the best
// uniform plan within the budget and each --confirm-baseline (checked before the search; confirmed even over the
// budget). None of the search's when it found no plan within the budget or --confirm is 0.
struct PlansToConfirm {
  std::vector<Point> plans;
  std::size_t searched = 0;  ///< the first this many are the search's
};

PlansToConfirm plans_to_confirm(const SearchCliOptions& o, const Problem& problem, const SearchResult& result,
                                const std::vector<Point>& baselines,
                                const std::function<double(const Choice&)>& measure, SearchLog& log) {
  PlansToConfirm to_confirm;
  std::vector<Point>& plans = to_confirm.plans;
  if (result.satisfiable && o.confirm > 0) {
    plans.push_back(result.best);
    plans.back().label = "searched";
    for (const Point& pt :
         alternatives(problem, result.best.choice, result.front, static_cast<std::size_t>(o.confirm - 1), measure))
      plans.push_back(pt);
    to_confirm.searched = plans.size();
    const Point* uniform = nullptr;
    for (const auto& pt : baselines)
      if (pt.cost <= problem.budget && (!uniform || pt.loss < uniform->loss)) uniform = &pt;
    if (uniform) plans.push_back(*uniform);
  }
  for (const auto& label : o.confirm_baselines) {
    const std::string name = "uniform " + label;
    const auto it = std::find_if(baselines.begin(), baselines.end(), [&](const Point& pt) { return pt.label == name; });
    if (std::any_of(plans.begin(), plans.end(), [&](const Point& pt) { return pt.label == name; })) continue;
    if (it == baselines.end())
      log("no uniform plan '" + label + "': the target or exporter leaves it out of some layer");
    else
      plans.push_back(*it);
  }
  return to_confirm;
}

// One lead of leads_of() for the log: "searched's lead over uniform w4: +0.30 points of top-1, 95% CI ...".
std::string lead_line(const nlohmann::json& l, const std::string& reference, const std::string& mean) {
  std::string seeds;
  for (const auto& p : l.value("per_seed", nlohmann::json::array()))
    seeds += (seeds.empty() ? "; by seed: " : ", ") + signed_fixed(p["difference"], 2);
  if (l.contains("seeds_low"))
    seeds += ", 95% CI of their mean " + signed_fixed(l["seeds_low"], 2) + " to " + signed_fixed(l["seeds_high"], 2);
  return reference + "'s " + mean + "lead over " + l["against"].get<std::string>() + ": " +
         signed_fixed(l["difference"], 2) + " points of top-1, 95% CI " + signed_fixed(l["low"], 2) + " to " +
         signed_fixed(l["high"], 2) + " (" + std::to_string(l["only_reference"].get<int64_t>()) + " samples " +
         reference + " gets right more often, " + std::to_string(l["only_other"].get<int64_t>()) + " the other" +
         seeds + ")";
}

// The confirmed plans (plans_of) as a table, with `reference`'s lead over each (leads_of).
void print_confirmations(std::ostream& out, const SearchCliOptions& o, const std::string& pipeline_source,
                         bool selecting, const nlohmann::json& plans, const nlohmann::json& leads,
                         const std::string& reference, const std::string& chosen) {
  out << "\nconfirmed by compress runs (" << pipeline_source << ", " << o.confirm_split << " split"
      << (o.confirm_seeds > 1 ? ", " + std::to_string(o.confirm_seeds) + " seeds each, means" : "") << "):\n";
  Table c;
  c.add_column("plan");
  if (selecting) c.add_column(o.select_split + " top-1", Table::Align::kRight);
  c.add_column(o.confirm_split + " top-1", Table::Align::kRight);
  if (o.confirm_seeds > 1) c.add_column("range over seeds", Table::Align::kRight);
  c.add_column("fp32 top-1", Table::Align::kRight);
  c.add_column("compressed", Table::Align::kRight);
  c.add_column("bits/weight", Table::Align::kRight);
  c.add_column(reference + "'s lead, points (95% CI)", Table::Align::kRight);
  for (const auto& p : plans) {
    std::vector<std::string> row = {p["label"].get<std::string>() + (p["label"] == chosen ? " (selected)" : "")};
    if (selecting) row.push_back(percent(p["select_top1"].get<double>(), 2));
    row.push_back(percent(p["top1"].get<double>(), 2));
    if (o.confirm_seeds > 1)
      row.push_back(percent(p["top1_min"].get<double>(), 2) + " to " + percent(p["top1_max"].get<double>(), 2));
    for (std::string cell :
         {percent(p["before_top1"].get<double>(), 2), human_bytes(p["compressed_bytes"].get<double>()),
          fixed(p["average_weight_bits"].get<double>(), 3)})
      row.push_back(cell);
    std::string cell;
    for (const auto& l : leads.value("over", nlohmann::json::array()))
      if (l["against"] == p["label"])
        cell = signed_fixed(l["difference"], 2) + " (" + signed_fixed(l["low"], 2) + " to " +
               signed_fixed(l["high"], 2) + ")";
    row.push_back(cell);
    c.add_row(row);
  }
  c.print(out);
}

void run_search(const SearchCliOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  // Everything the user handed us is checked before any work.
  const Budget budget = parse_budget(o.budget);
  const Target target = load_target(o.target);
  const nlohmann::json algo_options = resolve_options(
      searchers().get(o.algo, "--algo").options, parse_algo_options(o.algo_options), "--algo-option (" + o.algo + ")");
  const auto searcher = searchers().create(o.algo, algo_options, "--algo");
  std::unique_ptr<Exporter> exporter;
  if (!o.exporter.empty()) exporter = exporter_registry().create(o.exporter, nlohmann::json::object(), "--exporter");
  if (o.batch < 1) throw Error(ErrorKind::kInvalidArgument, "--batch " + std::to_string(o.batch) + ": must be >= 1");
  if (o.confirm < 0)
    throw Error(ErrorKind::kInvalidArgument, "--confirm " + std::to_string(o.confirm) + ": must be >= 0");
  if (o.confirm_seeds < 1)
    throw Error(ErrorKind::kInvalidArgument,
                "--confirm-seeds " + std::to_string(o.confirm_seeds) + ": must be >= 1 (runs of each confirmed plan)");
  if (o.finetune_steps < 0)
    throw Error(ErrorKind::kInvalidArgument, "--finetune-steps " + std::to_string(o.finetune_steps) + ": must be >= 0");
  if (o.confirm_limit < 0 || o.train_limit < 0)
    throw Error(ErrorKind::kInvalidArgument, "--confirm-limit and --train-limit must be 0 (all) or positive");
  check_split(o.confirm_split);
  check_split(o.select_split);
  if (o.confirm > 1 && o.select_split == o.confirm_split)
    throw Error(ErrorKind::kInvalidArgument, "--select-split " + o.select_split +
                                                 " is also --confirm-split: choosing a plan on the split that reports "
                                                 "its accuracy would overstate it; select on another split");
  const double time_budget = o.time_budget.empty() ? 0 : parse_duration(o.time_budget, "--time-budget");
  const Pipeline pipeline = confirmation_pipeline(o);
  if (!o.resume) require_new_output(o.out, "--out");
  if (o.resume) (void)resume_search_state(o.out, nlohmann::json::object());  // a search directory? (before any work)
  {  // each --confirm-baseline names a uniform plan of the space (a layer that cannot take its pattern goes dense)
    std::vector<std::string> known;
    std::string listed;
    for (const LayerConfig& c : spec_configs(space_spec(o.space.bits, o.space.nm, o.space.act_bits))) {
      known.push_back(config_label(c));
      listed += (listed.empty() ? "" : ", ") + known.back();
    }
    for (const auto& label : o.confirm_baselines)
      if (std::find(known.begin(), known.end(), label) == known.end())
        throw Error(ErrorKind::kInvalidArgument,
                    "--confirm-baseline '" + label + "': no such uniform plan in the space (known: " + listed + ")");
  }

  const MeasuredSpace m =
      measure_space(o.space, &target, exporter ? &exporter->contract() : nullptr, show_progress(o.json), false);
  const LayerTable& table = m.table;
  const SensitivityTable& sensitivity = m.sensitivity;
  const Problem problem = make_problem(table, m.space, sensitivity, target, budget, o.batch);
  const nlohmann::json identity = {{"sensitivity", sensitivity.key},
                                   {"target", target.name},
                                   {"target_figures", ContentHash().add(to_json(target).dump()).hex()},
                                   {"budget", std::string(to_string(budget.metric)) + "=" + fixed(budget.value, 6)},
                                   {"algo", o.algo},
                                   {"algo_options", algo_options},
                                   {"seed", o.space.seed},
                                   {"batch", o.batch},
                                   {"exporter", o.exporter}};
  SearchState state;
  if (o.resume) {
    state = resume_search_state(o.out, identity);
    check_records(state.confirmed, "--resume " + o.out + ": " + search_state_path(o.out));
  } else {
    state.identity = identity;
    std::filesystem::create_directories(o.out);
  }
  SearchLog log(o.out + "/search.log", started);
  log(std::string(o.resume ? "resumed" : "started") + ": " + m.model->source() + " on " + target.name + ", " +
      budget.to_string() + ", algo " + o.algo + " " + algo_options.dump() + ", seed " + std::to_string(o.space.seed) +
      "; " + std::to_string(state.measured.size()) + " measured choices on disk");
  log("sensitivity of " + std::to_string(m.data.size()) + " samples " +
      (m.cached ? "read from the cache" : "measured") + " (key " + sensitivity.key + ")");

  // Whole choices measured on the sensitivity subset, each once: what is on disk is answered from there.
  MeasuredLoss measured_loss(*m.model, table, m.data, problem, m.input.shape[0], sensitivity.base);
  int64_t replayed = 0, new_measurements = 0;
  std::set<Choice> on_disk;
  for (const auto& kv : state.measured) on_disk.insert(kv.first);
  auto measure = [&](const Choice& c) {
    if (const auto it = state.measured.find(c); it != state.measured.end()) {
      replayed += static_cast<int64_t>(on_disk.erase(c));  // a choice read back, counted once
      return it->second;
    }
    const double v = measured_loss(c);
    state.measured[c] = v;
    ++new_measurements;
    return v;
  };
  const bool measured = searcher->measures();
  const std::string loss_axis = measured ? "measured loss increase (nats, all layers compressed together)"
                                         : "predicted loss increase (nats, sum over layers)";
  auto baselines_of = [&] {
    std::vector<Point> b = uniform_baselines(problem);
    if (measured)
      for (auto& pt : b) pt.loss = measure(pt.choice);
    return b;
  };
  const std::string axis =
      std::string(to_string(budget.metric)) + " (" + unit_of(budget.metric) + ") on " + target.name;
  // The plan chosen among the confirmed ones by their accuracy on --select-split; until then, the search's best.
  std::optional<Point> chosen;
  // The confirmed plans (their runs averaged), and the written plan's top-1 lead over every other on the same
  // samples of --confirm-split (paired), once confirmed.
  nlohmann::json confirmed_plans = nlohmann::json::array(), leads = nlohmann::json::object();
  auto summary_of = [&](const SearchResult& r, const std::vector<Point>& baselines, bool done) {
    nlohmann::json j = {{"model", m.model->source()},
                        {"target", target.name},
                        {"budget",
                         {{"metric", to_string(budget.metric)},
                          {"value", budget.value},
                          {"unit", unit_of(budget.metric)},
                          {"text", budget.text}}},
                        {"algo", o.algo},
                        {"algo_options", algo_options},
                        {"seed", o.space.seed},
                        {"finished", done},
                        {"loss", measured ? "measured" : "predicted"},
                        {"satisfiable", r.satisfiable},
                        {"best", point_json(problem, r.best)},
                        {"front", nlohmann::json::array()},
                        {"baselines", nlohmann::json::array()},
                        {"evaluated", r.evaluated},
                        {"confirmed", state.confirmed},
                        {"sensitivity",
                         {{"key", sensitivity.key},
                          {"cached", m.cached},
                          {"samples", m.data.size()},
                          {"base", to_json(sensitivity.base)}}},
                        {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()}};
    for (const auto& pt : r.front) j["front"].push_back(point_json(problem, pt));
    for (const auto& pt : baselines) j["baselines"].push_back(point_json(problem, pt));
    if (!confirmed_plans.empty()) j["confirmed_plans"] = confirmed_plans;
    if (chosen) j["selected"] = point_json(problem, *chosen);
    if (!leads.empty()) j["leads"] = leads;
    return j;
  };
  // Every file replaced whole (write then rename): a kill leaves the last complete set.
  auto write_outputs = [&](const SearchResult& r, const std::vector<Point>& baselines, bool done) {
    ResolvedPlan plan;
    const Choice& written = chosen ? chosen->choice : r.best.choice;
    for (std::size_t l = 0; l < problem.layers.size(); ++l)
      plan.layers[problem.layers[l]] = problem.configs[l][static_cast<std::size_t>(written[l])];
    std::vector<Point> all = r.front;
    all.insert(all.end(), baselines.begin(), baselines.end());
    write_file_atomically(search_state_path(o.out), to_json(state).dump() + "\n");
    write_file_atomically(o.out + "/plan.json", to_json(plan).dump(2) + "\n");
    write_file_atomically(o.out + "/front.json", summary_of(r, baselines, done).dump(2) + "\n");
    write_file_atomically(o.out + "/front.csv", front_csv(problem, all));
    write_file_atomically(o.out + "/front.svg",
                          front_svg(r.front, baselines, r.best, budget.value, axis, loss_axis,
                                    m.model->source() + ": " + o.algo + " search, " + budget.to_string()));
    if (!confirmed_plans.empty()) {
      std::vector<ConfirmedMark> marks;
      for (const auto& p : confirmed_plans) {
        const std::string label = p["label"].get<std::string>();
        marks.push_back({label, problem.total_cost(p["choice"].get<Choice>()), p["top1"].get<double>(),
                         p["top1_min"].get<double>(), p["top1_max"].get<double>(), label.rfind("uniform ", 0) == 0,
                         label == (chosen ? chosen->label : "searched")});
      }
      write_file_atomically(
          o.out + "/confirmed.svg",
          confirmed_svg(marks, budget.value, confirmed_plans[0]["before_top1"].get<double>(), axis,
                        o.confirm_split + " top-1 after the confirmation pipeline (%)",
                        m.model->source() + ": confirmed plans, " + budget.to_string() + ", " + pipeline.source +
                            (o.confirm_seeds > 1 ? ", range over " + std::to_string(o.confirm_seeds) + " seeds" : "")));
    }
  };

  SearchOptions options;
  options.seed = o.space.seed;
  if (measured) options.measure = measure;
  ProgressBar bar("search (" + o.algo + ")", searcher->rounds(), show_progress(o.json));
  int64_t round = 0;
  const std::vector<Point> no_baselines;
  options.progress = [&](const SearchResult& r) {
    ++round;
    bar.update(round, "best " + fixed(r.best.loss, 4) + " at " + human_cost(budget.metric, r.best.cost));
    write_outputs(r, no_baselines, false);
    if (new_measurements > 0 || round == searcher->rounds())
      log("round " + std::to_string(round) + ": best loss " + fixed(r.best.loss, 5) + " at " +
          human_cost(budget.metric, r.best.cost) + ", " + std::to_string(r.evaluated) + " choices scored");
  };
  const auto deadline = started + std::chrono::duration<double>(time_budget);
  bool out_of_time = false;
  if (time_budget > 0) options.stop = [&] { return out_of_time = std::chrono::steady_clock::now() >= deadline; };
  const auto search_started = std::chrono::steady_clock::now();
  const SearchResult result = searcher->run(problem, options);
  bar.finish();
  const double search_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - search_started).count();
  const std::vector<Point> baselines = baselines_of();
  // Every algorithm's choice measured the same way, so that their plans compare.
  const Metrics best_metrics = measured_loss.metrics(result.best.choice);
  log(std::string(out_of_time ? "stopped by --time-budget" : "search done") + " in " + fixed(search_s, 1) + " s: " +
      std::to_string(result.evaluated) + " choices scored (" + std::to_string(new_measurements) + " measured now, " +
      std::to_string(replayed) + " answered from disk); best " + human_cost(budget.metric, result.best.cost) +
      ", loss increase " + fixed(result.best.loss, 5) + " " + (measured ? "measured" : "predicted") +
      ", measured on the subset: top-1 " + fixed(best_metrics.top1 * 100, 2) + "%");
  write_outputs(result, baselines, true);

  // Confirmation: each plan compressed for real by the pipeline and evaluated on --confirm-split. With runners-up,
  // the plan written is the one that does best on --select-split after the pipeline, which a loss measured before
  // fine-tuning cannot foresee.
  const PlansToConfirm to_confirm = plans_to_confirm(
      o, problem, result, baselines, measured ? std::function<double(const Choice&)>(measure) : nullptr, log);
  const std::vector<Point> searched(to_confirm.plans.begin(),
                                    to_confirm.plans.begin() + static_cast<std::ptrdiff_t>(to_confirm.searched));
  ConfirmSettings settings;
  settings.split = o.confirm_split;
  if (searched.size() > 1) settings.select_split = o.select_split;
  settings.limit = o.confirm_limit;
  settings.train_limit = o.train_limit;
  settings.seed = o.space.seed;
  settings.seeds = o.confirm_seeds;
  settings.progress = show_progress(o.json);
  confirm(problem, to_confirm.plans, pipeline, o.space, m, settings, state.confirmed,
          [&](const nlohmann::json& r, bool from_disk) {
            const std::string run =
                r["label"].get<std::string>() +
                (o.confirm_seeds > 1 ? " (seed " + std::to_string(r["seed"].get<uint64_t>()) + ")" : "");
            if (from_disk) return log("confirmation of " + run + " read from disk");
            confirmed_plans = plans_of(records_of(state.confirmed, pipeline, settings));  // front.json, confirmed.svg
            write_outputs(result, baselines, true);
            log("confirmed " + run + ": top-1 " + percent(r["after"]["top1"].get<double>(), 2) + " on " +
                o.confirm_split + " (fp32 " + percent(r["before"]["top1"].get<double>(), 2) + ")" +
                (r.contains("select") ? ", " + percent(r["select"]["top1"].get<double>(), 2) + " on " + o.select_split
                                      : "") +
                ", " + human_bytes(r["compressed_bytes"].get<double>()) + ", " +
                fixed(r["average_weight_bits"].get<double>(), 3) + " bits per weight, " +
                fixed(r["seconds"].get<double>(), 1) + " s");
          });
  // This run's confirmations; with runners-up, the one best on --select-split is written. The written plan's lead
  // over each other confirmation says whether a difference in top-1 is more than this split's noise.
  const nlohmann::json confirmed_now = records_of(state.confirmed, pipeline, settings);
  confirmed_plans = plans_of(confirmed_now);
  const std::string mean = o.confirm_seeds > 1 ? "mean " : "";
  if (searched.size() > 1) {
    if (const nlohmann::json* pick = selected(confirmed_plans, searched)) {
      for (const Point& pt : searched)
        if (pt.label == (*pick)["label"]) chosen = pt;
      log("selected " + chosen->label + " (" + mean + "top-1 " + percent((*pick)["select_top1"].get<double>(), 2) +
          " on " + o.select_split + "): written to plan.json");
    }
  }
  const std::string reference = chosen ? chosen->label : "searched";
  leads = leads_of(confirmed_now, reference);
  for (const auto& l : leads.value("over", nlohmann::json::array())) log(lead_line(l, reference, mean));
  if (!confirmed_now.empty()) write_outputs(result, baselines, true);
  log("finished");

  if (o.json) {
    std::cout << summary_of(result, baselines, true).dump(2) << "\n";
  } else {
    std::cout << "model " << m.model->source() << " on " << target.name << ", " << budget.to_string() << ", " << o.algo
              << " over " << table.layers.size() << " layers (sensitivity of " << m.data.size() << " samples"
              << (m.cached ? ", cached" : "") << ")\n\n";
    Table t;
    t.add_column("layer");
    t.add_column("config");
    t.add_column("predicted loss +", Table::Align::kRight);
    t.add_column(to_string(budget.metric), Table::Align::kRight);
    for (std::size_t l = 0; l < problem.layers.size(); ++l) {
      const auto o_index = static_cast<std::size_t>(result.best.choice[l]);
      t.add_row({problem.layers[l], config_label(problem.configs[l][o_index]), fixed(problem.loss[l][o_index], 4),
                 human_cost(budget.metric, problem.cost[l][o_index])});
    }
    t.add_row({});
    t.add_row(
        {"total", "", fixed(problem.total_loss(result.best.choice), 4), human_cost(budget.metric, result.best.cost)});
    t.print(std::cout);
    std::cout << "\nmeasured with every layer compressed at once: loss +"
              << fixed(best_metrics.cross_entropy - sensitivity.base.cross_entropy, 4) << ", top-1 "
              << percent(best_metrics.top1, 2) << " (fp32 " << percent(sensitivity.base.top1, 2) << ") on "
              << m.data.size() << " samples of " << o.space.split << "\n\nuniform baselines:\n";
    Table b;
    b.add_column("plan");
    b.add_column(std::string(measured ? "measured" : "predicted") + " loss +", Table::Align::kRight);
    b.add_column(to_string(budget.metric), Table::Align::kRight);
    b.add_column("within budget");
    for (const auto& pt : baselines)
      b.add_row(
          {pt.label, fixed(pt.loss, 4), human_cost(budget.metric, pt.cost), pt.cost <= budget.value ? "yes" : "no"});
    b.print(std::cout);
    if (!confirmed_plans.empty())
      print_confirmations(std::cout, o, pipeline.source, !settings.select_split.empty(), confirmed_plans, leads,
                          reference, chosen ? chosen->label : "");
    std::cout << "\nwrote " << o.out << "/plan.json, front.json, front.csv, front.svg, "
              << (confirmed_plans.empty() ? "" : "confirmed.svg, ") << "search.log (" << result.front.size()
              << " points on the front, search " << fixed(search_s, 1) << " s"
              << (out_of_time ? ", stopped by --time-budget" : "") << ")\n";
  }
  if (!result.satisfiable) {
    std::cerr << "adze: the budget " << budget.to_string() << " cannot be met: the closest plan ("
              << human_cost(budget.metric, result.best.cost) << ") is written to " << o.out << "\n";
    throw Unsatisfiable();
  }
}

}  // namespace

void setup_search(CLI::App& app) {
  auto o = std::make_shared<SearchCliOptions>();
  auto* sub = app.add_subcommand("search", "Find a per-layer plan with the least loss within a hardware budget");
  sub->footer(
      "Builds the search space (weight bits x N:M per layer, each legal for the layer, run by --target and, with\n"
      "--exporter, writable by that format), measures each option's loss increase on a calibration subset\n"
      "(adze sensitivity; cached), prices each option in the budget's metric (size: encoded bytes; bits: encoded\n"
      "bits per weight, metadata included; latency and energy: the roofline cost model of --target at --batch),\n"
      "and searches:\n"
      "  dp      the knapsack over the sensitivity table, exact up to a fine cost grid (HAWQ-V3's problem)\n"
      "  greedy  relaxes the most compressed plan step by step (NxMiFormer's heuristic)\n"
      "  evo     NSGA-II over whole plans, each measured with every layer compressed at once\n"
      "  rl      a HAQ-style DDPG agent (actor and critic in libtorch), rewarded by each measured plan\n"
      "dp and greedy predict a plan's loss as the sum of its layers' increases; evo and rl measure it, which\n"
      "sees how layers' errors compound. Options of an algorithm: --algo-option NAME=VALUE (adze search --algo\n"
      "evo --algo-option generations=50); see README: Search.\n\n"
      "Anytime: DIR/plan.json is the best plan so far from the first round on; --time-budget ends the search\n"
      "with it. Every measured plan is kept in DIR/search-state.json: --resume DIR after a kill replays the\n"
      "search from there (the same seed gives the same path) and goes on; a DIR searched with another model,\n"
      "data, space, target, budget, algorithm or seed is refused.\n\n"
      "Confirmation: the best plan and the best uniform plan within the budget (and each --confirm-baseline)\n"
      "are compressed for real (fold BatchNorm, N:M, quantize, --finetune-steps of STE fine-tuning distilled from\n"
      "the fp32 model, or --pipeline) and evaluated on --confirm-split. With --confirm N > 1, N - 1 runners-up\n"
      "join them (the front's points within the budget and the best plan's one-layer neighbours, by loss); these\n"
      "are also evaluated on --select-split (val: held out of fine-tuning), and the best there goes to plan.json.\n"
      "A loss measured before fine-tuning cannot see what fine-tuning recovers; this choice can, without looking\n"
      "at the split that reports. The written plan's top-1 lead over each other confirmed plan is reported with\n"
      "a paired 95% interval: one that holds 0 is a difference the split cannot tell from chance.\n"
      "--confirm-seeds K runs each confirmation K times, fine-tuning's data order drawn from seeds --seed to\n"
      "--seed + K - 1: accuracies are means over the runs, and the lead is over samples each averaged over the\n"
      "runs, so one fine-tune's luck weighs less.\n\n"
      "Writes DIR/plan.json (for adze compress --plan), front.json and front.csv (the Pareto front, the uniform\n"
      "baselines, the confirmations), front.svg (loss against cost), confirmed.svg (the confirmed plans' top-1\n"
      "against cost, baselines marked), search.log. Exit code 3 when no plan meets the budget: the closest plan is\n"
      "still written.\n\n"
      "Examples:\n"
      "  adze search fmnist-cnn --target cortex-m7 --budget size=150KB --data fmnist --out cnn-150k\n"
      "  adze search fmnist-cnn --target host --budget bits=3 --algo evo --finetune-steps 400 --data fmnist --out b3\n"
      "  adze search fmnist-cnn --target host --budget bits=4 --confirm 3 --finetune-steps 400 --confirm-baseline w4 "
      "\\\n"
      "      --data fmnist --out b4\n"
      "  adze search fortune-gpt --target a100 --budget latency=80us --algo greedy --data fortunes --out gpt-a100");
  add_space_options(sub, o->space);
  sub->add_option("--target", o->target, "hardware target (adze target list) or a target JSON file")->required();
  sub->add_option("--budget", o->budget, "latency=2ms, size=200KB, energy=1mJ or bits=4")->required();
  sub->add_option("--algo", o->algo, "dp, greedy, evo or rl")->capture_default_str();
  sub->add_option("--algo-option", o->algo_options, "NAME=VALUE for the algorithm (repeatable)");
  sub->add_option("--out", o->out, "output directory (must not exist, unless --resume)")->required();
  sub->add_flag("--resume", o->resume, "go on with the search in --out, reusing every plan measured there");
  sub->add_option("--time-budget", o->time_budget,
                  "end the search this long after the command started (90s, 10min, 2h)");
  sub->add_option("--batch", o->batch, "samples per inference, for latency and energy")->capture_default_str();
  sub->add_option("--exporter", o->exporter, "keep only what this format can write (adze exporters)");
  sub->add_option(
         "--confirm", o->confirm,
         "plans confirmed by a compress run: the best and its runners-up (0: none; > 1: choose on --select-split)")
      ->capture_default_str();
  sub->add_option(
         "--confirm-seeds", o->confirm_seeds,
         "runs of each confirmed plan, with seeds --seed, --seed + 1, ...: means, and leads averaged per sample")
      ->capture_default_str();
  sub->add_option("--finetune-steps", o->finetune_steps, "STE fine-tuning steps of a confirmation run")
      ->capture_default_str();
  sub->add_option("--pipeline", o->pipeline, "pipeline JSON of the confirmation runs (instead of --finetune-steps)");
  sub->add_option(
      "--confirm-baseline", o->confirm_baselines,
      "uniform plans also confirmed, even over the budget (w4, \"w3 2:4\"; the best uniform plan within the "
      "budget always is)");
  sub->add_option("--confirm-split", o->confirm_split, "split the confirmation runs are evaluated on")
      ->capture_default_str();
  sub->add_option("--select-split", o->select_split,
                  "split that chooses among the confirmed plans (--confirm > 1) after the pipeline")
      ->capture_default_str();
  sub->add_option("--confirm-limit", o->confirm_limit, "evaluate confirmations on at most N samples (0: all)")
      ->capture_default_str();
  sub->add_option("--train-limit", o->train_limit, "fine-tune and calibrate on at most N samples (0: all)")
      ->capture_default_str();
  sub->add_flag("--json", o->json, "print JSON");
  sub->callback([o] { run_search(*o); });
}

}  // namespace adze::cli
