#include "exporters/runner.h"

#include <chrono>

#include "core/error.h"
#include "exporters/exporter.h"

namespace adze {

at::Tensor Runner::run_by_layer(const at::Tensor&, std::map<std::string, at::Tensor>*,
                                const std::map<std::string, at::Tensor>*) {
  throw Error(ErrorKind::kUnsupported, "this format does not expose layer outputs");
}

BenchTimes Runner::bench(const at::Tensor& x, int warmup, int runs) {
  using Clock = std::chrono::steady_clock;
  const auto seconds_of = [](Clock::time_point start) {
    return std::chrono::duration<double>(Clock::now() - start).count();
  };
  BenchTimes t;
  auto start = Clock::now();
  (void)run(x);
  t.first_seconds = seconds_of(start);
  for (int i = 0; i < warmup; ++i) (void)run(x);
  for (int i = 0; i < runs; ++i) {
    start = Clock::now();
    (void)run(x);
    t.seconds.push_back(seconds_of(start));
  }
  return t;
}

std::string format_of(const std::string& path) {
  std::string known;
  for (const auto& entry : exporter_registry().entries()) {
    const auto exporter = entry.make(nlohmann::json::object());
    if (exporter->recognizes(path)) return entry.name;
    known += (known.empty() ? "" : ", ") + exporter->file_form();
  }
  throw Error(ErrorKind::kInvalidArgument, "cannot tell the format of '" + path + "' (expected " + known + ")");
}

std::unique_ptr<Runner> open_runner(const std::string& path, const RunnerOptions& options) {
  const std::string format = format_of(path);
  return exporter_registry().get(format, "open_runner").make(nlohmann::json::object())->open(path, options);
}

}  // namespace adze
