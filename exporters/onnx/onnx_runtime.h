// Running an ONNX model in ONNX Runtime: onnxruntime-node (CPU) through exporters/onnx/run_ort.js, the
// runtime adze's ONNX exports are checked in. scripts/install-ort.sh installs the module into build/ort;
// ADZE_ORT_MODULE (a path) overrides where it is.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <string>
#include <vector>

#include "exporters/runner.h"

namespace adze {

/// Runs `model`, exported with batch `batch`, on every sample of `x` (float32 or int64; the number of samples a
/// multiple of `batch`), and returns all outputs concatenated, flat, as float32. `optimization` is ONNX
/// Runtime's graph optimization level: "all" (its default, what a deployment runs: QDQ pairs fused into integer
/// kernels), "extended", "basic" (constant folding only: the graph's own semantics) or "disabled".
/// Error(kIo) when node or the module is missing, Error(kInvalidArgument) with ONNX Runtime's message when it
/// refuses the model.
at::Tensor run_in_onnx_runtime(const std::string& model, const at::Tensor& x, int64_t batch,
                               const std::string& optimization = "all", int threads = 1);

/// Times `model` on one batch x in ONNX Runtime: session creation, the first run, `warmup` untimed runs and
/// `runs` timed ones, measured inside the node process (its start is not counted), with the node process's peak
/// resident memory.
BenchTimes bench_in_onnx_runtime(const std::string& model, const at::Tensor& x, const std::string& optimization,
                                 int threads, int warmup, int runs);

/// The graph ONNX Runtime runs for `model` after its graph optimizations at `optimization` (its
/// optimizedModelFilePath), in summary.
struct OrtGraph {
  std::map<std::string, int> ops;          ///< op type → nodes
  std::vector<std::string> float_weights;  ///< weights whose codes ("NAME.codes") are still dequantized to float
};
OrtGraph ort_optimized_graph(const std::string& model, const std::string& optimization = "all");

/// The ONNX model's input as its graph declares it (first input: shape with the exported batch, dtype);
/// Error(kIo) when the file is not an ONNX model.
InputSpec onnx_input(const std::string& model);

/// The runner of .onnx files: ONNX Runtime, through node.
std::unique_ptr<Runner> open_onnx_runner(const std::string& model, const RunnerOptions& options);

}  // namespace adze
