// Timing an exported model in its real runtime (a Runner), as `adze bench` does in a fresh process per model:
// open, first output, warm-up, timed runs, peak memory. Latency figures are only ever compared side by side,
// measured in one `adze bench` run on one machine.
#pragma once

#include <ATen/core/Tensor.h>

#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "exporters/runner.h"

namespace adze {

struct BenchResult {
  std::string path, format, runtime_name;
  double open_seconds = 0;            ///< opening the file in its runtime (with ONNX Runtime: creating the session)
  double first_seconds = 0;           ///< the first output after opening
  std::vector<double> seconds;        ///< each timed run
  int64_t peak_rss_kib = 0;           ///< peak resident memory of the process that ran the model
  int threads = 0;                    ///< the compute threads it ran with
  int cpus = 0;                       ///< the CPUs its process could use (core/process_settings.h: usable_cpus)
  nlohmann::json runtime;             ///< Runner::describe()
  nlohmann::json profile;             ///< Runner::profile(), when asked for
  std::vector<double> cold_starts;    ///< open + first output of each round merged in (merge_round)
  std::vector<double> round_medians;  ///< the median of each round's timed runs (merge_round)
  /// runtime::machine_probe_seconds() at this row's thread count in the same process, the median of three runs
  /// before the model's first output and three after its timed runs (0: not measured).
  double probe_seconds = 0;
  std::vector<double> round_probes;  ///< probe_seconds of each round merged in (merge_round)
  /// runtime::handoff_probe_seconds() in the same process, the median of three runs before the model's first
  /// output and three after its timed runs (0: one thread, or not measured).
  double handoff_seconds = 0;
  std::vector<double> round_handoffs;  ///< handoff_seconds of each round merged in (merge_round)
  /// handoff_seconds, or the median over the merged rounds.
  double handoff() const;
  /// The q-quantile of the timed runs (linear between order statistics), q in [0, 1].
  double quantile(double q) const;
  /// Open + first output: the median over the merged rounds, or this one run's.
  double cold_start_seconds() const;
  /// Pools another round of the same model (a fresh process of its own): its timed runs join these, its cold
  /// start joins cold_starts, its median round_medians, its probes round_probes and round_handoffs, the peak
  /// memory is the larger;
  /// the profile stays the first round's.
  void merge_round(const BenchResult& next);
  /// The largest round median over the smallest, 1 with one round: how much the machine's speed moved while
  /// this row was timed.
  double round_spread() const;
};

nlohmann::json to_json(const BenchResult& r);
/// Error(kInternal) naming `where` for a malformed record.
BenchResult bench_result_from_json(const nlohmann::json& j, const std::string& where);

/// The input a bench feeds: standard normal floats from seed 0, or token ids 0, 1, 0, 1, ... for int64 inputs
/// (any vocabulary has those), of shape `spec.shape`.
at::Tensor bench_input(const InputSpec& spec);

/// Opens `path` (timed), runs it once on x (timed), `warmup` more times, then `runs` timed times, in this
/// process; the peak RSS is this process's, or the runtime's own process's where it runs in another one. With
/// `profile`, then also the runner's op-by-op profile over `runs` more runs.
BenchResult bench_in_this_process(const std::string& path, const at::Tensor& x, int warmup, int runs,
                                  const RunnerOptions& options, bool profile = false);

/// How bench_in_fresh_process times a model.
struct FreshBench {
  std::string adze;  ///< the adze executable that times it (`adze bench --child`)
  int warmup = 10, runs = 100, threads = 1;
  std::string activations = "dynamic";  ///< adze runtime, weight-only layers: dynamic or float
  bool profile = false;
};

/// Times `path` on the bench input of `input` in a fresh process of its own (`how.adze bench --child`), so that
/// no model warms caches or allocators for another. Error(kInvalidArgument) when the child refused the file
/// (exit 2), else Error(kInternal), naming the file and the child's one-line error.
BenchResult bench_in_fresh_process(const FreshBench& how, const std::string& path, const InputSpec& input);

/// The input every model of one bench is timed on. Opens each model first, so that a file that is missing,
/// corrupt or of no known format stops the bench before any timing: `given` when set, else the first input a
/// file records; `batch` > 0 sets its batch. Error(kInvalidArgument) when no input is known or a model was
/// exported for another batch.
InputSpec common_bench_input(const std::vector<std::string>& paths, const RunnerOptions& options,
                             std::optional<InputSpec> given, int64_t batch);

/// Per row, the median of the same model's first row (its first thread count) over the row's: how much faster the
/// model runs at this row's thread count than at the first.
std::vector<double> speedups_vs_first_threads(const std::vector<BenchResult>& results);
/// The same ratio paired by round: per row, the median over the rounds of the first row's round median over this
/// row's in the same round. Every round times a model at each count one right after the other, so a spell in
/// which the machine slows (a neighbour on a shared host) falls on both sides of a round's ratio instead of on
/// one row's pool. The pooled ratio where there is one round.
std::vector<double> paired_speedups_vs_first_threads(const std::vector<BenchResult>& results);
/// What the machine gave, paired the same way: per row, the number of cores' worth of arithmetic at the row's
/// thread count over the first row's, from the machine probe timed in the same processes (threads over first
/// threads, times the first row's probe time over the row's; the median over the rounds). A model's speed-up
/// over its first row is bounded by it. NaN where a row has no probe.
std::vector<double> machine_speedups_vs_first_threads(const std::vector<BenchResult>& results);

/// One bench's results side by side, as `adze bench --json` prints them: the CPU, the input, and a row per
/// model with its median, p10, p90, speed-up over the first row and cold start.
/// Every round's timed runs are pooled: `runs` is per round, each row's "timed_runs" all of them.
/// Where a model was timed at several thread counts (rows of the same path), each row also has
/// "speedup_vs_first_threads": the median of that model's first row over the row's, and
/// "machine_speedup_vs_first_threads" (machine_speedups_vs_first_threads).
nlohmann::json bench_report(const std::vector<BenchResult>& results, const InputSpec& input, int runs, int warmup,
                            int rounds = 1);

}  // namespace adze
