// Model: a functional graph G(x, θ) with the parameters and buffers as explicit inputs.
//
// Every front-end (TorchScript file, C++ torch::nn::Module) produces a Model by tracing the original forward
// once on a sample input (frontend.h). Values in the graph carry the complete shapes seen at that trace. The
// graph is specialised to the traced batch size, so callers may pass any batch: forward() splits a larger one
// into pieces of it. Where the batch size only enters as int constants (a reshape to [seq, batch*heads, d]),
// those constants carry their dependence on it, and batch_symbolic.h rebuilds a graph for any batch size, at
// which forward() runs a smaller batch; a batch-specialised model's is padded with zeros instead. Only
// tensors marked as parameters may require grad (buffers such as BatchNorm running statistics never do):
// fine-tuning sets requires_grad on parameters() and calls forward() under autograd.
#pragma once

#include <ATen/core/Tensor.h>

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/shape.h"

namespace torch {
namespace jit {
struct Graph;
struct Value;
struct Code;
}  // namespace jit
}  // namespace torch

namespace adze {

/// A named parameter or buffer of the model ("features.0.weight").
struct NamedTensor {
  std::string name;
  at::Tensor value;
  bool is_parameter = true;
  /// Other qualified names under which the same tensor is reachable (tied weights).
  std::vector<std::string> aliases;
};

/// The sample input a model was traced with.
struct InputSpec {
  Shape shape;                    ///< including the batch dimension
  std::string dtype = "float32";  ///< "float32" or "int64" (token ids)
};

/// Whether the graph holds at every batch size once its batch-dependent int constants, annotated on them, are
/// computed from the input's batch size (model/batch_symbolic.h). The front-end finds it by tracing again at
/// other batch sizes; a graph built any other way is batch-specialised.
struct BatchDependence {
  bool generic = false;
  std::string why_not = "it was not traced at a second batch size";  ///< when not generic, for messages
};

/// Parses "float32" / "int64" (and the aliases float, long); throws Error(kInvalidArgument) otherwise.
at::ScalarType parse_dtype(const std::string& dtype);

class Model {
 public:
  /// `bindings[i]` is the index into `tensors` of graph input i+1 (graph input 0 is the model input).
  Model(std::shared_ptr<torch::jit::Graph> graph, std::vector<NamedTensor> tensors, std::vector<int> bindings,
        InputSpec input, std::string source);
  ~Model();
  Model(Model&&) noexcept;
  Model& operator=(Model&&) noexcept;
  Model(const Model&) = delete;
  Model& operator=(const Model&) = delete;

  /// A copy with its own graph, sharing the tensors until either side replaces one (set_tensor): for trying a
  /// graph edit (activation fake-quant) without touching this model.
  Model clone() const;
  /// A copy whose graph is `graph` (same inputs as graph(), bound to the same tensors), e.g. its batch-generic
  /// form for writing (model/batch_symbolic.h).
  Model with_graph(std::shared_ptr<torch::jit::Graph> graph) const;

  /// Runs the graph. Any batch size is accepted: split into pieces of the traced batch, and a piece smaller than
  /// that runs at its own size where the graph takes any batch (batch_dependence().generic: the graph, or its
  /// batch_generic_graph() form), else padded with zeros to the traced batch. The first output is returned when
  /// the graph returns a tuple. Autograd records when parameters require grad.
  at::Tensor forward(const at::Tensor& x) const;

  const InputSpec& input() const { return input_; }
  int64_t traced_batch() const { return input_.shape.at(0); }
  /// Where the model came from (a path, or "module:<name>").
  const std::string& source() const { return source_; }
  const BatchDependence& batch_dependence() const { return batch_dependence_; }
  void set_batch_dependence(BatchDependence dependence) { batch_dependence_ = std::move(dependence); }

  /// All named parameters and buffers, in the order of the original module.
  const std::vector<NamedTensor>& tensors() const { return tensors_; }
  /// The trainable parameters (tensors() with is_parameter).
  std::vector<at::Tensor> parameters() const;
  /// Total number of parameter elements (each tied tensor counted once).
  int64_t parameter_count() const;
  /// Index into tensors() of a name or alias, or -1.
  int find_tensor(const std::string& name) const;

  torch::jit::Graph& graph() const { return *graph_; }
  /// The tensor bound to a graph input, or nullptr for the model input and unbound values.
  const NamedTensor* tensor_of(const torch::jit::Value* value) const;

  // Graph edits for transforms (fold-bn, compression passes). Each keeps graph inputs and bindings in step.
  /// Replaces the value of a named tensor (same name, possibly new shape).
  void set_tensor(int index, at::Tensor value);
  /// Adds a new named tensor bound to a new graph input, returned.
  torch::jit::Value* add_bound_tensor(NamedTensor tensor);
  /// Removes graph inputs (other than the model input) that have no uses; with `drop_tensors`, their named
  /// tensors go too (a transform made them dead); otherwise they stay as unbound state.
  void remove_unused_inputs(bool drop_tensors);
  /// Removes the named tensors and the graph inputs bound to them, which must have no uses (a transform
  /// made them dead); Error(kInternal) otherwise.
  void remove_bound_tensors(const std::vector<std::string>& names);
  /// Removes a named tensor that is bound to no graph input (e.g. a folded BatchNorm's counter); false if
  /// there is none by that name or it is still bound.
  bool remove_unbound_tensor(const std::string& name);
  /// Must be called after editing graph() directly.
  void graph_changed();

 private:
  std::shared_ptr<torch::jit::Graph> graph_;
  std::vector<NamedTensor> tensors_;
  std::vector<int> bindings_;
  InputSpec input_;
  std::string source_;
  BatchDependence batch_dependence_;
  /// The graph compiled for one mode, each made at the first call that needs it.
  struct Codes {
    std::shared_ptr<torch::jit::Code> exact;
    /// The code that runs at any batch size (exact's graph or its batch-generic form); null for a
    /// batch-specialised model.
    std::shared_ptr<torch::jit::Code> any_batch;
    bool any_batch_made = false;
  };
  /// [0] where autograd records (training): the graph as traced; [1] without it: model/faster_graph.h's copy,
  /// whose faster forward would cost more in backward.
  mutable Codes codes_[2];
  at::Tensor run_exact_batch(const at::Tensor& x) const;
  at::Tensor run(torch::jit::Code& code, const at::Tensor& x) const;
  /// The code for any batch size, or null.
  torch::jit::Code* any_batch_code() const;
};

/// x with zero samples appended up to `batch` samples (x itself when it has that many).
at::Tensor pad_to_batch(const at::Tensor& x, int64_t batch);

/// Runs `run_exact_batch` on `x` cut into pieces of the traced batch size and joins the outputs; checks x's
/// shape against `input` first (Error(kInvalidArgument), naming `what`). A last piece smaller than the traced
/// batch goes to `run_smaller_batch` as it is where one is given, else padded with zeros to run_exact_batch.
at::Tensor forward_in_batches(const at::Tensor& x, const InputSpec& input, const std::string& what,
                              const std::function<at::Tensor(const at::Tensor&)>& run_exact_batch,
                              const std::function<at::Tensor(const at::Tensor&)>& run_smaller_batch = nullptr);

}  // namespace adze
