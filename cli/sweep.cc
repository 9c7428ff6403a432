// adze sweep plan|run|run-one|serve, and the sweep subcommands' flags: config-driven batches of compress runs
// (sweep/), resumable after a crash. slurm and collect: sweep_slurm.cc; report and status: sweep_status.cc.
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "cli/commands.h"
#include "cli/sweep_common.h"
#include "core/error.h"
#include "core/files.h"
#include "core/table.h"
#include "sweep/local_executor.h"
#include "sweep/mpi_executor.h"
#include "sweep/sweep_file.h"
#include "sweep/sweep_runs.h"
#include "sweep/sweep_store.h"

namespace adze::cli {
namespace {

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

// What executes runs: this binary's `sweep serve DIR` (a worker kept between runs) or, with
// --fresh-processes, `sweep run-one DIR` (a process per run, the id appended); quiet, with `threads` threads
// when positive.
void set_run_commands(ExecutorOptions& e, const SweepOptions& o, int threads) {
  std::vector<std::string> argv = {std::filesystem::read_symlink("/proc/self/exe").string(), "-q"};
  if (threads > 0) {
    argv.push_back("--threads");
    argv.push_back(std::to_string(threads));
  }
  argv.push_back("sweep");
  const std::string dir = std::filesystem::absolute(o.out).string();
  e.child_command = argv;
  for (const char* a : {"run-one", dir.c_str()}) e.child_command.push_back(a);
  e.worker_command.clear();
  if (o.fresh_processes) return;
  e.worker_command = argv;
  for (const char* a : {"serve", dir.c_str()}) e.worker_command.push_back(a);
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
  set_run_commands(e, o, threads);
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
  set_run_commands(e, o, global_options().threads);
  const ExecutorSummary s = run_pending(store, o.out, e);
  print_outcome(o, store, runs, added, reclaimed, s);
}

// Run `id` of the store in `out`: its result.json, or its error.txt and the exception.
void execute_stored_run(const std::string& out, const std::string& id) {
  const SweepStore store = SweepStore::open(out, false);
  const auto run = store.run(id);
  if (!run) throw Error(ErrorKind::kInvalidArgument, "no run '" + id + "' in the store of '" + out + "'");
  const std::string dir = run_directory(out, id);
  std::filesystem::create_directories(dir);
  std::filesystem::remove(dir + "/error.txt");
  std::cout << "run " << id << ": " << describe_axes(run->spec.at("axes")) << std::endl;
  try {
    const nlohmann::ordered_json result =
        execute_run(run->prepared(), dir, std::filesystem::read_symlink("/proc/self/exe").string(), false);
    write_file_atomically(dir + "/result.json", result.dump(2) + "\n");
  } catch (const std::exception& e) {  // for adze sweep collect (a Slurm task's run has no parent to tell)
    write_file_atomically(dir + "/error.txt", "adze: error: " + first_line_of(e) + "\n");
    throw;
  }
  std::cout << "run " << id << " finished" << std::endl;
}

void run_one(const SweepOptions& o) { execute_stored_run(o.out, o.id); }

// This process's stdout and stderr sent to `path` (appended) while it lives.
class OutputTo {
 public:
  explicit OutputTo(const std::string& path) {
    std::cout.flush(), std::cerr.flush(), std::fflush(nullptr);
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
    if (fd < 0) throw Error(ErrorKind::kIo, "failed to open '" + path + "': " + std::strerror(errno));
    saved_out_ = ::dup(STDOUT_FILENO), saved_err_ = ::dup(STDERR_FILENO);
    ::dup2(fd, STDOUT_FILENO), ::dup2(fd, STDERR_FILENO);
    ::close(fd);
  }
  ~OutputTo() {
    std::cout.flush(), std::cerr.flush(), std::fflush(nullptr);
    ::dup2(saved_out_, STDOUT_FILENO), ::dup2(saved_err_, STDERR_FILENO);
    ::close(saved_out_), ::close(saved_err_);
  }
  OutputTo(const OutputTo&) = delete;
  OutputTo& operator=(const OutputTo&) = delete;

 private:
  int saved_out_ = -1, saved_err_ = -1;
};

// A worker kept between runs (sweep/run_slot.h): reads run ids, a line each, on fd 3 and answers each with the
// exit code `sweep run-one` would have ended with, the run's output in its log.txt. Ends at the end of its input,
// and after a run that failed: the sweep starts a fresh worker for the next.
void serve(const SweepOptions& o) {
  constexpr int kFd = 3;
  if (::fcntl(kFd, F_GETFD) < 0)
    throw Error(ErrorKind::kInvalidArgument,
                "adze sweep serve is started by 'adze sweep run', which hands it run ids on file descriptor 3 "
                "(not open here)");
  ::fcntl(kFd, F_SETFD, FD_CLOEXEC);  // not inherited by the processes a run starts (adze bench --child)
  std::string pending;
  char buffer[256];
  for (;;) {
    const std::size_t end = pending.find('\n');
    if (end == std::string::npos) {
      const ssize_t n = ::read(kFd, buffer, sizeof buffer);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) return;
      pending.append(buffer, static_cast<std::size_t>(n));
      continue;
    }
    const std::string id = pending.substr(0, end);
    pending.erase(0, end + 1);
    int code = 0;
    {
      const OutputTo log(run_directory(o.out, id) + "/log.txt");  // the directory made by RunSlot::start
      try {
        execute_stored_run(o.out, id);
      } catch (...) {
        code = report_current_exception();
      }
    }
    const std::string answer = std::to_string(code) + "\n";
    if (::write(kFd, answer.data(), answer.size()) != static_cast<ssize_t>(answer.size()) || code != 0) return;
  }
}

}  // namespace

void setup_sweep(CLI::App& app) {
  auto o = std::make_shared<SweepOptions>();
  auto* sweep = app.add_subcommand("sweep", "Run batches of compressions from one sweep file, resumable after a crash");
  sweep->require_subcommand(1);
  sweep->footer(
      "A sweep file (JSON or YAML) lists axes (model, plan, pipeline, target, budget, seed, data) and how\n"
      "they combine (grid, zip, exclude). A compress run compresses one model with one plan and pipeline; a\n"
      "search run (kind: search) first searches the plan within its budget on its target, as adze search does.\n"
      "Either may then export, verify each export, and bench (time the model and each export side by side).\n"
      "A run's id is a hash of everything its result depends on, so equal runs are one run, and a sweep\n"
      "killed at any point resumes where it stopped. See docs/sweeps.md.\n\n"
      "Examples:\n"
      "  adze sweep plan configs/sweeps/cnn-ptq.json\n"
      "  adze sweep run configs/sweeps/cnn-ptq.json --out sweeps/cnn-ptq\n"
      "  adze sweep run configs/sweeps/cnn-search.yaml --out sweeps/cnn-search\n"
      "  adze sweep report sweeps/cnn-search --md");

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
  run->add_flag("--fresh-processes", o->fresh_processes,
                "start a fresh adze process for every run (by default one worker process per sweep, or per MPI "
                "rank, executes run after run, and is started afresh after a run that fails)");
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

  auto* worker =
      sweep->add_subcommand("serve", "Execute a store's runs as they are handed out (what sweep run starts)");
  worker->group("");  // internal: started by sweep run, run ids on fd 3
  worker->add_option("dir", o->out, "the sweep's directory")->required();
  worker->callback([o] { serve(*o); });
}

}  // namespace adze::cli
