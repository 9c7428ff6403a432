#include "cli/sweep_common.h"

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/table.h"
#include "sweep/sweep_file.h"
#include "sweep/sweep_runs.h"

namespace adze::cli {
namespace {

// The first part of two sweep files that differs, in words ("grid axis 'plan'").
std::string first_difference(const nlohmann::ordered_json& a, const nlohmann::ordered_json& b) {
  for (const char* field : {"grid", "zip", "exclude", "options", "export", "verify"}) {
    const auto& x = a.contains(field) ? a[field] : nlohmann::ordered_json();
    const auto& y = b.contains(field) ? b[field] : nlohmann::ordered_json();
    if (x == y) continue;
    if (std::string(field) == "grid" && x.is_object() && y.is_object()) {
      for (const auto& [axis, values] : x.items())
        if (!y.contains(axis) || y[axis] != values) return "grid axis '" + axis + "'";
      for (const auto& [axis, values] : y.items())
        if (!x.contains(axis)) return "grid axis '" + axis + "'";
    }
    return std::string("'") + field + "'";
  }
  return "";
}

}  // namespace

void print_counts(const std::map<std::string, int64_t>& c, const std::string& dir) {
  Table t;
  t.add_column("state");
  t.add_column("runs", Table::Align::kRight);
  for (const char* s : {"done", "failed", "running", "pending"}) t.add_row({s, std::to_string(c.at(s))});
  t.print(std::cout);
  std::cout << "store: " << dir << "/sweep.db\n";
}

SweepStore open_store_with_runs(const SweepOptions& o, int64_t* runs_count, int64_t* added) {
  const SweepFile sweep = load_sweep_file(o.file);
  // An empty --out is taken: it may be what a sweep killed while making its store left behind.
  if (std::filesystem::exists(o.out) && !std::filesystem::exists(o.out + "/sweep.db") &&
      !(std::filesystem::is_directory(o.out) && std::filesystem::is_empty(o.out)))
    throw Error(ErrorKind::kIo, "--out '" + o.out + "' exists and holds no sweep store");
  const std::vector<PreparedRun> runs = prepare_runs(sweep, show_progress(o.json));
  if (std::filesystem::exists(o.out + "/sweep.db")) {  // checked before anything in it changes
    const nlohmann::ordered_json recorded = SweepStore::open(o.out, false).sweep();
    if (!recorded.is_null() && recorded != sweep.canonical() && !o.extend)
      throw Error(ErrorKind::kInvalidArgument, "--out '" + o.out + "' holds the store of another sweep (its " +
                                                   first_difference(recorded, sweep.canonical()) + " differs from '" +
                                                   o.file + "'s); pass --extend to add this sweep's runs to it");
  }
  SweepStore store = SweepStore::open(o.out, true);
  if (store.sweep() != sweep.canonical()) store.set_sweep(sweep.canonical());
  *runs_count = static_cast<int64_t>(runs.size());
  *added = store.add_runs(runs);
  return store;
}

}  // namespace adze::cli
