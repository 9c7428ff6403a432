#include "model/fold_bn.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/dead_code_elimination.h>
#include <torch/torch.h>

#include <optional>

#include "model/model.h"

namespace adze {
namespace {

using torch::jit::Node;
using torch::jit::Value;

bool is_producer(const Node* n) {
  const std::string k = n->kind().toQualString();
  return k == "aten::_convolution" || k == "aten::convolution" || k == "aten::conv1d" || k == "aten::conv2d" ||
         k == "aten::linear";
}

std::string strip_suffix(const std::string& name, const std::string& suffix) {
  if (name.size() > suffix.size() && name.compare(name.size() - suffix.size(), suffix.size(), suffix) == 0)
    return name.substr(0, name.size() - suffix.size());
  return name;
}

// A tensor bound to a graph input, or an undefined tensor for a None constant; nullopt when neither.
std::optional<at::Tensor> bound_or_none(const Model& model, const Value* v) {
  if (v->type()->kind() == c10::TypeKind::NoneType) return at::Tensor();
  if (const NamedTensor* t = model.tensor_of(v)) return t->value;
  return std::nullopt;
}

struct Fold {
  Node* bn;
  Node* producer;
  at::Tensor weight, bias;
};

std::optional<Fold> plan_fold(const Model& model, Node* bn) {
  Value* x = bn->input(0);
  Node* producer = x->node();
  if (!is_producer(producer) || x->uses().size() != 1) return std::nullopt;
  auto training = torch::jit::constant_as<bool>(bn->input(5));
  auto eps = torch::jit::constant_as<double>(bn->input(7));
  if (!training || *training || !eps) return std::nullopt;
  const NamedTensor* w = model.tensor_of(producer->input(1));
  if (!w || !w->is_parameter || producer->input(1)->uses().size() != 1) return std::nullopt;
  auto b = bound_or_none(model, producer->input(2));
  if (!b || (b->defined() && producer->input(2)->uses().size() != 1)) return std::nullopt;
  auto gamma = bound_or_none(model, bn->input(1));
  auto beta = bound_or_none(model, bn->input(2));
  auto mean = bound_or_none(model, bn->input(3));
  auto var = bound_or_none(model, bn->input(4));
  if (!gamma || !beta || !mean || !var || !mean->defined() || !var->defined()) return std::nullopt;
  const int64_t channels = w->value.size(0);
  if (mean->numel() != channels) return std::nullopt;

  torch::NoGradGuard no_grad;
  at::Tensor scale = torch::rsqrt(var->to(torch::kDouble) + *eps);
  if (gamma->defined()) scale = scale * gamma->to(torch::kDouble);
  std::vector<int64_t> view(static_cast<std::size_t>(w->value.dim()), 1);
  view[0] = channels;
  Fold fold{bn, producer, {}, {}};
  fold.weight = (w->value.to(torch::kDouble) * scale.view(view)).to(w->value.scalar_type()).contiguous();
  at::Tensor bias = b->defined() ? b->to(torch::kDouble) : torch::zeros({channels}, torch::kDouble);
  bias = (bias - mean->to(torch::kDouble)) * scale;
  if (beta->defined()) bias = bias + beta->to(torch::kDouble);
  fold.bias = bias.to(w->value.scalar_type()).contiguous();
  return fold;
}

}  // namespace

FoldBnResult fold_batch_norm(Model& model) {
  FoldBnResult result;
  std::vector<std::string> folded_bn_names;
  std::vector<Node*> bns;
  for (Node* n : model.graph().nodes())
    if (n->kind().toQualString() == std::string("aten::batch_norm")) bns.push_back(n);
  for (Node* bn : bns) {
    auto fold = plan_fold(model, bn);
    if (!fold) {
      ++result.skipped;
      continue;
    }
    const std::string weight_name = model.tensor_of(fold->producer->input(1))->name;
    const std::string bn_name = strip_suffix(model.tensor_of(bn->input(3))->name, ".running_mean");
    model.set_tensor(model.find_tensor(weight_name), fold->weight);
    if (const NamedTensor* b = model.tensor_of(fold->producer->input(2))) {
      model.set_tensor(model.find_tensor(b->name), fold->bias);
    } else {
      const std::string bias_name = strip_suffix(weight_name, ".weight") + ".bias";
      Value* bias = model.add_bound_tensor(NamedTensor{bias_name, fold->bias, true, {}});
      fold->producer->replaceInput(2, bias);
    }
    bn->output()->replaceAllUsesWith(fold->producer->output());
    bn->destroy();
    result.folded.push_back(strip_suffix(weight_name, ".weight") + " <- " + bn_name);
    folded_bn_names.push_back(bn_name);
  }
  torch::jit::EliminateDeadCode(model.graph().block());
  model.remove_unused_inputs(/*drop_tensors=*/true);
  for (const auto& bn_name : folded_bn_names) model.remove_unbound_tensor(bn_name + ".num_batches_tracked");
  return result;
}

}  // namespace adze
