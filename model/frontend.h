// Front-ends: everything that becomes a Model.
//
// Both routes trace the original forward once on a sample input, passing every parameter and buffer as an
// explicit trace input. The tracer records the ATen ops that ran, so the result is a functional graph
// G(x, θ) with complete shapes, whatever produced the module (torch.jit.trace, torch.jit.script with
// bool/None attributes and control flow, or C++). Data-dependent control flow is specialised to the path the
// sample input took, as with torch.jit.trace. The model is traced twice more at small batch sizes to learn which
// int constants are the batch size in disguise (batch_symbolic.h: Model::batch_dependence()); the Model keeps
// the graph traced on the sample input.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "model/model.h"

namespace torch {
namespace nn {
class Module;
}
}  // namespace torch

namespace adze {

/// Loads a TorchScript file (from torch.jit.trace / torch.jit.script / adze) and traces it on a sample input.
/// Errors (Error): kIo for a missing, empty, truncated or non-TorchScript file; kInvalidArgument when the
/// sample input does not fit the model (the message carries the model's own complaint).
Model load_torchscript(const std::string& path, const InputSpec& input);

/// Traces a C++ module: `forward` is called on the sample input; the module's named parameters and buffers
/// become the Model's tensors (shared, not copied).
Model trace_module(torch::nn::Module& module, const std::function<at::Tensor(const at::Tensor&)>& forward,
                   const InputSpec& input, const std::string& name);

/// A deterministic sample input for tracing: N(0,1) values for float32 (seed 0), zeros for int64.
at::Tensor make_sample_input(const InputSpec& input);

/// The input spec recorded beside a model file ("model.pt" -> "model.json", key "input"), if any.
std::optional<InputSpec> read_input_spec_beside(const std::string& model_path);

/// Path of the JSON card beside a model file ("x/model.pt" -> "x/model.json").
std::string card_path_for(const std::string& model_path);

}  // namespace adze
