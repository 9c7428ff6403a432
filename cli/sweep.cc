// adze sweep plan|run|status: config-driven batches of compress runs (sweep/), resumable after a crash.
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.h"
#include "core/error.h"
#include "core/files.h"
#include "core/table.h"
#include "sweep/local_executor.h"
#include "sweep/mpi_executor.h"
#include "sweep/sweep_file.h"
#include "sweep/sweep_report.h"
#include "sweep/sweep_runs.h"
#include "sweep/sweep_store.h"

namespace adze::cli {
namespace {

struct SweepOptions {
  std::string file, out, id;
  bool json = false, extend = false, csv = false, mpi = false;
  std::string plot;  ///< report: a directory for the Pareto plots
  double timeout_s = 0, stale_after_s = 600;
  int retries = 1;
  int cpus_per_task = 1, max_parallel = 0;  ///< Slurm
  std::string time, partition;              ///< Slurm
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

// The store of `o.out` with the sweep's runs added (made when missing); refuses a store of another sweep file
// unless --extend. Prints what it added unless --json.
SweepStore open_store_with_runs(const SweepOptions& o, int64_t* runs_count, int64_t* added) {
  const SweepFile sweep = load_sweep_file(o.file);
  if (std::filesystem::exists(o.out) && !std::filesystem::exists(o.out + "/sweep.db"))
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

// The child each worker starts: this binary's `sweep run-one DIR`, quiet, with `threads` threads when positive.
std::vector<std::string> child_command(const std::string& dir, int threads) {
  std::vector<std::string> argv = {std::filesystem::read_symlink("/proc/self/exe").string(), "-q"};
  if (threads > 0) {
    argv.push_back("--threads");
    argv.push_back(std::to_string(threads));
  }
  for (const char* a : {"sweep", "run-one"}) argv.push_back(a);
  argv.push_back(std::filesystem::absolute(dir).string());
  return argv;
}

void print_outcome(const SweepOptions& o, SweepStore& store, int64_t runs, int64_t added, int64_t reclaimed,
                   const ExecutorSummary& s) {
  const auto counts = store.counts();
  if (o.json) {
    std::cout << nlohmann::ordered_json{{"runs", runs},           {"new", added},         {"reclaimed", reclaimed},
                                        {"attempts", s.attempts}, {"adopted", s.adopted}, {"counts", counts}}
                     .dump(2)
              << "\n";
  } else {
    print_counts(counts, o.out);
  }
  if (counts.at("failed") > 0) throw CheckFailed();
}

// Rank 0 prepares the store and hands out runs; the other ranks only run what it hands them.
void run_sweep_mpi(const SweepOptions& o, ExecutorOptions e) {
  const MpiWorld world = mpi_init();
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  const int ranks_here = local ? std::max(1, std::atoi(local)) : 1;
  const int threads = global_options().threads > 0
                          ? global_options().threads
                          : std::max(1, static_cast<int>(std::thread::hardware_concurrency()) / ranks_here);
  e.child_command = child_command(o.out, threads);
  if (world.rank != 0) {
    run_pending_mpi(nullptr, o.out, e, world);
    mpi_finalize();
    return;
  }
  try {
    int64_t runs = 0, added = 0;
    SweepStore store = open_store_with_runs(o, &runs, &added);
    const int64_t reclaimed = store.reclaim(host_name(), o.stale_after_s);
    if (!o.json) {
      std::cout << runs << " run(s): " << added << " new";
      if (reclaimed) std::cout << ", " << reclaimed << " left running by a worker that died, pending again";
      std::cout << "; " << world.size << " MPI rank(s), " << threads << " thread(s) per run";
      if (world.size == 1) std::cout << " (one rank: rank 0 runs every run itself)";
      std::cout << "\n";
    }
    const ExecutorSummary s = run_pending_mpi(&store, o.out, e, world);
    mpi_finalize();
    print_outcome(o, store, runs, added, reclaimed, s);
  } catch (const Error&) {  // before any run: the other ranks wait for their first one
    mpi_stop_workers(world);
    mpi_finalize();
    throw;
  }
}

void run_sweep(const SweepOptions& o) {
  if (o.retries < 0) throw Error(ErrorKind::kInvalidArgument, "--retries must be 0 or more");
  if (o.timeout_s < 0) throw Error(ErrorKind::kInvalidArgument, "--timeout must be 0 (none) or positive");
  if (!(o.stale_after_s > 0)) throw Error(ErrorKind::kInvalidArgument, "--stale-after must be positive");
  ExecutorOptions e;
  e.timeout_s = o.timeout_s;
  e.retries = o.retries;
  e.progress = show_progress(o.json);
  if (o.mpi) return run_sweep_mpi(o, e);
  int64_t runs = 0, added = 0;
  SweepStore store = open_store_with_runs(o, &runs, &added);
  const int64_t reclaimed = store.reclaim(host_name(), o.stale_after_s);
  if (!o.json) {
    std::cout << runs << " run(s): " << added << " new";
    if (reclaimed) std::cout << ", " << reclaimed << " left running by a worker that died, pending again";
    std::cout << "\n";
  }
  e.child_command = child_command(o.out, global_options().threads);
  const ExecutorSummary s = run_pending(store, o.out, e);
  print_outcome(o, store, runs, added, reclaimed, s);
}

void run_one(const SweepOptions& o) {
  const SweepStore store = SweepStore::open(o.out, false);
  const auto run = store.run(o.id);
  if (!run) throw Error(ErrorKind::kInvalidArgument, "no run '" + o.id + "' in the store of '" + o.out + "'");
  const std::string dir = run_directory(o.out, o.id);
  std::filesystem::create_directories(dir);
  std::filesystem::remove(dir + "/error.txt");
  std::cout << "run " << o.id << ": " << describe_axes(run->spec.at("axes")) << std::endl;
  try {
    const nlohmann::ordered_json result = execute_run(run->prepared(), dir, false);
    write_file_atomically(dir + "/result.json", result.dump(2) + "\n");
  } catch (const std::exception& e) {  // for adze sweep collect (a Slurm task's run has no parent to tell)
    write_file_atomically(dir + "/error.txt", "adze: error: " + first_line_of(e) + "\n");
    throw;
  }
  std::cout << "run " << o.id << " finished" << std::endl;
}

// A Slurm array script over the pending runs: task i runs the i-th id of DIR/slurm/ids.txt.
void run_slurm(const SweepOptions& o) {
  int64_t runs = 0, added = 0;
  SweepStore store = open_store_with_runs(o, &runs, &added);
  std::vector<std::string> pending;
  for (const StoredRun& r : store.runs())
    if (r.state == "pending") pending.push_back(r.id);
  if (pending.empty()) {
    std::cout << "no pending runs: nothing to submit\n";
    return;
  }
  const std::string dir = std::filesystem::absolute(o.out).string(), slurm = dir + "/slurm";
  std::filesystem::create_directories(slurm);
  std::string ids;
  for (const std::string& id : pending) ids += id + "\n";
  write_file_atomically(slurm + "/ids.txt", ids);
  const std::string exe = std::filesystem::read_symlink("/proc/self/exe").string();
  std::string script = "#!/bin/bash\n# Written by adze sweep slurm: one array task per pending run of " + dir +
                       ".\n# Submit: sbatch " + slurm + "/sweep.sbatch   Then: adze sweep collect " + dir + "\n";
  script += "#SBATCH --job-name=adze-sweep\n";
  script += "#SBATCH --array=1-" + std::to_string(pending.size()) +
            (o.max_parallel > 0 ? "%" + std::to_string(o.max_parallel) : "") + "\n";
  script += "#SBATCH --output=" + slurm + "/task-%a.log\n";
  script += "#SBATCH --cpus-per-task=" + std::to_string(o.cpus_per_task) + "\n";
  if (!o.time.empty()) script += "#SBATCH --time=" + o.time + "\n";
  if (!o.partition.empty()) script += "#SBATCH --partition=" + o.partition + "\n";
  script += "set -euo pipefail\n";
  script += "id=$(sed -n \"${SLURM_ARRAY_TASK_ID}p\" " + shell_quoted(slurm + "/ids.txt") + ")\n";
  script += "exec " + shell_quoted(exe) + " -q --threads \"${SLURM_CPUS_PER_TASK:-1}\" sweep run-one " +
            shell_quoted(dir) + " \"$id\"\n";
  write_file_atomically(slurm + "/sweep.sbatch", script);
  std::filesystem::permissions(slurm + "/sweep.sbatch", std::filesystem::perms::owner_exec,
                               std::filesystem::perm_options::add);
  std::cout << "wrote " << slurm << "/sweep.sbatch: " << pending.size() << " array task(s), one per pending run\n"
            << "submit it with: sbatch " << slurm << "/sweep.sbatch\n"
            << "then merge the results: adze sweep collect " << dir << "\n";
}

// Merges what runs executed elsewhere left in their directories (result.json, error.txt) into the store.
void run_collect(const SweepOptions& o) {
  SweepStore store = SweepStore::open(o.out, false);
  int64_t done = 0, failed = 0;
  for (const StoredRun& r : store.runs()) {
    if (r.state == "done" || r.state == "failed") continue;
    const std::string dir = run_directory(o.out, r.id);
    if (std::filesystem::exists(dir + "/result.json")) {
      store.finish(r.id, nlohmann::ordered_json::parse(read_file_text(dir + "/result.json")), 0);
      ++done;
    } else if (std::filesystem::exists(dir + "/error.txt")) {
      std::string error = read_file_text(dir + "/error.txt");
      while (!error.empty() && error.back() == '\n') error.pop_back();
      store.fail(r.id, error, 0, false);
      ++failed;
    }
  }
  if (!o.json) std::cout << "collected " << done << " result(s) and " << failed << " failure(s)\n";
  const auto counts = store.counts();
  if (o.json)
    std::cout << nlohmann::ordered_json{{"collected", done}, {"failed", failed}, {"counts", counts}}.dump(2) << "\n";
  else
    print_counts(counts, o.out);
}

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
  run->add_flag("--mpi", o->mpi,
                "under mpirun: rank 0 owns the store and hands out runs to every rank (DIR on a shared file system)");
  run->add_flag("--json", o->json, "print the outcome as JSON");
  run->footer(
      "Exit codes: 0 every run done, 1 some run failed (its error is in 'adze sweep status --json'), 2 bad\n"
      "input (nothing is run and the store is unchanged).");
  run->callback([o] { run_sweep(*o); });

  auto* slurm = sweep->add_subcommand("slurm", "Write a Slurm array script over a sweep's pending runs");
  slurm->add_option("file", o->file, "sweep file (.json, .yaml)")->required();
  slurm->add_option("--out", o->out, "the sweep's directory, on a file system every node sees")->required();
  slurm->add_option("--cpus-per-task", o->cpus_per_task, "#SBATCH --cpus-per-task (threads per run)")
      ->capture_default_str();
  slurm->add_option("--time", o->time, "#SBATCH --time, per run (e.g. 00:30:00)");
  slurm->add_option("--partition", o->partition, "#SBATCH --partition");
  slurm->add_option("--max-parallel", o->max_parallel, "at most this many tasks at once (--array=1-N%M)");
  slurm->add_flag("--extend", o->extend, "add this sweep's runs to a store made by another sweep file");
  slurm->footer(
      "Writes DIR/slurm/sweep.sbatch and DIR/slurm/ids.txt: task i runs the i-th pending run with 'adze sweep\n"
      "run-one', which leaves its result (or its error) in DIR/runs/ID. 'adze sweep collect DIR' then merges\n"
      "them into the store; run 'adze sweep slurm' again for what is still pending.");
  slurm->callback([o] { run_slurm(*o); });

  auto* collect = sweep->add_subcommand("collect", "Merge the results runs left in their directories into the store");
  collect->add_option("dir", o->out, "the sweep's directory")->required();
  collect->add_flag("--json", o->json, "print the counts as JSON");
  collect->callback([o] { run_collect(*o); });

  auto* report =
      sweep->add_subcommand("report", "Tabulate a sweep's runs, the effect of each axis, and plot the fronts");
  report->add_option("dir", o->out, "the sweep's directory")->required();
  auto* as_json = report->add_flag("--json", o->json, "print the report as JSON");
  report->add_flag("--csv", o->csv, "print one CSV row per run")->excludes(as_json);
  report->add_flag("--md", "print Markdown tables (the default)");
  report->add_option("--plot", o->plot,
                     "write one SVG per model x target: quality drop against size, the front ringed");
  report->footer(
      "Rows are grouped by model and target. drop is the top-1 points lost (or the increase of\n"
      "cross-entropy for language models); latency is the roofline's on the run's target, batch 1.");
  report->callback([o] { run_report(*o); });

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
