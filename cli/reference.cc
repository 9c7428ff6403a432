// adze reference list | train [NAME...]
#include "examples/reference/reference.h"

#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/table.h"

namespace adze::cli {
namespace {

struct ReferenceOptions {
  std::vector<std::string> names;
  std::string cache_dir;
  bool force = false;
  bool json = false;
  double budget = 1.0;
  uint64_t seed = 0;
};

std::string metric_cell(const nlohmann::json& card, const char* split) {
  if (!card.contains("metrics")) return "-";
  const auto& m = card["metrics"][split];
  if (card.value("task", "") == "language-model") return fixed(m.value("bits_per_char", 0.0), 3) + " bpc";
  return percent(m.value("top1", 0.0));
}

void print_summary(const std::vector<reference::Trained>& trained) {
  Table table;
  table.add_column("model");
  table.add_column("params", Table::Align::kRight);
  table.add_column("val", Table::Align::kRight);
  table.add_column("test", Table::Align::kRight);
  table.add_column("baseline", Table::Align::kRight);
  table.add_column("train s", Table::Align::kRight);
  table.add_column("source");
  table.add_column("quality bar");
  for (const auto& t : trained) {
    const auto& c = t.card;
    std::string baseline = "-";
    if (c.contains("baseline")) baseline = fixed(c["baseline"].value("unigram_bits_per_char", 0.0), 3) + " bpc unigram";
    table.add_row({c.value("name", ""), human_count(c.value("params", 0.0)), metric_cell(c, "val"),
                   metric_cell(c, "test"), baseline, fixed(c["train"].value("seconds", 0.0), 0),
                   t.from_cache ? "cache" : "trained now", c.value("quality_bar", "")});
  }
  table.print(std::cout);
}

void run_train(const ReferenceOptions& o) {
  std::vector<std::string> names = o.names;
  if (names.empty())
    for (const auto& r : reference::recipes()) names.push_back(r.name);
  for (const auto& n : names) reference::recipe(n);  // validate every name before any work
  std::vector<reference::Trained> trained;
  reference::TrainOptions options;
  options.cache_dir = o.cache_dir;
  options.force = o.force;
  options.progress = show_progress(o.json);
  options.budget = o.budget;
  options.seed = o.seed;
  for (const auto& n : names) trained.push_back(reference::ensure_trained(n, options));
  if (o.json) {
    nlohmann::json j = nlohmann::json::array();
    for (const auto& t : trained) j.push_back({{"path", t.model_path}, {"from_cache", t.from_cache}, {"card", t.card}});
    std::cout << j.dump(2) << "\n";
  } else {
    print_summary(trained);
  }
}

void run_list(const ReferenceOptions& o) {
  nlohmann::json j = nlohmann::json::array();
  Table table;
  table.add_column("model");
  table.add_column("data");
  table.add_column("input");
  table.add_column("cached");
  table.add_column("summary");
  for (const auto& r : reference::recipes()) {
    auto path = reference::cached_model_path(r.name, o.cache_dir);
    j.push_back({{"name", r.name},
                 {"data", r.data},
                 {"summary", r.summary},
                 {"input", r.input.shape},
                 {"path", path ? *path : ""}});
    table.add_row(
        {r.name, r.data, shape_to_string(r.input.shape) + " " + r.input.dtype, path ? *path : "no", r.summary});
  }
  if (o.json)
    std::cout << j.dump(2) << "\n";
  else
    table.print(std::cout);
}

}  // namespace

void setup_reference(CLI::App& app) {
  auto o = std::make_shared<ReferenceOptions>();
  auto* sub = app.add_subcommand("reference", "Train, cache and list the reference models");
  sub->require_subcommand(1);
  sub->footer(
      "Models are cached in ${ADZE_CACHE_DIR:-~/.cache/adze}/models as <name>.pt (TorchScript) with\n"
      "<name>.json (input, metrics, training budget) beside them.");
  auto* train = sub->add_subcommand("train", "Train the named reference models (all by default) unless cached");
  train->add_option("names", o->names, "fmnist-cnn, fmnist-vit, fortune-gpt");
  train->add_option("--cache", o->cache_dir, "cache directory");
  train->add_flag("--force", o->force, "retrain even when cached");
  train->add_option("--budget", o->budget, "fraction of the training steps to run (quick checks)")
      ->check(CLI::Range(1e-4, 1.0));
  train->add_option("--seed", o->seed, "random seed");
  train->add_flag("--json", o->json, "print the cards as JSON");
  train->callback([o] { run_train(*o); });
  auto* list = sub->add_subcommand("list", "List the reference models and where they are cached");
  list->add_option("--cache", o->cache_dir, "cache directory");
  list->add_flag("--json", o->json, "print JSON");
  list->callback([o] { run_list(*o); });
}

}  // namespace adze::cli
