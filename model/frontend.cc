#include "model/frontend.h"

#include <torch/csrc/jit/frontend/tracer.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/csrc/jit/runtime/graph_executor.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <nlohmann/json.hpp>
#include <unordered_map>

#include "core/error.h"
#include "core/files.h"
#include "core/zip_bounds.h"
#include "model/batch_symbolic.h"
#include "model/finite_check.h"

namespace adze {
namespace {

// Collects named tensors, each distinct tensor once (tied weights keep their other names as aliases).
class TensorCollector {
 public:
  void add(const std::string& name, const at::Tensor& value, bool is_parameter) {
    if (!value.defined()) return;
    auto* key = value.unsafeGetTensorImpl();
    auto it = index_.find(key);
    if (it != index_.end()) {
      tensors_[it->second].aliases.push_back(name);
      return;
    }
    index_.emplace(key, tensors_.size());
    tensors_.push_back(NamedTensor{name, value, is_parameter, {}});
  }
  std::vector<NamedTensor> take() { return std::move(tensors_); }

 private:
  std::vector<NamedTensor> tensors_;
  std::unordered_map<const c10::TensorImpl*, std::size_t> index_;  // lookup only, never iterated
};

// Traces `run(x)` with x and every tensor as graph inputs.
std::shared_ptr<torch::jit::Graph> trace_graph(const std::function<c10::IValue(const at::Tensor&)>& run,
                                               const std::vector<NamedTensor>& tensors, const InputSpec& input) {
  at::Tensor sample = make_sample_input(input);
  torch::jit::Stack inputs;
  inputs.emplace_back(sample);
  for (const auto& t : tensors) inputs.emplace_back(t.value);
  // Traced with grad enabled on purpose: with grad off, modules such as nn.TransformerEncoderLayer take a fused
  // inference fast path (aten::_transformer_encoder_layer_fwd) that hides their linear layers. In-place ops
  // (ReLU(inplace=True), out += identity) are recorded as their out-of-place forms (force_outplace), so that
  // transforms and exporters see one functional graph.
  torch::AutoGradMode grad_mode(true);
  auto traced = torch::jit::tracer::trace(
      std::move(inputs), [&](torch::jit::Stack stack) { return torch::jit::Stack{run(stack.at(0).toTensor())}; },
      [](const at::Tensor&) { return std::string(); }, /*strict=*/false, /*force_outplace=*/true);
  std::shared_ptr<torch::jit::Graph> graph = traced.first->graph;
  torch::jit::EliminateDeadCode(graph);
  return graph;
}

// A TorchScript module's graph executor runs a profiling plan on its first calls and an optimized one after them
// (autodiff subgraphs, reordered and folded ops). Traces that are to match node for node must record one plan,
// and the first the plan it always recorded: every call profiles while this lives.
class ProfileEveryCall {
 public:
  ProfileEveryCall() : runs_(torch::jit::getNumProfiledRuns().load()) {
    torch::jit::getNumProfiledRuns() = std::max<std::size_t>(runs_, 1000);
  }
  ~ProfileEveryCall() { torch::jit::getNumProfiledRuns() = runs_; }
  ProfileEveryCall(const ProfileEveryCall&) = delete;
  ProfileEveryCall& operator=(const ProfileEveryCall&) = delete;

 private:
  std::size_t runs_;
};

// Traces `run(x)` (and again at other batch sizes: batch_symbolic.h), then drops inputs the forward did not use.
Model trace_into_model(const std::function<c10::IValue(const at::Tensor&)>& run, std::vector<NamedTensor> tensors,
                       const InputSpec& input, const std::string& source) {
  ProfileEveryCall same_plan_for_every_trace;
  std::shared_ptr<torch::jit::Graph> graph = trace_graph(run, tensors, input);
  BatchDependence dependence = find_batch_dependence(*graph, input.shape.at(0), [&](int64_t batch) {
    InputSpec other = input;
    other.shape[0] = batch;
    return trace_graph(run, tensors, other);
  });
  std::vector<int> bindings(tensors.size());
  for (std::size_t i = 0; i < tensors.size(); ++i) bindings[i] = static_cast<int>(i);
  Model model(graph, std::move(tensors), std::move(bindings), input, source);
  model.set_batch_dependence(std::move(dependence));
  model.remove_unused_inputs(/*drop_tensors=*/false);
  return model;
}

std::string describe_input(const InputSpec& input) { return shape_to_string(input.shape) + " (" + input.dtype + ")"; }

}  // namespace

at::Tensor make_sample_input(const InputSpec& input) {
  const at::ScalarType dtype = parse_dtype(input.dtype);
  if (dtype == at::kLong) return torch::zeros(input.shape, torch::kLong);
  auto gen = at::detail::createCPUGenerator(0);
  return at::normal(0.0, 1.0, input.shape, gen);
}

std::string card_path_for(const std::string& model_path) {
  return std::filesystem::path(model_path).replace_extension(".json").string();
}

std::optional<InputSpec> read_input_spec_beside(const std::string& model_path) {
  const std::string card = card_path_for(model_path);
  std::error_code ec;
  if (card == model_path || !std::filesystem::is_regular_file(card, ec)) return std::nullopt;
  try {
    auto j = nlohmann::json::parse(read_file_text(card));
    if (!j.contains("input")) return std::nullopt;
    InputSpec spec;
    spec.shape = j.at("input").at("shape").get<Shape>();
    spec.dtype = j.at("input").value("dtype", "float32");
    const bool positive = std::all_of(spec.shape.begin(), spec.shape.end(), [](int64_t d) { return d > 0; });
    if (spec.shape.empty() || !positive || (spec.dtype != "float32" && spec.dtype != "int64"))
      throw Error(ErrorKind::kInvalidConfig, "failed to read model card '" + card + "': input shape " +
                                                 shape_to_string(spec.shape) + " / dtype '" + spec.dtype +
                                                 "' is not a positive shape with dtype float32 or int64");
    return spec;
  } catch (const nlohmann::json::exception& e) {
    throw Error(ErrorKind::kInvalidConfig, "failed to read model card '" + card + "': " + e.what());
  }
}

Model load_torchscript(const std::string& path, const InputSpec& input) {
  require_readable_file(path, "model");
  std::error_code ec;
  if (std::filesystem::file_size(path, ec) == 0)
    throw Error(ErrorKind::kIo, "failed to load model '" + path + "': the file is empty");
  check_torch_save_file(path, "model '" + path + "'", "readable TorchScript file");
  torch::jit::Module module;
  try {
    module = torch::jit::load(path);
  } catch (const c10::Error& e) {
    throw Error(ErrorKind::kIo, "failed to load model '" + path + "': not a readable TorchScript file (" +
                                    first_line_of(std::runtime_error(e.what_without_backtrace())) + ")");
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kIo,
                "failed to load model '" + path + "': not a readable TorchScript file (" + first_line_of(e) + ")");
  }
  if (!module.find_method("forward"))
    throw Error(ErrorKind::kUnsupported, "failed to load model '" + path + "': it has no forward method");
  module.eval();
  TensorCollector collector;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) collector.add(p.name, p.value, true);
  for (const auto& b : module.named_buffers(/*recurse=*/true)) collector.add(b.name, b.value, false);
  try {
    Model model =
        trace_into_model([&](const at::Tensor& x) { return module.forward({x}); }, collector.take(), input, path);
    require_finite_tensors(model);
    return model;
  } catch (const Error&) {
    throw;
  } catch (const c10::Error& e) {
    throw Error(ErrorKind::kInvalidArgument, "failed to run model '" + path + "' on an input of shape " +
                                                 describe_input(input) + ": " +
                                                 first_line_of(std::runtime_error(e.what_without_backtrace())));
  } catch (const std::exception& e) {
    throw Error(ErrorKind::kInvalidArgument, "failed to run model '" + path + "' on an input of shape " +
                                                 describe_input(input) + ": " + first_line_of(e));
  }
}

Model trace_module(torch::nn::Module& module, const std::function<at::Tensor(const at::Tensor&)>& forward,
                   const InputSpec& input, const std::string& name) {
  const bool was_training = module.is_training();
  module.eval();
  TensorCollector collector;
  for (const auto& p : module.named_parameters(/*recurse=*/true)) collector.add(p.key(), p.value(), true);
  for (const auto& b : module.named_buffers(/*recurse=*/true)) collector.add(b.key(), b.value(), false);
  try {
    Model model = trace_into_model([&](const at::Tensor& x) { return c10::IValue(forward(x)); }, collector.take(),
                                   input, "module:" + name);
    require_finite_tensors(model);
    module.train(was_training);
    return model;
  } catch (const Error&) {
    module.train(was_training);
    throw;
  } catch (const std::exception& e) {
    module.train(was_training);
    throw Error(ErrorKind::kInvalidArgument, "failed to trace module '" + name + "' on an input of shape " +
                                                 describe_input(input) + ": " + first_line_of(e));
  }
}

}  // namespace adze
