// Runners: one way to run any exported model. Each exporter opens its own format (Exporter::open) into a Runner
// that runs it in its real runtime: the packed file in adze's runtime, ONNX in ONNX Runtime, TorchScript in
// libtorch, a c-header directory as the compiled C program. `adze verify` and `adze bench` go through
// open_runner() and never branch on the format.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"
#include "runtime/packed_model.h"

namespace adze {

struct RunnerOptions {
  packed::RunOptions packed;             ///< how the packed runtime computes (integer kernels, activations)
  std::string ort_optimization = "all";  ///< ONNX Runtime's graph optimization level
  int threads = 1;                       ///< intra-op threads of runtimes in another process (ONNX Runtime)
};

/// What Runner::bench measured, in seconds.
struct BenchTimes {
  double open_seconds = 0;      ///< set-up the runtime does inside bench (ONNX Runtime's session), beyond open()
  double first_seconds = 0;     ///< the first call
  std::vector<double> seconds;  ///< each timed call, after the warm-up
  int64_t peak_rss_kib = 0;     ///< the peak memory of the runtime's own process, where it runs in another one
};

class Runner {
 public:
  virtual ~Runner() = default;
  /// The runtime that runs the file, for reports ("adze runtime", "ONNX Runtime", "libtorch", ...).
  virtual std::string runtime_name() const = 0;
  /// The input the file records (shape with the exported batch, dtype), when it records one.
  virtual std::optional<InputSpec> input() const { return std::nullopt; }
  /// The batch the exported graph was traced with, or 0 when its graph takes any batch.
  virtual int64_t batch() const = 0;
  /// Whether run() takes only whole multiples of batch() samples (ONNX); otherwise it cuts and pads itself.
  virtual bool whole_batches_only() const { return false; }
  /// The outputs for every sample of x, [N, ...] as float32.
  virtual at::Tensor run(const at::Tensor& x) = 0;
  /// Whether run_by_layer() gives every layer's output.
  virtual bool exposes_layers() const { return false; }
  /// run() that also fills every layer's output, keyed as model/tapped_graph.h keys the simulation's. With
  /// `from` (the simulation's layer outputs for x, one batch), each layer is computed from from's values of the
  /// layers before it (PackedModel::forward): its error alone, not what the layers before it passed on.
  /// Error(kUnsupported) where exposes_layers() is false.
  virtual at::Tensor run_by_layer(const at::Tensor& x, std::map<std::string, at::Tensor>* layers,
                                  const std::map<std::string, at::Tensor>* from = nullptr);
  /// A first call on x, `warmup` untimed calls, then `runs` timed ones (this process's wall clock around run()).
  virtual BenchTimes bench(const at::Tensor& x, int warmup, int runs);
  /// Where the time goes, op by op ([{"op", "layer", "integer", "seconds"}], mean over `runs` runs of x), where
  /// the runtime can say (the packed runtime), else null.
  virtual nlohmann::json profile(const at::Tensor& x, int runs) { return nullptr; }
  /// What a report should say about how the runtime ran the model (the packed runtime: which layers ran on
  /// the integer kernels, and why the others did not), or null.
  virtual nlohmann::json describe() const { return nullptr; }
};

/// The exporter's name whose format `path` is ("packed" for .adze, ...): Error(kInvalidArgument) listing the
/// known forms when none recognizes it.
std::string format_of(const std::string& path);
/// Opens `path` with its format's runner: Error(kIo) for an unreadable or corrupt file.
std::unique_ptr<Runner> open_runner(const std::string& path, const RunnerOptions& options = {});

}  // namespace adze
