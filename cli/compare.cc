// adze compare DIR... : the reports of several `adze compress` runs side by side.
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/files.h"
#include "core/table.h"

namespace adze::cli {
namespace {

struct CompareOptions {
  std::vector<std::string> dirs;
  bool json = false;
};

nlohmann::json read_report(const std::string& dir) {
  const std::string path = dir + "/report.json";
  require_readable_file(path, "report");
  try {
    nlohmann::json r = nlohmann::json::parse(read_file_text(path));
    if (!r.contains("metrics") || !r.contains("size") || !r["size"].contains("ratio"))
      throw Error(ErrorKind::kInvalidArgument, "report '" + path + "': not an adze compress report (no metrics/size)");
    return r;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::kInvalidArgument, "report '" + path + "': not JSON (" + std::string(e.what()) + ")");
  }
}

// One row: the quality metric of the task (top-1 for classification, perplexity for language models).
nlohmann::json summarize(const std::string& dir, const nlohmann::json& r) {
  std::filesystem::path path(dir);
  if (path.filename().empty()) path = path.parent_path();  // "out/run/"
  nlohmann::json row = {{"run", path.filename().string()}, {"dir", dir}};
  row["model"] = r.value("model", "");
  row["plan"] = r.value("plan", "");
  row["pipeline"] = r.value("pipeline", "");
  row["size_ratio"] = r["size"]["ratio"];
  row["compressed_bytes"] = r["size"]["compressed_bytes"];
  double seconds = 0;
  for (const auto& p : r.value("passes", nlohmann::json::array())) seconds += p.value("seconds", 0.0);
  row["pipeline_seconds"] = seconds;
  const auto& m = r["metrics"];
  if (m.contains("before") && m.contains("after")) {
    const bool lm = m["after"].value("task", "") == "language-model";
    const char* key = lm ? "perplexity" : "top1";
    const double before = m["before"][key].get<double>(), after = m["after"][key].get<double>();
    row["metric"] = key;
    row["before"] = before;
    row["after"] = after;
    row["change"] = lm ? after / before - 1.0 : after - before;  // relative for perplexity, points for top-1
  }
  return row;
}

void run_compare(const CompareOptions& o) {
  nlohmann::json rows = nlohmann::json::array();
  for (const auto& dir : o.dirs) rows.push_back(summarize(dir, read_report(dir)));
  if (o.json) {
    std::cout << rows.dump(2) << "\n";
    return;
  }
  Table t;
  t.add_column("run");
  t.add_column("metric");
  t.add_column("before", Table::Align::kRight);
  t.add_column("after", Table::Align::kRight);
  t.add_column("change", Table::Align::kRight);
  t.add_column("size", Table::Align::kRight);
  t.add_column("smaller", Table::Align::kRight);
  t.add_column("pipeline s", Table::Align::kRight);
  for (const auto& r : rows) {
    const bool has = r.contains("metric");
    const bool top1 = has && r["metric"] == "top1";
    auto value = [&](const char* k) {
      return has ? (top1 ? percent(r[k].get<double>(), 2) : fixed(r[k].get<double>(), 3)) : "-";
    };
    std::string change = "-";
    if (has) {
      const double c = r["change"].get<double>();
      change = top1 ? (c >= 0 ? "+" : "") + fixed(100 * c, 2) + " pt" : (c >= 0 ? "+" : "") + fixed(100 * c, 2) + "%";
    }
    t.add_row({r["run"].get<std::string>(), has ? r["metric"].get<std::string>() : "-", value("before"), value("after"),
               change, human_bytes(r["compressed_bytes"].get<double>()), fixed(r["size_ratio"].get<double>(), 2) + "x",
               fixed(r["pipeline_seconds"].get<double>(), 0)});
  }
  t.print(std::cout);
}

}  // namespace

void setup_compare(CLI::App& app) {
  auto o = std::make_shared<CompareOptions>();
  auto* sub = app.add_subcommand("compare", "Compare the reports of several 'adze compress' runs side by side");
  sub->footer(
      "One row per output directory of 'adze compress': the task's metric before and after (top-1 for\n"
      "classification, change in points; perplexity for language models, change in %), the compressed size\n"
      "with codes, scales, zero points and index bits counted, how many times smaller than fp32, and the\n"
      "pipeline's wall time.\n\n"
      "Example:\n"
      "  adze compare build/quality/*");
  sub->add_option("dirs", o->dirs, "output directories of adze compress")->required();
  sub->add_flag("--json", o->json, "print the rows as JSON");
  sub->callback([o] { run_compare(*o); });
}

}  // namespace adze::cli
