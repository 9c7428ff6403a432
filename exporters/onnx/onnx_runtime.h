// Running an ONNX model in ONNX Runtime: onnxruntime-node (CPU) through exporters/onnx/run_ort.js, the
// runtime adze's ONNX exports are checked in. scripts/install-ort.sh installs the module into build/ort;
// ADZE_ORT_MODULE (a path) overrides where it is.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace adze {

/// Runs `model`, exported with batch `batch`, on every sample of `x` (float32 or int64; the number of samples a
/// multiple of `batch`), and returns all outputs concatenated, flat, as float32. `optimization` is ONNX
/// Runtime's graph optimization level: "all" (its default, what a deployment runs: QDQ pairs fused into integer
/// kernels), "extended", "basic" (constant folding only: the graph's own semantics) or "disabled".
/// Error(kIo) when node or the module is missing, Error(kInvalidArgument) with ONNX Runtime's message when it
/// refuses the model.
at::Tensor run_in_onnx_runtime(const std::string& model, const at::Tensor& x, int64_t batch,
                               const std::string& optimization = "all");

}  // namespace adze
