// adze sweep report and status: a sweep's runs as tables, JSON or CSV, its Pareto plots, and its counts.
#include <cctype>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "cli/sweep_common.h"
#include "core/files.h"
#include "sweep/sweep_report.h"

namespace adze::cli {

void run_report(const SweepOptions& o) {
  const SweepStore store = SweepStore::open(o.out, false);
  const SweepReport report = make_sweep_report(store);
  if (!o.plot.empty()) {
    std::filesystem::create_directories(o.plot);
    for (const auto& [group, svg] : pareto_svgs(report)) {
      std::string name;
      for (char c : group) name += std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' ? c : '_';
      write_file_atomically(o.plot + "/" + name + ".svg", svg);
      if (!o.json && !o.csv) std::cerr << "wrote " << o.plot << "/" << name << ".svg\n";
    }
  }
  if (o.json)
    std::cout << to_json(report).dump(2) << "\n";
  else if (o.csv)
    std::cout << to_csv(report);
  else
    std::cout << to_markdown(report);
}

void run_status(const SweepOptions& o) {
  const SweepStore store = SweepStore::open(o.out, false);
  const auto counts = store.counts();
  if (!o.json) return print_counts(counts, o.out);
  nlohmann::ordered_json failed = nlohmann::ordered_json::array();
  for (const auto& r : store.runs())
    if (r.state == "failed") failed.push_back({{"id", r.id}, {"axes", r.spec.at("axes")}, {"error", r.error}});
  std::cout << nlohmann::ordered_json{{"counts", counts}, {"failed", failed}}.dump(2) << "\n";
}

}  // namespace adze::cli
