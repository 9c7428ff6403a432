// adze search MODEL --target T --budget size=200KB --algo greedy|dp --data SPEC --out DIR: a per-layer plan
// (bits x N:M) with the least predicted loss within a hardware budget.
#include <chrono>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>
#include <sstream>

#include "cli/commands.h"
#include "cli/space_sensitivity.h"
#include "compress/encoding_io.h"
#include "compress/frontend.h"
#include "compress/layer_table.h"
#include "compress/plan.h"
#include "core/error.h"
#include "core/files.h"
#include "core/table.h"
#include "exporters/exporter.h"
#include "hardware/cost_model.h"
#include "search/budget.h"
#include "search/front_plot.h"
#include "search/searcher.h"
#include "search/sensitivity.h"

namespace adze::cli {
namespace {

struct SearchCliOptions {
  SpaceOptions space;
  std::string target, budget, algo = "dp", out, exporter;
  int64_t batch = 1;
  bool json = false;
};

std::string unit_of(Budget::Metric m) {
  return m == Budget::Metric::kSize ? "bytes" : m == Budget::Metric::kLatency ? "seconds" : "joules";
}

// Per layer and option, the cost in the budget's metric: encoded bytes (size), or the roofline's latency or
// energy on the target at `batch`.
Problem make_problem(const LayerTable& table, const std::vector<LayerOptions>& space, const SensitivityTable& s,
                     const Target& target, const Budget& budget, int64_t batch) {
  const auto roofline = cost_models().create("roofline", nlohmann::json::object(), "search");
  Problem p;
  p.budget = budget.value;
  int64_t layer_params = 0;
  for (std::size_t l = 0; l < table.layers.size(); ++l) {
    const Layer& layer = table.layers[l];
    layer_params += layer.params + layer.bias_params;
    p.layers.push_back(layer.name);
    p.configs.push_back(space[l].configs);
    std::vector<double> loss, cost;
    for (const LayerConfig& c : space[l].configs) {
      const OptionImpact* impact = s.find(layer.name, c);
      if (!impact) throw Error(ErrorKind::kInternal, "search: no sensitivity for layer '" + layer.name + "'");
      loss.push_back(std::max(0.0, impact->loss_delta));  // a negative delta is measurement noise, not a gain
      if (budget.metric == Budget::Metric::kSize) {
        cost.push_back(static_cast<double>(planned_bits(layer, c).total()) / 8.0 + layer.bias_params * 4.0);
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
  if (m == Budget::Metric::kSize) return human_bytes(v);
  if (m == Budget::Metric::kLatency) return human_seconds(v);
  return fixed(v * 1e3, 4) + " mJ";
}

void run_search(const SearchCliOptions& o) {
  const auto started = std::chrono::steady_clock::now();
  const Budget budget = parse_budget(o.budget);
  const Target target = load_target(o.target);
  const auto searcher = searchers().create(o.algo, nlohmann::json::object(), "--algo");
  std::unique_ptr<Exporter> exporter;
  if (!o.exporter.empty()) exporter = exporter_registry().create(o.exporter, nlohmann::json::object(), "--exporter");
  if (o.batch < 1) throw Error(ErrorKind::kInvalidArgument, "--batch " + std::to_string(o.batch) + ": must be >= 1");
  require_new_output(o.out, "--out");

  const MeasuredSpace m =
      measure_space(o.space, &target, exporter ? &exporter->contract() : nullptr, show_progress(o.json), false);
  const LayerTable& table = m.table;
  const SensitivityTable& sensitivity = m.sensitivity;
  const Problem problem = make_problem(table, m.space, sensitivity, target, budget, o.batch);
  SearchOptions options;
  options.seed = o.space.seed;
  const auto search_started = std::chrono::steady_clock::now();
  const SearchResult result = searcher->run(problem, options);
  const double search_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - search_started).count();
  const std::vector<Point> baselines = uniform_baselines(problem);

  ResolvedPlan plan;
  for (std::size_t l = 0; l < problem.layers.size(); ++l)
    plan.layers[problem.layers[l]] = problem.configs[l][static_cast<std::size_t>(result.best.choice[l])];
  nlohmann::json summary = {
      {"model", m.model->source()},
      {"target", target.name},
      {"budget",
       {{"metric", to_string(budget.metric)},
        {"value", budget.value},
        {"unit", unit_of(budget.metric)},
        {"text", budget.text}}},
      {"algo", o.algo},
      {"seed", o.space.seed},
      {"satisfiable", result.satisfiable},
      {"best", point_json(problem, result.best)},
      {"front", nlohmann::json::array()},
      {"baselines", nlohmann::json::array()},
      {"evaluated", result.evaluated},
      {"search_seconds", search_s},
      {"sensitivity",
       {{"key", sensitivity.key},
        {"cached", m.cached},
        {"samples", m.data.size()},
        {"base", to_json(sensitivity.base)}}},
      {"seconds", std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count()}};
  for (const auto& pt : result.front) summary["front"].push_back(point_json(problem, pt));
  for (const auto& pt : baselines) summary["baselines"].push_back(point_json(problem, pt));
  std::vector<Point> all = result.front;
  all.insert(all.end(), baselines.begin(), baselines.end());
  const std::string axis =
      std::string(to_string(budget.metric)) + " (" + unit_of(budget.metric) + ") on " + target.name;
  write_directory_atomically(o.out, [&](const std::string& dir) {
    write_file_atomically(dir + "/plan.json", to_json(plan).dump(2) + "\n");
    write_file_atomically(dir + "/front.json", summary.dump(2) + "\n");
    write_file_atomically(dir + "/front.csv", front_csv(problem, all));
    write_file_atomically(dir + "/front.svg",
                          front_svg(result.front, baselines, result.best, budget.value, axis,
                                    m.model->source() + ": " + o.algo + " search, " + budget.to_string()));
  });
  if (o.json) {
    std::cout << summary.dump(2) << "\n";
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
    t.add_row({"total", "", fixed(result.best.loss, 4), human_cost(budget.metric, result.best.cost)});
    t.print(std::cout);
    std::cout << "\nuniform baselines:\n";
    Table b;
    b.add_column("plan");
    b.add_column("predicted loss +", Table::Align::kRight);
    b.add_column(to_string(budget.metric), Table::Align::kRight);
    b.add_column("within budget");
    for (const auto& pt : baselines)
      b.add_row(
          {pt.label, fixed(pt.loss, 4), human_cost(budget.metric, pt.cost), pt.cost <= budget.value ? "yes" : "no"});
    b.print(std::cout);
    std::cout << "\nwrote " << o.out << "/plan.json, front.json, front.csv, front.svg (" << result.front.size()
              << " points on the front, search " << fixed(search_s * 1e3, 1) << " ms)\n";
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
  auto* sub =
      app.add_subcommand("search", "Find a per-layer plan with the least predicted loss within a hardware budget");
  sub->footer(
      "Builds the search space (weight bits x N:M per layer, each legal for the layer, run by --target and, with\n"
      "--exporter, writable by that format), measures each option's loss increase on a calibration subset\n"
      "(adze sensitivity; cached), prices each option in the budget's metric (size: encoded bytes; latency and\n"
      "energy: the roofline cost model of --target at --batch), and searches: dp solves the knapsack exactly up\n"
      "to a fine cost grid (HAWQ-V3's problem), greedy relaxes the most compressed plan step by step. The\n"
      "predicted loss is the sum of the layers' measured increases.\n\n"
      "Writes DIR/plan.json (for adze compress --plan), front.json and front.csv (the Pareto front and the uniform\n"
      "baselines), front.svg (predicted loss against cost). Exit code 3 when no plan meets the budget: the closest\n"
      "plan is still written.\n\n"
      "Examples:\n"
      "  adze search fmnist-cnn --target cortex-m7 --budget size=150KB --data fmnist --out cnn-150k\n"
      "  adze search fortune-gpt --target a100 --budget latency=80us --algo greedy --data fortunes --out gpt-a100");
  add_space_options(sub, o->space);
  sub->add_option("--target", o->target, "hardware target (adze target list) or a target JSON file")->required();
  sub->add_option("--budget", o->budget, "latency=2ms, size=200KB or energy=1mJ")->required();
  sub->add_option("--algo", o->algo, "dp or greedy")->capture_default_str();
  sub->add_option("--out", o->out, "output directory (must not exist)")->required();
  sub->add_option("--batch", o->batch, "samples per inference, for latency and energy")->capture_default_str();
  sub->add_option("--exporter", o->exporter, "keep only what this format can write (adze exporters)");
  sub->add_flag("--json", o->json, "print JSON");
  sub->callback([o] { run_search(*o); });
}

}  // namespace adze::cli
