// Runs a store's pending runs in child processes: a worker kept from run to run (the adze binary's `sweep serve
// DIR`: run_slot.h), or one process per run (`sweep run-one DIR ID`); either executes a run and writes
// DIR/runs/ID/result.json atomically. The process that runs the loop is the
// store's only writer: it leases each run (host, pid, heartbeat), records each attempt in one transaction, and
// bounds each child by a timeout and the run by its retries. A child dies with its parent (PR_SET_PDEATHSIG),
// so a killed sweep leaves no run half-done behind its lease; a result a child finished before the sweep died
// is adopted on resume, not run again. run_pending runs one child at a time on this machine; the MPI executor
// (mpi_executor.h) runs one per rank with the same parts.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "sweep/sweep_store.h"

namespace adze {

class ProgressBar;

struct ExecutorOptions {
  std::vector<std::string> child_command;   ///< argv of a process per run, the run's id appended
  std::vector<std::string> worker_command;  ///< argv of a worker kept between runs (run_slot.h); empty: none
  double timeout_s = 0;                     ///< per attempt; 0: none
  int retries = 1;                          ///< attempts after the first, for a crash, a timeout or an error
  double heartbeat_s = 5;
  bool progress = true;
};

struct ExecutorSummary {
  int64_t done = 0, failed = 0, adopted = 0, attempts = 0;
};

/// Seconds on the monotonic clock.
double monotonic_s();

/// DIR/runs/ID: where a run's artifacts, result.json and log.txt live.
std::string run_directory(const std::string& dir, const std::string& id);

/// How one attempt ended.
struct Attempt {
  int status = 0;  ///< waitpid's
  bool timed_out = false;
  double wall_s = 0;
  int64_t log_from = 0;  ///< where this attempt's output starts in the run's log.txt
};

/// One attempt of a run in a process of its own, its output appended to the run's log.txt (RunSlot's
/// --fresh-processes mode: run_slot.h).
class ChildRun {
 public:
  ChildRun(const std::string& dir, const std::string& id, const ExecutorOptions& options);
  ~ChildRun();
  ChildRun(const ChildRun&) = delete;
  ChildRun& operator=(const ChildRun&) = delete;
  /// Whether the child has ended (killed when past the timeout); attempt() is then complete. While it runs,
  /// waits up to `wait_s` for it to end first, and returns as soon as it does (a pidfd: the kernel wakes the
  /// wait at the child's exit), so that the next run starts without a polling interval's delay.
  bool poll(double wait_s = 0.02);
  const Attempt& attempt() const { return attempt_; }

 private:
  bool reaped();  // the child collected (waitpid) if it has ended
  bool ended();   // attempt_ completed
  pid_t pid_ = -1;
  int exit_fd_ = -1;  // readable once the child exits (pidfd_open); -1 where the kernel has none: short sleeps
  double timeout_s_ = 0, start_ = 0;
  Attempt attempt_;
};

/// The bookkeeping of a sweep in progress: claims runs (adopting results left by a sweep that died), records
/// attempts, and draws the progress bar (done, failed, pending and the time left).
class SweepProgress {
 public:
  SweepProgress(SweepStore& store, std::string dir, const ExecutorOptions& options);
  ~SweepProgress();
  /// The next run to execute, leased to (host, pid); none when nothing is pending.
  std::optional<StoredRun> next(const std::string& host, int64_t pid);
  /// Records an attempt of `run`: done with the result its child wrote, or failed (pending again while it has
  /// retries left) with its one-line error.
  void record(const StoredRun& run, const Attempt& attempt);
  /// Heartbeats the leases of the runs in progress when the last beat is older than the options' heartbeat.
  void heartbeat(const std::vector<std::string>& ids);
  const ExecutorSummary& summary() const { return summary_; }
  void finish();

 private:
  std::string status() const;
  SweepStore& store_;
  std::string dir_;
  ExecutorOptions options_;
  ExecutorSummary summary_;
  std::unique_ptr<ProgressBar> bar_;
  int64_t finished_ = 0, timed_ = 0;
  double wall_ = 0, last_beat_ = 0;
};

/// Runs every pending run of `store` (in `dir`) on this machine, one at a time (in one RunSlot), until none is
/// left.
ExecutorSummary run_pending(SweepStore& store, const std::string& dir, const ExecutorOptions& options);

}  // namespace adze
