// What the adze sweep subcommands share (cli/sweep.cc, sweep_slurm.cc, sweep_status.cc): their options, the
// store a sweep file's runs are added to, and the table of counts.
#pragma once

#include <cstdint>
#include <map>
#include <string>

#include "sweep/sweep_store.h"

namespace adze::cli {

struct SweepOptions {
  std::string file, out, id;
  bool json = false, extend = false, csv = false, mpi = false;
  bool fresh_processes = false;  ///< run: a process per run instead of a worker kept between runs
  std::string plot;              ///< report: a directory for the Pareto plots
  double timeout_s = 0, stale_after_s = 600;
  int retries = 1;
  int cpus_per_task = 1, max_parallel = 0;  ///< Slurm
  std::string time, partition;              ///< Slurm
};

/// The store of `o.out` with the sweep file's runs added (made when missing); refuses a store made by another
/// sweep file, naming the axis or field that differs, unless --extend.
SweepStore open_store_with_runs(const SweepOptions& o, int64_t* runs_count, int64_t* added);
/// The runs per state, as a table, and where the store is.
void print_counts(const std::map<std::string, int64_t>& counts, const std::string& dir);

void run_slurm(const SweepOptions& o);    ///< adze sweep slurm
void run_collect(const SweepOptions& o);  ///< adze sweep collect
void run_report(const SweepOptions& o);   ///< adze sweep report
void run_status(const SweepOptions& o);   ///< adze sweep status

}  // namespace adze::cli
