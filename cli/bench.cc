// adze bench EXPORTED... [--against ORIGINAL.pt]: latency side by side, each model in a fresh process of its own.
#include "exporters/bench.h"

#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "core/error.h"
#include "core/files.h"
#include "core/isa.h"
#include "core/progress.h"
#include "core/table.h"

namespace adze::cli {
namespace {

// Round medians of one row further apart than this ratio are reported as a noisy machine.
constexpr double kNoisyRounds = 1.2;

struct BenchOptions {
  std::vector<std::string> exported;
  std::string against, input_shape, input_dtype, activations = "dynamic";
  int64_t batch = 0;
  int runs = 100, warmup = 40, rounds = 1;
  std::vector<int> thread_counts;  // empty: --threads alone
  bool json = false, child = false, profile = false;
};

FreshBench fresh_bench(const BenchOptions& o, int threads) {
  FreshBench f;
  f.adze = std::filesystem::read_symlink("/proc/self/exe").string();
  f.warmup = o.warmup;
  f.runs = o.runs;
  f.threads = threads;
  f.activations = o.activations;
  f.profile = o.profile;
  return f;
}

RunnerOptions runner_options(const BenchOptions& o) {
  RunnerOptions r;
  r.packed.dynamic_activations = o.activations == "dynamic";
  r.threads = torch::get_num_threads();
  return r;
}

// The thread counts each model is timed at: --thread-counts, else --threads alone.
std::vector<int> thread_counts(const BenchOptions& o) {
  if (o.thread_counts.empty()) return {torch::get_num_threads()};
  std::vector<int> counts;
  for (int n : o.thread_counts) {
    if (n < 1 || n > kMaxThreads)
      throw Error(ErrorKind::kInvalidArgument, "--thread-counts: " + std::to_string(n) +
                                                   " is not a thread count (1 to " + std::to_string(kMaxThreads) + ")");
    if (std::find(counts.begin(), counts.end(), n) != counts.end())
      throw Error(ErrorKind::kInvalidArgument, "--thread-counts: " + std::to_string(n) + " is given twice");
    counts.push_back(n);
  }
  return counts;
}

void run_bench(const BenchOptions& o) {
  if (o.runs < 1 || o.warmup < 0 || o.rounds < 1)
    throw Error(ErrorKind::kInvalidArgument, "--runs and --rounds must be at least 1 and --warmup at least 0");
  const std::vector<int> counts = thread_counts(o);
  std::vector<std::string> paths;
  if (!o.against.empty()) paths.push_back(resolve_model_path(o.against));
  for (const auto& p : o.exported) paths.push_back(p);
  if (paths.empty()) throw Error(ErrorKind::kInvalidArgument, "give at least one exported model to bench");
  const RunnerOptions options = runner_options(o);

  if (o.child) {  // one model, this process: print its record
    if (o.input_shape.empty()) throw Error(ErrorKind::kInternal, "bench --child needs --input-shape");
    const InputSpec input{parse_shape(o.input_shape), o.input_dtype.empty() ? "float32" : o.input_dtype};
    std::cout
        << to_json(bench_in_this_process(paths.back(), bench_input(input), o.warmup, o.runs, options, o.profile)).dump()
        << "\n";
    return;
  }

  std::optional<InputSpec> given;
  if (!o.input_shape.empty())
    given = InputSpec{parse_shape(o.input_shape), o.input_dtype.empty() ? "float32" : o.input_dtype};
  const InputSpec input = common_bench_input(paths, options, given, o.batch);

  // Round after round, the models in turn, each at its thread counts one after the other: a burst of load on the
  // machine falls on every row alike.
  std::vector<BenchResult> results;
  const std::size_t rows = paths.size() * counts.size();
  ProgressBar bar("bench", static_cast<int64_t>(rows) * o.rounds, show_progress(o.json));
  int64_t done = 0;
  for (int round = 0; round < o.rounds; ++round)
    for (std::size_t i = 0; i < rows; ++i, ++done) {
      const std::string& path = paths[i / counts.size()];
      const int threads = counts[i % counts.size()];
      bar.update(done, std::filesystem::path(path).filename().string() +
                           (counts.size() > 1 ? " (" + std::to_string(threads) + " threads)" : ""));
      BenchResult r = bench_in_fresh_process(fresh_bench(o, threads), path, input);
      if (round == 0)
        results.push_back(std::move(r));
      else
        results[i].merge_round(r);
    }
  bar.finish();

  const double base = results.front().quantile(0.5);
  if (o.json) {
    std::cout << bench_report(results, input, o.runs, o.warmup, o.rounds).dump(2) << "\n";
    return;
  }
  std::string shape;
  for (int64_t d : input.shape) shape += (shape.empty() ? "" : "x") + std::to_string(d);
  std::string threads;
  for (int n : counts) threads += (threads.empty() ? "" : ", ") + std::to_string(n);
  std::cout << "CPU flags: " << cpu_flags() << "; adze kernels: " << to_string(active_isa()) << "; " << threads
            << " thread(s); input " << shape << " " << input.dtype << "; " << o.runs << " timed runs after " << o.warmup
            << " warm-up, each model in a fresh process"
            << (o.rounds > 1 ? ", " + std::to_string(o.rounds) + " rounds pooled" : std::string()) << "\n\n";
  const bool scaling = counts.size() > 1;
  Table t;
  t.add_column("model");
  t.add_column("runtime");
  if (scaling) t.add_column("threads", Table::Align::kRight);
  for (const char* h : {"median", "p10", "p90", "speed-up"}) t.add_column(h, Table::Align::kRight);
  const bool paired_column = scaling && o.rounds > 1;
  if (scaling) t.add_column("vs " + std::to_string(counts.front()) + " thr.", Table::Align::kRight);
  if (paired_column) t.add_column("paired", Table::Align::kRight);
  if (scaling) t.add_column("machine", Table::Align::kRight);
  if (scaling) t.add_column("hand-off", Table::Align::kRight);
  for (const char* h : {"cold start", "peak RSS"}) t.add_column(h, Table::Align::kRight);
  const std::vector<double> vs_first_threads = speedups_vs_first_threads(results);
  const std::vector<double> paired = paired_speedups_vs_first_threads(results);
  const std::vector<double> machine = machine_speedups_vs_first_threads(results);
  for (std::size_t i = 0; i < results.size(); ++i) {
    const BenchResult& r = results[i];
    std::vector<std::string> row{std::filesystem::path(r.path).filename().string(), r.runtime_name};
    if (scaling) row.push_back(std::to_string(counts[i % counts.size()]));
    for (const std::string& cell : {human_seconds(r.quantile(0.5)), human_seconds(r.quantile(0.1)),
                                    human_seconds(r.quantile(0.9)), fixed(base / r.quantile(0.5), 2) + "x"})
      row.push_back(cell);
    if (scaling) row.push_back(fixed(vs_first_threads[i], 2) + "x");
    if (paired_column) row.push_back(fixed(paired[i], 2) + "x");
    if (scaling) row.push_back(std::isnan(machine[i]) ? "-" : fixed(machine[i], 2) + "x");
    if (scaling) row.push_back(r.handoff() > 0 ? human_seconds(r.handoff()) : "-");
    row.push_back(human_seconds(r.cold_start_seconds()));
    row.push_back(human_bytes(static_cast<double>(r.peak_rss_kib) * 1024));
    t.add_row(row);
  }
  t.print(std::cout);
  std::cout << "\nspeed-up: the first row's median over the row's; "
            << (scaling ? "vs " + std::to_string(counts.front()) + " thr.: the model's median at " +
                              std::to_string(counts.front()) + " thread(s) over the row's; "
                        : std::string())
            << (paired_column ? "paired: the same, the median of the rounds' ratios; " : "")
            << (scaling ? "machine: the same ratio (paired likewise) for arithmetic that needs no memory and no "
                          "synchronization, timed in the same processes: the cores' worth the machine gave, which "
                          "bounds the model's; hand-off: a cache line's round trip between two of the row's "
                          "threads, timed in the same processes (the median round), which every barrier and every "
                          "row one thread reads from another pays; "
                        : "")
            << "cold start: open + first output" << (o.rounds > 1 ? " (the median round)" : "") << "\n";
  for (const auto& r : results) {
    if (!r.profile.is_array()) continue;
    std::cout << "\n"
              << std::filesystem::path(r.path).filename().string() << ", " << r.threads
              << " thread(s), op by op (mean of " << o.runs << " runs):\n";
    Table p;
    p.add_column("op");
    p.add_column("layer");
    p.add_column("kernels");
    p.add_column("time", Table::Align::kRight);
    p.add_column("share", Table::Align::kRight);
    double total = 0;
    for (const auto& n : r.profile) total += n["seconds"].get<double>();
    for (const auto& n : r.profile)
      p.add_row({n["op"].get<std::string>(), n["layer"].get<std::string>(), n.value("kernels", ""),
                 human_seconds(n["seconds"].get<double>()), percent(n["seconds"].get<double>() / total, 1)});
    p.add_rule();
    p.add_row({"total", "", "", human_seconds(total), ""});
    p.print(std::cout);
  }
  // Where one row's rounds disagree by more than a fifth, the machine's speed moved during the bench.
  for (const auto& r : results)
    if (r.round_spread() > kNoisyRounds) {
      const auto [lo, hi] = std::minmax_element(r.round_medians.begin(), r.round_medians.end());
      std::cout << "note: " << std::filesystem::path(r.path).filename().string()
                << (counts.size() > 1 ? " at " + std::to_string(r.threads) + " thread(s)" : std::string())
                << ": its round medians ranged " << human_seconds(*lo) << " to " << human_seconds(*hi)
                << "; the machine's load changed during the bench, so compare its rows with care (or rerun)\n";
    }
  // Threads beyond the CPUs a row's process could use wait on each other: its time says little about the model.
  for (const auto& r : results)
    if (r.cpus > 0 && r.threads > r.cpus)
      std::cout << "note: " << std::filesystem::path(r.path).filename().string() << " ran " << r.threads
                << " threads on " << r.cpus << " usable CPU(s) (its process's CPU affinity): they share CPUs and wait "
                << "on each other, so its row is not a measure of the model\n";
  for (std::size_t i = 0; i < results.size(); i += counts.size())  // once per model
    if (const BenchResult& r = results[i];
        r.runtime.is_object() && r.runtime.contains("float_layers") && !r.runtime["float_layers"].empty())
      std::cout << std::filesystem::path(r.path).filename().string() << ": " << r.runtime["float_layers"].size()
                << " layer(s) not on the integer kernels (see --json: runtime.float_layers)\n";
}

}  // namespace

void setup_bench(CLI::App& app) {
  auto o = std::make_shared<BenchOptions>();
  auto* sub = app.add_subcommand("bench", "Time exported models side by side, each in its real runtime");
  sub->footer(
      "Runs each model in a fresh process of its own: .adze in adze's runtime, .onnx in ONNX Runtime, .pt in\n"
      "libtorch, a c-header directory as the compiled program. Each gets the same input (standard normal floats\n"
      "from seed 0; token ids 0,1,0,1,... for int64 inputs), one first call, --warmup untimed calls and --runs\n"
      "timed ones. Reported: median, p10 and p90 latency, the speed-up of each row over the first (the first\n"
      "row's median over the row's), cold start (open + first output, in the fresh process) and peak resident\n"
      "memory. Speeds are only meaningful side by side: compare rows of one run, on one machine.\n"
      "--rounds N times the models in turn N times, each time in fresh processes, and pools every round's timed\n"
      "runs (cold start: the median round): on a shared or virtual machine, whose neighbours come and go, a burst\n"
      "of their load then falls on every row alike instead of on one. A row whose round medians lie more than a\n"
      "fifth apart gets a note under the table (JSON: round_medians_seconds): the machine's speed moved.\n"
      "The input shape comes from the first file that records one (packed, ONNX) or --input-shape; --batch\n"
      "sets its batch, which a model exported for another batch refuses (export with --batch N).\n"
      "--thread-counts 1,2 times each model at one and at two threads, one right after the other in every round,\n"
      "and adds the column 'vs 1 thr.': how much faster the model runs than at the first count (pooled medians),\n"
      "and with --rounds the column 'paired': the median over the rounds of each round's ratio, whose two sides\n"
      "ran one right after the other, so that a slow spell of a shared machine falls on both. The column\n"
      "'machine' is the same ratio for a probe timed in the same processes (each thread the same arithmetic, in\n"
      "registers, with no memory traffic and no synchronization): how many cores' worth the machine gave. A\n"
      "virtual machine whose CPUs share physical cores with each other or with a neighbour gives less than its\n"
      "CPU count, and no model can scale past what it gave. The column 'hand-off' is a cache line's round trip\n"
      "between two threads, timed in the same processes: a model split over threads pays it at every barrier and\n"
      "on every row one thread reads from another, so its speed-up falls as the hand-off grows (on a virtual\n"
      "machine it moves with where the host puts the CPUs). (--threads sets the one count of a bench without it.)\n"
      "On more than one thread, adze's runtime spends a model's first 38 calls timing how many of its ops to\n"
      "split over the threads (all, none, or those before a cut), and keeps the fastest: keep --warmup at 38 or\n"
      "more.\n\n"
      "Examples:\n"
      "  adze bench cnn.adze cnn.onnx --against fmnist-cnn --threads 1\n"
      "  adze bench cnn.adze cnn.onnx --against fmnist-cnn --threads 2 --runs 300 --rounds 5\n"
      "  adze bench resnet18.adze --thread-counts 1,2 --runs 300 --rounds 5\n"
      "  adze bench gpt.adze --against fortune-gpt --json");
  sub->add_option("exported", o->exported, "exported models (.adze, .onnx, .pt, c-header directory)");
  sub->add_option("--against", o->against, "the original model (TorchScript path or reference name), the first row");
  sub->add_option("--batch", o->batch, "samples per call (default: the recorded input's batch)")
      ->check(CLI::Validator(
          [](std::string& v) {
            std::size_t used = 0;
            try {
              if (std::stoll(v, &used) >= 1 && used == v.size()) return std::string();
            } catch (const std::exception&) {
            }
            return "'" + v + "' is not a batch (a whole number, at least 1)";
          },
          "N >= 1"));
  sub->add_option("--input-shape", o->input_shape, "input shape with batch, when no file records it (1x3x64x64)");
  sub->add_option("--input-dtype", o->input_dtype, "float32 or int64 (with --input-shape)");
  sub->add_option("--runs", o->runs, "timed calls per model")->capture_default_str();
  sub->add_option("--warmup", o->warmup, "untimed calls before them")->capture_default_str();
  sub->add_option("--rounds", o->rounds, "time the models in turn this many times, pooling the runs")
      ->capture_default_str();
  sub->add_option("--activations", o->activations,
                  "adze runtime, weight-only layers: dynamic (int8 per row on the fly) or float (fp32)")
      ->check(CLI::IsMember({"dynamic", "float"}))
      ->capture_default_str();
  sub->add_option("--thread-counts", o->thread_counts,
                  "time each model at each of these thread counts, in turn within every round (1,2)")
      ->delimiter(',');
  sub->add_flag("--profile", o->profile, "also time the adze runtime's models op by op (--runs more runs)");
  sub->add_flag("--json", o->json, "print JSON");
  sub->add_flag("--child", o->child, "(internal) time one model in this process and print its record")->group("");
  sub->callback([o] { run_bench(*o); });
}

}  // namespace adze::cli
