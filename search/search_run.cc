#include "search/search_run.h"

#include <algorithm>
#include <chrono>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "compress/encoding_io.h"
#include "compress/plan.h"
#include "core/error.h"
#include "core/files.h"
#include "core/hash.h"
#include "core/progress.h"
#include "core/table.h"
#include "exporters/exporter.h"
#include "hardware/cost_model.h"
#include "search/between_layers.h"
#include "search/front_plot.h"
#include "search/measured_loss.h"
#include "search/search_state.h"

namespace adze {

Pipeline confirmation_pipeline(const std::vector<int>& act_bits, int64_t finetune_steps) {
  nlohmann::json passes = {"fold-bn", "sparsity.nm", "quantize.weights"};
  if (std::any_of(act_bits.begin(), act_bits.end(), [](int b) { return b > 0; }))
    passes.push_back({{"name", "quantize.calibrate"}, {"options", {{"method", "minmax"}, {"batches", 8}}}});
  if (finetune_steps > 0)
    passes.push_back(
        {{"name", "finetune.ste"}, {"options", {{"steps", finetune_steps}, {"lr", 1e-4}, {"distill", 0.5}}}});
  return parse_pipeline({{"passes", passes}},
                        "confirmation pipeline (--finetune-steps " + std::to_string(finetune_steps) + ")");
}

namespace {

// Per layer and option, the cost in the budget's metric: encoded bytes (size), encoded bits over all encoded
// layers' weights (bits), or the cost model's latency or energy on the target at `batch`.
Problem make_problem(const LayerTable& table, const std::vector<LayerOptions>& space, const SensitivityTable& s,
                     const CostModel& cost_model, const Target& target, const Budget& budget, int64_t batch) {
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
        cost.push_back(planned_layer_bytes(layer, c));
      } else if (budget.metric == Budget::Metric::kBits) {
        cost.push_back(static_cast<double>(planned_bits(layer, c).total()) / static_cast<double>(weights));
      } else {
        const LayerCost lc = cost_model.layer(target, layer, c, batch);
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

// Appends timestamped lines (seconds since the search began) to DIR/search.log, and hands each to `echo`.
class SearchLog {
 public:
  SearchLog(const std::string& path, std::chrono::steady_clock::time_point start,
            std::function<void(const std::string&)> echo)
      : out_(path, std::ios::app), start_(start), echo_(std::move(echo)) {}
  void operator()(const std::string& line) {
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - start_).count();
    out_ << "[" << fixed(s, 1) << " s] " << line << "\n";
    out_.flush();
    if (echo_) echo_(line);
  }

 private:
  std::ofstream out_;
  std::chrono::steady_clock::time_point start_;
  std::function<void(const std::string&)> echo_;
};

// Everything the caller handed over is checked before any work.
void check_options(const SearchRunOptions& o) {
  if (o.batch < 1) throw Error(ErrorKind::kInvalidArgument, "--batch " + std::to_string(o.batch) + ": must be >= 1");
  if (o.confirm < 0)
    throw Error(ErrorKind::kInvalidArgument, "--confirm " + std::to_string(o.confirm) + ": must be >= 0");
  const ConfirmSettings& c = o.confirmation;
  if (c.seeds < 1)
    throw Error(ErrorKind::kInvalidArgument,
                "--confirm-seeds " + std::to_string(c.seeds) + ": must be >= 1 (runs of each confirmed plan)");
  if (c.limit < 0 || c.train_limit < 0)
    throw Error(ErrorKind::kInvalidArgument, "--confirm-limit and --train-limit must be 0 (all) or positive");
  check_split(c.split);
  if (o.confirm > 1 && c.select_split.empty())
    throw Error(ErrorKind::kInvalidArgument,
                "--select-split: needed to choose among --confirm " + std::to_string(o.confirm) + " plans");
  if (!c.select_split.empty()) check_split(c.select_split);
  if (o.confirm > 1 && c.select_split == c.split)
    throw Error(ErrorKind::kInvalidArgument, "--select-split " + c.select_split +
                                                 " is also --confirm-split: choosing a plan on the split that reports "
                                                 "its accuracy would overstate it; select on another split");
  if (!(o.time_budget_s >= 0)) throw Error(ErrorKind::kInvalidArgument, "--time-budget must be 0 (none) or positive");
  if (!o.resume) require_new_output(o.out, "--out");
  if (o.resume) (void)resume_search_state(o.out, nlohmann::json::object());  // a search directory? (before any work)
  // Each confirm baseline names a uniform plan of the space (a layer that cannot take its pattern goes dense).
  std::vector<std::string> known;
  std::string listed;
  for (const LayerConfig& c : spec_configs(space_spec(o.space.bits, o.space.nm, o.space.act_bits, o.space.decompose))) {
    known.push_back(config_label(c));
    listed += (listed.empty() ? "" : ", ") + known.back();
  }
  for (const auto& label : o.confirm_baselines)
    if (std::find(known.begin(), known.end(), label) == known.end())
      throw Error(ErrorKind::kInvalidArgument,
                  "--confirm-baseline '" + label + "': no such uniform plan in the space (known: " + listed + ")");
  for (const auto& path : o.confirm_plans) (void)load_plan(path);  // readable, and a plan (its layers: later)
}

// A plan file as a point of the problem: each layer's config as the plan resolves it must be one of the layer's
// options here (a plan another search wrote over the same bits, N:M and activation widths is). Confirmed even
// over the budget, as the confirm baselines are.
Point plan_point(const std::string& path, const Problem& problem, const LayerTable& table) {
  const ResolvedPlan resolved = resolve_plan(load_plan(path), table, path);
  Point pt;
  pt.label = "plan " + path;
  for (std::size_t l = 0; l < problem.layers.size(); ++l) {
    const LayerConfig& config = resolved.layers.at(problem.layers[l]);
    const std::vector<LayerConfig>& options = problem.configs[l];
    const auto it = std::find(options.begin(), options.end(), config);
    if (it == options.end()) {
      std::string known;
      for (const LayerConfig& c : options) known += (known.empty() ? "" : ", ") + config_label(c);
      throw Error(ErrorKind::kInvalidArgument, "--confirm-plan " + path + ": layer '" + problem.layers[l] + "' is " +
                                                   config_label(config) +
                                                   " there, not an option of this search's space (" + known + ")");
    }
    pt.choice.push_back(static_cast<int>(it - options.begin()));
  }
  pt.cost = problem.total_cost(pt.choice);
  pt.loss = problem.total_loss(pt.choice);
  return pt;
}

// The plans confirmed: the search's best ("searched") and confirm - 1 runners-up (alternatives()), then the best
// uniform plan within the budget, each confirm baseline (checked before the search; confirmed even over the
// budget) and each confirm plan. None of the search's when it found no plan within the budget or confirm is 0.
struct PlansToConfirm {
  std::vector<Point> plans;
  std::size_t searched = 0;  ///< the first this many are the search's
};

PlansToConfirm plans_to_confirm(const SearchRunOptions& o, const Problem& problem, const SearchResult& result,
                                const std::vector<Point>& baselines, const std::vector<Point>& plan_points,
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
  for (Point pt : plan_points) {
    if (measure) pt.loss = measure(pt.choice);
    plans.push_back(std::move(pt));
  }
  return to_confirm;
}

// One lead of leads_of() for the log: "searched's lead over uniform w4: +0.30 points of top-1, 95% CI ...".
std::string lead_line(const Lead& l, const std::string& reference, const std::string& mean) {
  std::string seeds;
  for (const auto& p : l.per_seed) seeds += (seeds.empty() ? "; by seed: " : ", ") + signed_fixed(p.second, 2);
  if (!l.per_seed.empty())
    seeds += ", 95% CI of their mean " + signed_fixed(l.seeds_low, 2) + " to " + signed_fixed(l.seeds_high, 2);
  return reference + "'s " + mean + "lead over " + l.against + ": " + signed_fixed(l.difference, 2) +
         " points of top-1, 95% CI " + signed_fixed(l.low, 2) + " to " + signed_fixed(l.high, 2) + " (" +
         std::to_string(l.only_reference) + " samples " + reference + " gets right more often, " +
         std::to_string(l.only_other) + " the other" + seeds + ")";
}

}  // namespace

const std::string& SearchRun::written() const {
  static const std::string searched = "searched";
  return chosen ? chosen->label : searched;
}

SearchRun run_search(const SearchRunOptions& o, const std::function<void(const std::string&)>& echo) {
  const auto started = std::chrono::steady_clock::now();
  check_options(o);
  const Budget& budget = o.budget;
  const Target& target = o.target;
  const nlohmann::json algo_options =
      resolve_options(searchers().get(o.algo, "--algo").options, o.algo_options, "--algo-option (" + o.algo + ")");
  const auto searcher = searchers().create(o.algo, algo_options, "--algo");
  const auto cost_model = cost_models().create(o.cost_model, nlohmann::json::object(), "--cost-model");
  std::unique_ptr<Exporter> exporter;
  if (!o.exporter.empty()) exporter = exporter_registry().create(o.exporter, nlohmann::json::object(), "--exporter");
  const Pipeline& pipeline = o.pipeline;

  SearchRun run;
  run.space = measure_space(o.space, &target, exporter ? &exporter->contract() : nullptr, o.progress, false);
  const MeasuredSpace& m = run.space;
  const SensitivityTable& sensitivity = m.sensitivity;
  run.problem = make_problem(m.table, m.space, sensitivity, *cost_model, target, budget, o.batch);
  // The measured cost model times layers on this machine; what runs between them is timed once, here.
  const bool between = budget.metric == Budget::Metric::kLatency && o.cost_model == "measured";
  std::string between_failed;  // a model the packed runtime cannot run: priced by its layers alone
  if (between) try {
      run.problem.fixed_cost = seconds_between_layers(m.path, m.input, o.batch, 100);
    } catch (const std::exception& e) {
      between_failed = first_line_of(e);
    }
  const Problem& problem = run.problem;
  std::vector<Point> plan_points;  // --confirm-plan, placed in this space before the search runs
  for (const auto& path : o.confirm_plans) plan_points.push_back(plan_point(path, problem, m.table));
  nlohmann::json identity = {{"sensitivity", sensitivity.key},
                             {"target", target.name},
                             {"target_figures", ContentHash().add(to_json(target).dump()).hex()},
                             {"budget", std::string(to_string(budget.metric)) + "=" + fixed(budget.value, 6)},
                             {"algo", o.algo},
                             {"algo_options", algo_options},
                             {"seed", o.space.seed},
                             {"batch", o.batch},
                             {"exporter", o.exporter}};
  // A latency or energy search by another cost model prices differently; the roofline's identity is as before.
  if (o.cost_model != "roofline") identity["cost_model"] = o.cost_model;
  SearchState state;
  std::vector<ConfirmRecord> records;  // the confirmations on disk and done now (state.confirmed when written)
  if (o.resume) {
    state = resume_search_state(o.out, identity);
    records = confirm_records_from_json(state.confirmed, "--resume " + o.out + ": " + search_state_path(o.out));
  } else {
    state.identity = identity;
    std::filesystem::create_directories(o.out);
  }
  SearchLog log(o.out + "/search.log", started, echo);
  log(std::string(o.resume ? "resumed" : "started") + ": " + m.model->source() + " on " + target.name + ", " +
      budget.to_string() + ", algo " + o.algo + " " + algo_options.dump() + ", seed " + std::to_string(o.space.seed) +
      "; " + std::to_string(state.measured.size()) + " measured choices on disk");
  if (between && between_failed.empty())
    log("latency between the layers (the packed runtime, the model with 8-bit weights): " +
        human_cost(budget.metric, problem.fixed_cost) + ", added to every plan's");
  if (!between_failed.empty())
    log("latency between the layers not timed (" + between_failed + "): plans are priced by their layers alone");
  log("sensitivity of " + std::to_string(m.data.size()) + " samples " +
      (m.cached ? "read from the cache" : "measured") + " (key " + sensitivity.key + ")");

  // Whole choices measured on the sensitivity subset, each once: what is on disk is answered from there.
  MeasuredLoss measured_loss(*m.model, m.table, m.data, problem, m.input.shape[0], sensitivity.base);
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
  run.measured = searcher->measures();
  const bool measured = run.measured;
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
  const ConfirmSettings& settings_in = o.confirmation;
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
    if (o.cost_model != "roofline") j["cost_model"] = o.cost_model;
    for (const auto& pt : r.front) j["front"].push_back(point_json(problem, pt));
    for (const auto& pt : baselines) j["baselines"].push_back(point_json(problem, pt));
    if (!run.confirmed_plans.empty()) j["confirmed_plans"] = to_json(run.confirmed_plans);
    if (run.chosen) j["selected"] = point_json(problem, *run.chosen);
    if (!run.leads.empty()) j["leads"] = to_json(run.leads);
    return j;
  };
  // Every file replaced whole (write then rename): a kill leaves the last complete set.
  auto write_outputs = [&](const SearchResult& r, const std::vector<Point>& baselines, bool done) {
    ResolvedPlan plan;
    const Choice& written = run.chosen ? run.chosen->choice : r.best.choice;
    for (std::size_t l = 0; l < problem.layers.size(); ++l)
      plan.layers[problem.layers[l]] = problem.configs[l][static_cast<std::size_t>(written[l])];
    std::vector<Point> all = r.front;
    all.insert(all.end(), baselines.begin(), baselines.end());
    state.confirmed = to_json(records);  // the file's form of the records, made once per write
    run.summary = summary_of(r, baselines, done);
    write_file_atomically(search_state_path(o.out), to_json(state).dump() + "\n");
    write_file_atomically(o.out + "/plan.json", to_json(plan).dump(2) + "\n");
    write_file_atomically(o.out + "/front.json", run.summary.dump(2) + "\n");
    write_file_atomically(o.out + "/front.csv", front_csv(problem, all));
    write_file_atomically(o.out + "/front.svg",
                          front_svg(r.front, baselines, r.best, budget.value, axis, loss_axis,
                                    m.model->source() + ": " + o.algo + " search, " + budget.to_string()));
    if (!run.confirmed_plans.empty()) {
      std::vector<ConfirmedMark> marks;
      for (const auto& p : run.confirmed_plans)
        marks.push_back({p.label, problem.total_cost(p.choice), p.top1, p.top1_min, p.top1_max,
                         p.label.rfind("uniform ", 0) == 0, p.label == run.written()});
      write_file_atomically(
          o.out + "/confirmed.svg",
          confirmed_svg(
              marks, budget.value, run.confirmed_plans[0].before_top1, axis,
              settings_in.split + " top-1 after the confirmation pipeline (%)",
              m.model->source() + ": confirmed plans, " + budget.to_string() + ", " + pipeline.source +
                  (settings_in.seeds > 1 ? ", range over " + std::to_string(settings_in.seeds) + " seeds" : "")));
    }
  };

  SearchOptions options;
  options.seed = o.space.seed;
  if (measured) options.measure = measure;
  ProgressBar bar("search (" + o.algo + ")", searcher->rounds(), o.progress);
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
  const auto deadline = started + std::chrono::duration<double>(o.time_budget_s);
  if (o.time_budget_s > 0)
    options.stop = [&] { return run.out_of_time = std::chrono::steady_clock::now() >= deadline; };
  const auto search_started = std::chrono::steady_clock::now();
  run.result = searcher->run(problem, options);
  const SearchResult& result = run.result;
  bar.finish();
  run.search_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - search_started).count();
  run.baselines = baselines_of();
  const std::vector<Point>& baselines = run.baselines;
  // Every algorithm's choice measured the same way, so that their plans compare.
  run.best_metrics = measured_loss.metrics(result.best.choice);
  log(std::string(run.out_of_time ? "stopped by --time-budget" : "search done") + " in " +
      fixed(run.search_seconds, 1) + " s: " + std::to_string(result.evaluated) + " choices scored (" +
      std::to_string(new_measurements) + " measured now, " + std::to_string(replayed) + " answered from disk); best " +
      human_cost(budget.metric, result.best.cost) + ", loss increase " + fixed(result.best.loss, 5) + " " +
      (measured ? "measured" : "predicted") + ", measured on the subset: top-1 " +
      fixed(run.best_metrics.top1 * 100, 2) + "%");
  write_outputs(result, baselines, true);

  // Confirmation: each plan compressed for real by the pipeline and evaluated on the confirmation split. With
  // runners-up, the plan written is the one that does best on the selection split after the pipeline, which a
  // loss measured before fine-tuning cannot foresee.
  const PlansToConfirm to_confirm =
      plans_to_confirm(o, problem, result, baselines, plan_points,
                       measured ? std::function<double(const Choice&)>(measure) : nullptr, log);
  const std::vector<Point> searched(to_confirm.plans.begin(),
                                    to_confirm.plans.begin() + static_cast<std::ptrdiff_t>(to_confirm.searched));
  ConfirmSettings settings = settings_in;
  run.selecting = searched.size() > 1;
  if (!run.selecting) settings.select_split.clear();
  settings.seed = o.space.seed;
  settings.progress = o.progress;
  confirm(problem, to_confirm.plans, pipeline, o.space, m, settings, records,
          [&](const ConfirmRecord& r, bool from_disk) {
            const std::string label =
                r.label + (settings.seeds > 1 ? " (seed " + std::to_string(r.seed.value_or(settings.seed)) + ")" : "");
            if (from_disk) return log("confirmation of " + label + " read from disk");
            run.confirmed_plans = plans_of(records_of(records, pipeline, settings));  // front.json, svg
            write_outputs(result, baselines, true);
            log("confirmed " + label + ": top-1 " + percent(r.after.top1, 2) + " on " + settings.split + " (fp32 " +
                percent(r.before.top1, 2) + ")" +
                (r.select ? ", " + percent(r.select->top1, 2) + " on " + settings.select_split : "") + ", " +
                human_bytes(static_cast<double>(r.compressed_bytes)) + ", " + fixed(r.average_weight_bits, 3) +
                " bits per weight, " + fixed(r.seconds, 1) + " s");
          });
  // This run's confirmations; with runners-up, the one best on the selection split is written. The written
  // plan's lead over each other confirmation says whether a difference in top-1 is more than this split's noise.
  const std::vector<ConfirmRecord> confirmed_now = records_of(records, pipeline, settings);
  run.confirmed_plans = plans_of(confirmed_now);
  const std::string mean = settings.seeds > 1 ? "mean " : "";
  if (searched.size() > 1) {
    if (const ConfirmedPlan* pick = selected(run.confirmed_plans, searched)) {
      for (const Point& pt : searched)
        if (pt.label == pick->label) run.chosen = pt;
      log("selected " + run.chosen->label + " (" + mean + "top-1 " + percent(*pick->select_top1, 2) + " on " +
          settings.select_split + "): written to plan.json");
    }
  }
  run.leads = leads_of(confirmed_now, run.written());
  for (const Lead& l : run.leads.over) log(lead_line(l, run.written(), mean));
  if (!confirmed_now.empty()) write_outputs(result, baselines, true);
  log("finished");
  return run;
}

}  // namespace adze
