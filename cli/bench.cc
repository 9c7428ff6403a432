// adze bench EXPORTED... [--against ORIGINAL.pt]: latency side by side, each model in a fresh process of its own.
#include "exporters/bench.h"

#include <torch/torch.h>

#include <filesystem>
#include <iostream>
#include <nlohmann/json.hpp>
#include <optional>

#include "cli/commands.h"
#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"
#include "core/table.h"
#include "runtime/isa.h"

namespace adze::cli {
namespace {

struct BenchOptions {
  std::vector<std::string> exported;
  std::string against, input_shape, input_dtype, activations = "dynamic";
  int64_t batch = 0;
  int runs = 100, warmup = 10, rounds = 1;
  bool json = false, child = false, profile = false;
};

FreshBench fresh_bench(const BenchOptions& o) {
  FreshBench f;
  f.adze = std::filesystem::read_symlink("/proc/self/exe").string();
  f.warmup = o.warmup;
  f.runs = o.runs;
  f.threads = torch::get_num_threads();
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

void run_bench(const BenchOptions& o) {
  if (o.runs < 1 || o.warmup < 0 || o.rounds < 1)
    throw Error(ErrorKind::kInvalidArgument, "--runs and --rounds must be at least 1 and --warmup at least 0");
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

  // Round after round, the models in turn: a burst of load on the machine falls on every row alike.
  std::vector<BenchResult> results;
  const auto total = static_cast<int64_t>(paths.size()) * o.rounds;
  ProgressBar bar("bench", total, show_progress(o.json));
  int64_t done = 0;
  for (int round = 0; round < o.rounds; ++round)
    for (std::size_t i = 0; i < paths.size(); ++i, ++done) {
      bar.update(done, std::filesystem::path(paths[i]).filename().string());
      BenchResult r = bench_in_fresh_process(fresh_bench(o), paths[i], input);
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
  std::cout << "CPU flags: " << runtime::cpu_flags() << "; adze kernels: " << runtime::to_string(runtime::active_isa())
            << "; " << torch::get_num_threads() << " thread(s); input " << shape << " " << input.dtype << "; " << o.runs
            << " timed runs after " << o.warmup << " warm-up, each model in a fresh process"
            << (o.rounds > 1 ? ", " + std::to_string(o.rounds) + " rounds pooled" : std::string()) << "\n\n";
  Table t;
  t.add_column("model");
  t.add_column("runtime");
  for (const char* h : {"median", "p10", "p90", "speed-up", "cold start", "peak RSS"})
    t.add_column(h, Table::Align::kRight);
  for (const auto& r : results)
    t.add_row({std::filesystem::path(r.path).filename().string(), r.runtime_name, human_seconds(r.quantile(0.5)),
               human_seconds(r.quantile(0.1)), human_seconds(r.quantile(0.9)), fixed(base / r.quantile(0.5), 2) + "x",
               human_seconds(r.cold_start_seconds()), human_bytes(static_cast<double>(r.peak_rss_kib) * 1024)});
  t.print(std::cout);
  std::cout << "\nspeed-up: the first row's median over the row's; cold start: open + first output"
            << (o.rounds > 1 ? " (the median round)" : "") << "\n";
  for (const auto& r : results) {
    if (!r.profile.is_array()) continue;
    std::cout << "\n"
              << std::filesystem::path(r.path).filename().string() << ", op by op (mean of " << o.runs << " runs):\n";
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
  for (const auto& r : results)
    if (r.runtime.is_object() && r.runtime.contains("float_layers") && !r.runtime["float_layers"].empty())
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
      "of their load then falls on every row alike instead of on one.\n"
      "The input shape comes from the first file that records one (packed, ONNX) or --input-shape; --batch\n"
      "sets its batch, which a model exported for another batch refuses (export with --batch N).\n\n"
      "Examples:\n"
      "  adze bench cnn.adze cnn.onnx --against fmnist-cnn --threads 1\n"
      "  adze bench cnn.adze cnn.onnx --against fmnist-cnn --threads 2 --runs 300 --rounds 5\n"
      "  adze bench gpt.adze --against fortune-gpt --json");
  sub->add_option("exported", o->exported, "exported models (.adze, .onnx, .pt, c-header directory)");
  sub->add_option("--against", o->against, "the original model (TorchScript path or reference name), the first row");
  sub->add_option("--batch", o->batch, "samples per call (default: the recorded input's batch)")
      ->check(CLI::PositiveNumber);
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
  sub->add_flag("--profile", o->profile, "also time the adze runtime's models op by op (--runs more runs)");
  sub->add_flag("--json", o->json, "print JSON");
  sub->add_flag("--child", o->child, "(internal) time one model in this process and print its record")->group("");
  sub->callback([o] { run_bench(*o); });
}

}  // namespace adze::cli
