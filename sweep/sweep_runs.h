// A sweep's runs made concrete: every value checked by loading what it names, each run given its identity, and
// one run executed. A run's id is the XXH3-128 hash of everything its result depends on (its identity): the
// model file's bytes and input, the data spec, options and the bytes of the files it reads, the plan as it
// resolves against the model (a search run: the search's settings and budget instead), the pipeline as
// parsed, the target, the seed, what follows the compression (exports, verify, bench) and adze's version. Runs
// are deterministic, so equal ids are one run.
#pragma once

#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "sweep/sweep_file.h"

namespace adze {

struct PreparedRun {
  SweepRun run;
  nlohmann::ordered_json identity;  ///< what the id hashes
  std::string id;                   ///< 32 lowercase hex digits
};

/// Checks every value of every run before any work: models load (reference names resolve), plans resolve
/// against their models, pipelines parse, targets load, data loads for its model, a pipeline that trains has
/// data, and each export format's contract takes each plan. Error(kInvalidConfig) naming the sweep file, the
/// axis, the value and why. Runs with equal ids are kept once (the first).
std::vector<PreparedRun> prepare_runs(const SweepFile& sweep, bool progress);

/// XXH3-128 of `bytes`, as 32 hex digits.
std::string xxh128_hex(const std::string& bytes);

/// Executes one run into `run_dir` (which it creates). A search run first searches its plan within its budget
/// (run_dir/search: plan.json, the front, the search's state, from which a killed attempt resumes). Then the
/// model is compressed (run_dir/compressed), exported (model.<ext> beside it), each export verified against the
/// compressed model and, when the sweep benches, the model and each export timed side by side, each in a fresh
/// process of `adze` (the adze executable: `adze bench --child`).
/// Returns the run's result: its axes, the search's outcome, metrics before and after, size, the cost on its
/// target, the exports' sizes and verdicts, and the bench. Apart from the bench's timings (and a search ended by
/// its time_budget), equal runs give equal bytes. Error when a part fails, or when a metric after compression is
/// not a finite number. What follows compression and the data options come from the run's identity, so a run
/// executes the same wherever its spec is read from.
nlohmann::ordered_json execute_run(const PreparedRun& run, const std::string& run_dir, const std::string& adze,
                                   bool progress);

}  // namespace adze
