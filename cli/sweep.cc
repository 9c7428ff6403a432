// adze sweep plan|run|status: config-driven batches of compress runs (sweep/), resumable after a crash.
#include <unistd.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>

#include "cli/commands.h"
#include "core/error.h"
#include "core/files.h"
#include "core/table.h"
#include "sweep/local_executor.h"
#include "sweep/sweep_file.h"
#include "sweep/sweep_runs.h"
#include "sweep/sweep_store.h"

namespace adze::cli {
namespace {

struct SweepOptions {
  std::string file, out, id;
  bool json = false, extend = false;
  double timeout_s = 0, stale_after_s = 600;
  int retries = 1;
};

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

void print_runs(const std::vector<PreparedRun>& runs, std::size_t expanded) {
  Table t;
  t.add_column("#", Table::Align::kRight);
  t.add_column("id");
  t.add_column("axes");
  for (const auto& r : runs) t.add_row({std::to_string(r.run.index), r.id.substr(0, 12), describe_axes(r.run.axes)});
  t.print(std::cout);
  std::cout << "\n" << runs.size() << " run(s)";
  if (expanded != runs.size()) std::cout << " (" << expanded - runs.size() << " duplicate(s) of another run merged)";
  std::cout << "\n";
}

void run_plan(const SweepOptions& o) {
  const SweepFile sweep = load_sweep_file(o.file);
  const std::size_t expanded = expand_sweep(sweep).size();
  const std::vector<PreparedRun> runs = prepare_runs(sweep, show_progress(o.json));
  if (!o.json) return print_runs(runs, expanded);
  nlohmann::ordered_json out = nlohmann::ordered_json::array();
  for (const auto& r : runs) out.push_back({{"index", r.run.index}, {"id", r.id}, {"axes", r.run.axes}});
  std::cout << nlohmann::ordered_json{{"runs", out}, {"expanded", expanded}}.dump(2) << "\n";
}

void print_counts(const std::map<std::string, int64_t>& c, const std::string& dir) {
  Table t;
  t.add_column("state");
  t.add_column("runs", Table::Align::kRight);
  for (const char* s : {"done", "failed", "running", "pending"}) t.add_row({s, std::to_string(c.at(s))});
  t.print(std::cout);
  std::cout << "store: " << dir << "/sweep.db\n";
}

void run_sweep(const SweepOptions& o) {
  if (o.retries < 0) throw Error(ErrorKind::kInvalidArgument, "--retries must be 0 or more");
  if (o.timeout_s < 0) throw Error(ErrorKind::kInvalidArgument, "--timeout must be 0 (none) or positive");
  if (!(o.stale_after_s > 0)) throw Error(ErrorKind::kInvalidArgument, "--stale-after must be positive");
  const SweepFile sweep = load_sweep_file(o.file);
  if (std::filesystem::exists(o.out) && !std::filesystem::exists(o.out + "/sweep.db"))
    throw Error(ErrorKind::kIo, "--out '" + o.out + "' exists and holds no sweep store");
  const std::vector<PreparedRun> runs = prepare_runs(sweep, show_progress(o.json));
  SweepStore store = SweepStore::open(o.out, true);
  const nlohmann::ordered_json canonical = sweep.canonical(), recorded = store.sweep();
  if (!recorded.is_null() && recorded != canonical && !o.extend)
    throw Error(ErrorKind::kInvalidArgument, "--out '" + o.out + "' holds the store of another sweep (its " +
                                                 first_difference(recorded, canonical) + " differs from '" + o.file +
                                                 "'s); pass --extend to add this sweep's runs to it");
  if (recorded != canonical) store.set_sweep(canonical);
  const int64_t added = store.add_runs(runs);
  const int64_t reclaimed = store.reclaim(host_name(), o.stale_after_s);
  if (!o.json) {
    std::cout << runs.size() << " run(s): " << added << " new";
    if (reclaimed) std::cout << ", " << reclaimed << " left running by a worker that died, pending again";
    std::cout << "\n";
  }
  ExecutorOptions e;
  e.child_command = {std::filesystem::read_symlink("/proc/self/exe").string(), "-q"};
  if (global_options().threads > 0) {
    e.child_command.push_back("--threads");
    e.child_command.push_back(std::to_string(global_options().threads));
  }
  for (const char* a : {"sweep", "run-one"}) e.child_command.push_back(a);
  e.child_command.push_back(std::filesystem::absolute(o.out).string());
  e.timeout_s = o.timeout_s;
  e.retries = o.retries;
  e.progress = show_progress(o.json);
  const ExecutorSummary s = run_pending(store, o.out, e);
  const auto counts = store.counts();
  if (o.json) {
    std::cout << nlohmann::ordered_json{{"runs", runs.size()},    {"new", added},         {"reclaimed", reclaimed},
                                        {"attempts", s.attempts}, {"adopted", s.adopted}, {"counts", counts}}
                     .dump(2)
              << "\n";
  } else {
    print_counts(counts, o.out);
  }
  if (counts.at("failed") > 0) throw CheckFailed();
}

void run_one(const SweepOptions& o) {
  const SweepStore store = SweepStore::open(o.out, false);
  const auto run = store.run(o.id);
  if (!run) throw Error(ErrorKind::kInvalidArgument, "no run '" + o.id + "' in the store of '" + o.out + "'");
  const std::string dir = run_directory(o.out, o.id);
  std::cout << "run " << o.id << ": " << describe_axes(run->spec.at("axes")) << std::endl;
  const nlohmann::ordered_json result = execute_run(run->prepared(), dir, false);
  write_file_atomically(dir + "/result.json", result.dump(2) + "\n");
  std::cout << "run " << o.id << " finished" << std::endl;
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

}  // namespace

void setup_sweep(CLI::App& app) {
  auto o = std::make_shared<SweepOptions>();
  auto* sweep = app.add_subcommand("sweep", "Run batches of compressions from one sweep file, resumable after a crash");
  sweep->require_subcommand(1);
  sweep->footer(
      "A sweep file (JSON or YAML) lists axes (model, plan, pipeline, target, seed, data) and how they\n"
      "combine (grid, zip, exclude); each run compresses one model with one plan and pipeline, and may export\n"
      "and verify. A run's id is a hash of everything its result depends on, so equal runs are one run, and\n"
      "a sweep killed at any point resumes where it stopped. See docs/sweeps.md.\n\n"
      "Examples:\n"
      "  adze sweep plan configs/sweeps/cnn-ptq.yaml\n"
      "  adze sweep run configs/sweeps/cnn-ptq.yaml --out sweeps/cnn-ptq\n"
      "  adze sweep status sweeps/cnn-ptq");

  auto* plan = sweep->add_subcommand("plan", "Check a sweep file and list its runs, running nothing");
  plan->add_option("file", o->file, "sweep file (.json, .yaml)")->required();
  plan->add_flag("--json", o->json, "print the runs as JSON");
  plan->callback([o] { run_plan(*o); });

  auto* run = sweep->add_subcommand("run", "Run a sweep's pending runs into a store, resuming one that stopped");
  run->add_option("file", o->file, "sweep file (.json, .yaml)")->required();
  run->add_option("--out", o->out, "the sweep's directory: its store (sweep.db) and each run's files")->required();
  run->add_option("--timeout", o->timeout_s, "seconds one attempt of a run may take (0: no limit)");
  run->add_option("--retries", o->retries, "attempts after the first, for a run that crashed or failed")
      ->capture_default_str();
  run->add_option("--stale-after", o->stale_after_s,
                  "seconds without a heartbeat after which another host's running run is pending again")
      ->capture_default_str();
  run->add_flag("--extend", o->extend, "add this sweep's runs to a store made by another sweep file");
  run->add_flag("--json", o->json, "print the outcome as JSON");
  run->footer(
      "Exit codes: 0 every run done, 1 some run failed (its error is in 'adze sweep status --json'), 2 bad\n"
      "input (nothing is run and the store is unchanged).");
  run->callback([o] { run_sweep(*o); });

  auto* status = sweep->add_subcommand("status", "Count a sweep's runs per state");
  status->add_option("dir", o->out, "the sweep's directory")->required();
  status->add_flag("--json", o->json, "print the counts and the failed runs' errors as JSON");
  status->callback([o] { run_status(*o); });

  auto* one = sweep->add_subcommand("run-one", "Execute one run of a store (what each sweep worker starts)");
  one->group("");  // internal: started by sweep run
  one->add_option("dir", o->out, "the sweep's directory")->required();
  one->add_option("id", o->id, "the run's id")->required();
  one->callback([o] { run_one(*o); });
}

}  // namespace adze::cli
