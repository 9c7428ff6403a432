#include "exporters/bench.h"

#include <sys/resource.h>
#include <sys/wait.h>
#include <torch/torch.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <map>
#include <random>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "core/isa.h"
#include "core/process_settings.h"
#include "core/shape.h"
#include "runtime/machine_probe.h"

namespace adze {

double BenchResult::quantile(double q) const {
  if (seconds.empty()) return NAN;
  std::vector<double> sorted = seconds;
  std::sort(sorted.begin(), sorted.end());
  const double at = q * static_cast<double>(sorted.size() - 1);
  const auto below = static_cast<std::size_t>(std::floor(at));
  const std::size_t above = std::min(below + 1, sorted.size() - 1);
  return sorted[below] + (at - static_cast<double>(below)) * (sorted[above] - sorted[below]);
}

namespace {

double median_of(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

}  // namespace

double BenchResult::cold_start_seconds() const {
  return cold_starts.empty() ? open_seconds + first_seconds : median_of(cold_starts);
}

void BenchResult::merge_round(const BenchResult& next) {
  if (cold_starts.empty()) {
    cold_starts.push_back(open_seconds + first_seconds);
    round_medians.push_back(quantile(0.5));
    round_probes.push_back(probe_seconds);
    round_handoffs.push_back(handoff_seconds);
  }
  cold_starts.push_back(next.open_seconds + next.first_seconds);
  round_medians.push_back(next.quantile(0.5));
  round_probes.push_back(next.probe_seconds);
  round_handoffs.push_back(next.handoff_seconds);
  seconds.insert(seconds.end(), next.seconds.begin(), next.seconds.end());
  peak_rss_kib = std::max(peak_rss_kib, next.peak_rss_kib);
}

double BenchResult::handoff() const { return round_handoffs.empty() ? handoff_seconds : median_of(round_handoffs); }

double BenchResult::round_spread() const {
  if (round_medians.size() < 2) return 1.0;
  const auto [lo, hi] = std::minmax_element(round_medians.begin(), round_medians.end());
  return *hi / *lo;
}

nlohmann::json to_json(const BenchResult& r) {
  return {{"path", r.path},
          {"format", r.format},
          {"runtime_name", r.runtime_name},
          {"open_seconds", r.open_seconds},
          {"first_seconds", r.first_seconds},
          {"seconds", r.seconds},
          {"peak_rss_kib", r.peak_rss_kib},
          {"threads", r.threads},
          {"cpus", r.cpus},
          {"probe_seconds", r.probe_seconds},
          {"handoff_seconds", r.handoff_seconds},
          {"runtime", r.runtime},
          {"profile", r.profile}};
}

BenchResult bench_result_from_json(const nlohmann::json& j, const std::string& where) {
  try {
    BenchResult r;
    r.path = j.at("path").get<std::string>();
    r.format = j.at("format").get<std::string>();
    r.runtime_name = j.at("runtime_name").get<std::string>();
    r.open_seconds = j.at("open_seconds").get<double>();
    r.first_seconds = j.at("first_seconds").get<double>();
    r.seconds = j.at("seconds").get<std::vector<double>>();
    r.peak_rss_kib = j.at("peak_rss_kib").get<int64_t>();
    r.threads = j.value("threads", 0);
    r.cpus = j.value("cpus", 0);
    r.probe_seconds = j.value("probe_seconds", 0.0);
    r.handoff_seconds = j.value("handoff_seconds", 0.0);
    r.runtime = j.at("runtime");
    r.profile = j.value("profile", nlohmann::json());
    return r;
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kInternal, where + ": a malformed bench record (" + first_line_of(e) + ")");
  }
}

at::Tensor bench_input(const InputSpec& spec) {
  const std::vector<int64_t> shape(spec.shape.begin(), spec.shape.end());
  if (parse_dtype(spec.dtype) == at::kLong)
    return torch::arange(shape_numel(spec.shape), torch::kLong).remainder(2).reshape(shape);
  torch::manual_seed(0);
  return torch::randn(shape);
}

BenchResult bench_in_this_process(const std::string& path, const at::Tensor& x, int warmup, int runs,
                                  const RunnerOptions& options, bool profile) {
  BenchResult r;
  r.path = path;
  r.format = format_of(path);
  const auto start = std::chrono::steady_clock::now();
  const std::unique_ptr<Runner> runner = open_runner(path, options);
  r.open_seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
  std::vector<double> probes, handoffs;
  const auto probe = [&] {
    for (int i = 0; i < 3; ++i) {
      probes.push_back(runtime::machine_probe_seconds());
      handoffs.push_back(runtime::handoff_probe_seconds());
    }
  };
  probe();
  BenchTimes t;
  try {
    t = runner->bench(x, warmup, runs);
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {  // the model cannot take this input: the user's shape, not adze's fault
    throw Error(ErrorKind::kInvalidArgument, "the model fails on an input of shape " +
                                                 shape_to_string(x.sizes().vec()) + ": " +
                                                 first_line_of(std::runtime_error(e.what_without_backtrace())));
  } catch (const std::exception& e) {  // TorchScript's interpreter reports the same as a runtime_error
    throw Error(ErrorKind::kInvalidArgument,
                "the model fails on an input of shape " + shape_to_string(x.sizes().vec()) + ": " + first_line_of(e));
  }
  probe();
  r.probe_seconds = median_of(probes);
  r.handoff_seconds = median_of(handoffs);
  r.open_seconds += t.open_seconds;
  r.first_seconds = t.first_seconds;
  r.seconds = t.seconds;
  r.runtime_name = runner->runtime_name();
  r.threads = options.threads;
  r.cpus = static_cast<int>(usable_cpus().size());
  r.runtime = runner->describe();
  if (profile) r.profile = runner->profile(x, runs);
  rusage usage{};
  getrusage(RUSAGE_SELF, &usage);
  r.peak_rss_kib = t.peak_rss_kib > 0 ? t.peak_rss_kib : usage.ru_maxrss;
  return r;
}

InputSpec common_bench_input(const std::vector<std::string>& paths, const RunnerOptions& options,
                             std::optional<InputSpec> given, int64_t batch) {
  std::optional<InputSpec> input = std::move(given);
  if (input) parse_dtype(input->dtype);  // an unknown dtype stops here, before any child starts
  std::vector<int64_t> batches;
  for (const auto& p : paths) {
    const std::unique_ptr<Runner> r = open_runner(p, options);
    if (!input && r->input()) input = r->input();
    batches.push_back(r->batch());
  }
  if (!input)
    throw Error(ErrorKind::kInvalidArgument,
                "none of the models records its input shape: give --input-shape (e.g. 1x1x28x28)");
  if (batch > 0) {
    input->shape[0] = batch;
    double elements = 1;  // refused here, before any child starts, naming the flag the user gave
    for (int64_t d : input->shape) elements *= static_cast<double>(d);
    if (elements > static_cast<double>(kMaxShapeElements))
      throw Error(ErrorKind::kInvalidArgument, "--batch " + std::to_string(batch) + ": an input of " +
                                                   shape_to_string(input->shape) + " holds more than the " +
                                                   std::to_string(kMaxShapeElements) + " elements an input may hold");
  }
  for (std::size_t i = 0; i < paths.size(); ++i)
    if (batches[i] > 0 && batches[i] != input->shape[0])
      throw Error(ErrorKind::kInvalidArgument,
                  "'" + paths[i] + "' was exported for batch " + std::to_string(batches[i]) +
                      ", the bench runs batch " + std::to_string(input->shape[0]) + " (export it with --batch " +
                      std::to_string(input->shape[0]) + ", or give --batch " + std::to_string(batches[i]) + ")");
  return *input;
}

namespace {

// Per model (path), its first row: the first thread count it was timed at.
std::map<std::string, const BenchResult*> first_rows(const std::vector<BenchResult>& results) {
  std::map<std::string, const BenchResult*> first;
  for (const auto& r : results) first.emplace(r.path, &r);
  return first;
}

// The median over the rounds of ratio(a[k], b[k]); NaN unless a and b hold the same two or more rounds and every
// ratio is a number.
template <class Ratio>
double median_over_rounds(const std::vector<double>& a, const std::vector<double>& b, Ratio ratio) {
  if (a.size() < 2 || a.size() != b.size()) return NAN;
  std::vector<double> ratios;
  for (std::size_t k = 0; k < a.size(); ++k) {
    ratios.push_back(ratio(a[k], b[k]));
    if (std::isnan(ratios.back())) return NAN;
  }
  return median_of(ratios);
}

}  // namespace

std::vector<double> speedups_vs_first_threads(const std::vector<BenchResult>& results) {
  const auto first = first_rows(results);
  std::vector<double> out;
  for (const auto& r : results) out.push_back(first.at(r.path)->quantile(0.5) / r.quantile(0.5));
  return out;
}

std::vector<double> paired_speedups_vs_first_threads(const std::vector<BenchResult>& results) {
  const auto first = first_rows(results);
  std::vector<double> out = speedups_vs_first_threads(results);
  for (std::size_t i = 0; i < results.size(); ++i) {
    const double paired = median_over_rounds(first.at(results[i].path)->round_medians, results[i].round_medians,
                                             [](double a, double b) { return a / b; });
    if (!std::isnan(paired)) out[i] = paired;
  }
  return out;
}

std::vector<double> machine_speedups_vs_first_threads(const std::vector<BenchResult>& results) {
  const auto first = first_rows(results);
  std::vector<double> out;
  for (const auto& r : results) {
    const BenchResult& f = *first.at(r.path);
    // Cores' worth of arithmetic at r's threads over f's, from one pair of probe times.
    const auto cores = [&](double probe_f, double probe_r) {
      if (probe_f <= 0 || probe_r <= 0 || f.threads < 1 || r.threads < 1) return static_cast<double>(NAN);
      return static_cast<double>(r.threads) / f.threads * probe_f / probe_r;
    };
    const double paired = median_over_rounds(f.round_probes, r.round_probes, cores);
    out.push_back(std::isnan(paired) ? cores(f.probe_seconds, r.probe_seconds) : paired);
  }
  return out;
}

nlohmann::json bench_report(const std::vector<BenchResult>& results, const InputSpec& input, int runs, int warmup,
                            int rounds) {
  const double base = results.front().quantile(0.5);
  const std::vector<double> vs_first_threads = speedups_vs_first_threads(results);
  const std::vector<double> paired = paired_speedups_vs_first_threads(results);
  const std::vector<double> machine = machine_speedups_vs_first_threads(results);
  std::set<std::string> models;
  for (const auto& r : results) models.insert(r.path);
  const bool several_counts = models.size() < results.size();
  nlohmann::json rows = nlohmann::json::array();
  for (std::size_t i = 0; i < results.size(); ++i) {
    const BenchResult& r = results[i];
    nlohmann::json row = to_json(r);
    if (several_counts) {
      row["speedup_vs_first_threads"] = vs_first_threads[i];
      row["paired_speedup_vs_first_threads"] = paired[i];
      if (!std::isnan(machine[i])) row["machine_speedup_vs_first_threads"] = machine[i];
    }
    row.erase("seconds");
    row["median_seconds"] = r.quantile(0.5);
    row["p10_seconds"] = r.quantile(0.1);
    row["p90_seconds"] = r.quantile(0.9);
    row["speedup_vs_first"] = base / r.quantile(0.5);
    row["cold_start_seconds"] = r.cold_start_seconds();
    row["timed_runs"] = r.seconds.size();
    row["round_medians_seconds"] = r.round_medians;
    row["round_probes_seconds"] = r.round_probes;
    row["round_handoffs_seconds"] = r.round_handoffs;
    rows.push_back(row);
  }
  return {{"cpu_flags", cpu_flags()},
          {"isa", to_string(active_isa())},
          {"threads", results.front().threads > 0 ? results.front().threads : torch::get_num_threads()},
          {"input", {{"shape", input.shape}, {"dtype", input.dtype}}},
          {"runs", runs},
          {"rounds", rounds},
          {"warmup", warmup},
          {"rows", rows}};
}

BenchResult bench_in_fresh_process(const FreshBench& how, const std::string& path, const InputSpec& input) {
  const auto err =
      std::filesystem::temp_directory_path() / ("adze-bench-" + std::to_string(std::random_device{}()) + ".log");
  std::string shape;
  for (int64_t d : input.shape) shape += (shape.empty() ? "" : "x") + std::to_string(d);
  const std::string cmd = shell_quoted(how.adze) + " bench " + shell_quoted(path) + " --child --input-shape " + shape +
                          " --input-dtype " + input.dtype + " --runs " + std::to_string(how.runs) + " --warmup " +
                          std::to_string(how.warmup) + " --activations " + how.activations +
                          (how.profile ? " --profile" : "") + " --threads " + std::to_string(how.threads) + " -q 2> " +
                          shell_quoted(err.string());
  std::string out;
  FILE* pipe = nullptr;
  {
    const ChildCpus cpus;  // the child binds its own threads, on the CPUs this process was given
    pipe = popen(cmd.c_str(), "r");
  }
  if (!pipe) throw Error(ErrorKind::kInternal, "bench: cannot start '" + how.adze + "'");
  char buffer[4096];
  while (std::size_t n = std::fread(buffer, 1, sizeof buffer, pipe)) out.append(buffer, n);
  const int status = pclose(pipe);
  std::string message = std::filesystem::exists(err) ? read_file_text(err.string()) : "";
  std::error_code ec;
  std::filesystem::remove(err, ec);
  if (status != 0) {
    while (!message.empty() && message.back() == '\n') message.pop_back();
    const std::string prefix = "adze: error: ";
    if (message.rfind(prefix, 0) == 0) message = message.substr(prefix.size());
    throw Error(WIFEXITED(status) && WEXITSTATUS(status) == 2 ? ErrorKind::kInvalidArgument : ErrorKind::kInternal,
                "bench '" + path + "': " + message);
  }
  try {
    return bench_result_from_json(nlohmann::json::parse(out), "bench '" + path + "'");
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::kInternal, "bench '" + path + "': the child printed no record (" + first_line_of(e) + ")");
  }
}

}  // namespace adze
