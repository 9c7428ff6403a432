// Runs a store's pending runs on this machine, one after another, each in a child process of its own (the
// adze binary's `sweep run-one DIR ID`, which executes the run and writes DIR/runs/ID/result.json atomically).
// This process is the store's only writer: it leases each run (host, pid, heartbeat), records each attempt in
// one transaction, and bounds each child by a timeout and the run by its retries. A child dies with its parent
// (PR_SET_PDEATHSIG), so a killed sweep leaves no run half-done behind its lease; a result a child finished
// before the sweep died is adopted on resume, not run again.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

#include "sweep/sweep_store.h"

namespace adze {

struct ExecutorOptions {
  std::vector<std::string> child_command;  ///< argv of the child, the run's id appended
  double timeout_s = 0;                    ///< per attempt; 0: none
  int retries = 1;                         ///< attempts after the first, for a crash, a timeout or an error
  double heartbeat_s = 5;
  bool progress = true;
};

struct ExecutorSummary {
  int64_t done = 0, failed = 0, adopted = 0, attempts = 0;
};

/// DIR/runs/ID: where a run's artifacts, result.json and log.txt live.
std::string run_directory(const std::string& dir, const std::string& id);

/// Runs every pending run of `store` (in `dir`) until none is left.
ExecutorSummary run_pending(SweepStore& store, const std::string& dir, const ExecutorOptions& options);

}  // namespace adze
