#include "model/model.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/runtime/interpreter.h>
#include <torch/torch.h>

#include <algorithm>

#include "core/error.h"
#include "model/batch_symbolic.h"
#include "model/faster_graph.h"

namespace adze {
namespace {

// The code the interpreter runs for `graph`: with `faster`, compiled from its faster_graph copy where it has one.
std::shared_ptr<torch::jit::Code> compile(const std::shared_ptr<torch::jit::Graph>& graph, bool faster) {
  std::shared_ptr<torch::jit::Graph> copy = faster ? faster_graph(*graph) : nullptr;
  return std::make_shared<torch::jit::Code>(copy ? copy : graph, "forward");
}

}  // namespace

at::ScalarType parse_dtype(const std::string& dtype) {
  if (dtype == "float32" || dtype == "float") return at::kFloat;
  if (dtype == "int64" || dtype == "long") return at::kLong;
  throw Error(ErrorKind::kInvalidArgument, "failed to parse input dtype '" + dtype + "': expected float32 or int64");
}

Model::Model(std::shared_ptr<torch::jit::Graph> graph, std::vector<NamedTensor> tensors, std::vector<int> bindings,
             InputSpec input, std::string source)
    : graph_(std::move(graph)),
      tensors_(std::move(tensors)),
      bindings_(std::move(bindings)),
      input_(std::move(input)),
      source_(std::move(source)) {
  if (graph_->inputs().size() != bindings_.size() + 1)
    throw Error(ErrorKind::kInternal, "model graph has " + std::to_string(graph_->inputs().size()) + " inputs but " +
                                          std::to_string(bindings_.size()) + " bound tensors");
}

Model::~Model() = default;

Model Model::clone() const { return with_graph(graph_->copy()); }

Model Model::with_graph(std::shared_ptr<torch::jit::Graph> graph) const {
  if (graph->inputs().size() != graph_->inputs().size())
    throw Error(ErrorKind::kInternal, "model '" + source_ + "': a replacement graph has " +
                                          std::to_string(graph->inputs().size()) + " inputs, expected " +
                                          std::to_string(graph_->inputs().size()));
  Model copy(std::move(graph), tensors_, bindings_, input_, source_);
  copy.batch_dependence_ = batch_dependence_;
  return copy;
}
Model::Model(Model&&) noexcept = default;
Model& Model::operator=(Model&&) noexcept = default;

std::vector<at::Tensor> Model::parameters() const {
  std::vector<at::Tensor> out;
  for (const auto& t : tensors_)
    if (t.is_parameter) out.push_back(t.value);
  return out;
}

int64_t Model::parameter_count() const {
  int64_t n = 0;
  for (const auto& t : tensors_)
    if (t.is_parameter) n += t.value.numel();
  return n;
}

int Model::find_tensor(const std::string& name) const {
  for (std::size_t i = 0; i < tensors_.size(); ++i) {
    if (tensors_[i].name == name) return static_cast<int>(i);
    for (const auto& alias : tensors_[i].aliases)
      if (alias == name) return static_cast<int>(i);
  }
  return -1;
}

const NamedTensor* Model::tensor_of(const torch::jit::Value* value) const {
  const auto inputs = graph_->inputs();
  for (std::size_t i = 1; i < inputs.size(); ++i)
    if (inputs[i] == value) return &tensors_[static_cast<std::size_t>(bindings_[i - 1])];
  return nullptr;
}

void Model::set_tensor(int index, at::Tensor value) {
  tensors_.at(static_cast<std::size_t>(index)).value = std::move(value);
}

torch::jit::Value* Model::add_bound_tensor(NamedTensor tensor) {
  auto* value = graph_->addInput();
  value->setType(c10::TensorType::create(tensor.value));
  tensors_.push_back(std::move(tensor));
  bindings_.push_back(static_cast<int>(tensors_.size()) - 1);
  graph_changed();
  return value;
}

void Model::remove_unused_inputs(bool drop_tensors) {
  std::vector<bool> dead(tensors_.size(), false);
  for (std::size_t i = graph_->inputs().size() - 1; i >= 1; --i) {
    if (graph_->inputs()[i]->hasUses()) continue;
    dead[static_cast<std::size_t>(bindings_[i - 1])] = true;
    graph_->eraseInput(i);
    bindings_.erase(bindings_.begin() + static_cast<std::ptrdiff_t>(i - 1));
  }
  if (drop_tensors) {
    std::vector<int> new_index(tensors_.size(), -1);
    std::vector<NamedTensor> kept;
    for (std::size_t i = 0; i < tensors_.size(); ++i) {
      if (dead[i]) continue;
      new_index[i] = static_cast<int>(kept.size());
      kept.push_back(std::move(tensors_[i]));
    }
    tensors_ = std::move(kept);
    for (auto& b : bindings_) b = new_index[static_cast<std::size_t>(b)];
  }
  graph_changed();
}

void Model::remove_bound_tensors(const std::vector<std::string>& names) {
  for (const std::string& name : names) {
    const int index = find_tensor(name);
    const auto binding = std::find(bindings_.begin(), bindings_.end(), index);
    if (index < 0 || binding == bindings_.end())
      throw Error(ErrorKind::kInternal, "remove_bound_tensors: '" + name + "' is not bound to the graph");
    const std::size_t input = static_cast<std::size_t>(binding - bindings_.begin()) + 1;
    if (graph_->inputs()[input]->hasUses())
      throw Error(ErrorKind::kInternal, "remove_bound_tensors: '" + name + "' is still used");
    graph_->eraseInput(input);
    bindings_.erase(binding);
    if (!remove_unbound_tensor(name)) throw Error(ErrorKind::kInternal, "remove_bound_tensors: '" + name + "'");
  }
  graph_changed();
}

bool Model::remove_unbound_tensor(const std::string& name) {
  const int index = find_tensor(name);
  if (index < 0 || std::find(bindings_.begin(), bindings_.end(), index) != bindings_.end()) return false;
  tensors_.erase(tensors_.begin() + index);
  for (auto& b : bindings_)
    if (b > index) --b;
  return true;
}

void Model::graph_changed() {
  for (Codes& c : codes_) c = Codes{};
}

at::Tensor Model::run_exact_batch(const at::Tensor& x) const {
  const bool inference = !at::GradMode::is_enabled();
  Codes& c = codes_[inference];
  if (!c.exact) c.exact = compile(graph_, inference);
  return run(*c.exact, x);
}

torch::jit::Code* Model::any_batch_code() const {
  const bool inference = !at::GradMode::is_enabled();
  Codes& c = codes_[inference];
  if (!c.any_batch_made) {
    if (specialised_graph_takes_any_batch(*this)) {
      if (!c.exact) c.exact = compile(graph_, inference);
      c.any_batch = c.exact;
    } else if (std::shared_ptr<torch::jit::Graph> generic = batch_generic_graph(*this)) {
      c.any_batch = compile(generic, inference);
    }
    c.any_batch_made = true;
  }
  return c.any_batch.get();
}

at::Tensor Model::run(torch::jit::Code& code, const at::Tensor& x) const {
  torch::jit::Stack stack;
  stack.reserve(bindings_.size() + 1);
  stack.emplace_back(x);
  for (int b : bindings_) stack.emplace_back(tensors_[static_cast<std::size_t>(b)].value);
  torch::jit::InterpreterState(code).run(stack);
  const c10::IValue& out = stack.at(0);
  if (out.isTensor()) return out.toTensor();
  if (out.isTuple() && !out.toTupleRef().elements().empty() && out.toTupleRef().elements()[0].isTensor())
    return out.toTupleRef().elements()[0].toTensor();
  throw Error(ErrorKind::kUnsupported, "model '" + source_ + "' does not return a tensor");
}

at::Tensor Model::forward(const at::Tensor& x) const {
  // A smaller batch at its own size: fine-tuning at batch 64 a model traced at 256 would otherwise compute 256.
  // Its code is made only when a smaller piece is there to run.
  const bool smaller_piece = x.dim() > 0 && x.size(0) % input_.shape.at(0) != 0;
  torch::jit::Code* any = batch_dependence_.generic && smaller_piece ? any_batch_code() : nullptr;
  return forward_in_batches(
      x, input_, "model '" + source_ + "'", [this](const at::Tensor& b) { return run_exact_batch(b); },
      any ? std::function<at::Tensor(const at::Tensor&)>([this, any](const at::Tensor& b) { return run(*any, b); })
          : nullptr);
}

at::Tensor pad_to_batch(const at::Tensor& x, int64_t batch) {
  if (x.size(0) >= batch) return x;
  std::vector<int64_t> pad_shape(x.sizes().begin(), x.sizes().end());
  pad_shape[0] = batch - x.size(0);
  return torch::cat({x, torch::zeros(pad_shape, x.options())}, 0);
}

at::Tensor forward_in_batches(const at::Tensor& x, const InputSpec& input, const std::string& what,
                              const std::function<at::Tensor(const at::Tensor&)>& run_exact_batch,
                              const std::function<at::Tensor(const at::Tensor&)>& run_smaller_batch) {
  const int64_t traced = input.shape.at(0);
  if (x.dim() != static_cast<int64_t>(input.shape.size()))
    throw Error(ErrorKind::kInvalidArgument, "failed to run " + what + ": input has " + std::to_string(x.dim()) +
                                                 " dimensions, expected " + std::to_string(input.shape.size()) + " (" +
                                                 shape_to_string(input.shape) + ")");
  for (std::size_t d = 1; d < input.shape.size(); ++d)
    if (x.size(static_cast<int64_t>(d)) != input.shape[d])
      throw Error(ErrorKind::kInvalidArgument, "failed to run " + what + ": input dimension " + std::to_string(d) +
                                                   " is " + std::to_string(x.size(static_cast<int64_t>(d))) +
                                                   ", expected " + std::to_string(input.shape[d]) + " (traced with " +
                                                   shape_to_string(input.shape) + ")");
  const int64_t n = x.size(0);
  if (n == traced) return run_exact_batch(x);
  std::vector<at::Tensor> outs;
  for (int64_t start = 0; start < n; start += traced) {
    const int64_t len = std::min(traced, n - start);
    const bool as_is = len < traced && run_smaller_batch;
    at::Tensor out = as_is ? run_smaller_batch(x.slice(0, start, start + len))
                           : run_exact_batch(pad_to_batch(x.slice(0, start, start + len), traced));
    if (out.dim() == 0 || out.size(0) != (as_is ? len : traced))
      throw Error(ErrorKind::kUnsupported, "failed to run " + what + " on batch size " + std::to_string(n) +
                                               ": its output does not have the batch first; trace it with batch size " +
                                               std::to_string(n));
    outs.push_back(out.slice(0, 0, len));
  }
  return outs.size() == 1 ? outs[0] : torch::cat(outs, 0);
}

}  // namespace adze
