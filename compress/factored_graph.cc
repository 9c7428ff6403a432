#include "compress/factored_graph.h"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/torch.h>

#include <optional>

#include "core/error.h"

namespace adze {
namespace {

using torch::jit::Node;
using torch::jit::Value;

bool is(const Node* n, const char* kind) { return n->kind().toQualString() == std::string(kind); }

// The graph input bound to the tensor `name`, or nullptr.
Value* input_of(const Model& model, const std::string& name) {
  for (Value* v : model.graph().inputs()) {
    const NamedTensor* t = model.tensor_of(v);
    if (t && t->name == name) return v;
  }
  return nullptr;
}

// The one op that multiplies by a weight that nothing else reads: linear(x, W, b) (as Python's tracer writes
// it), mm(x, t(W)), matmul(x, t(W)) and addmm(b, x, t(W), β, α) (as libtorch's C++ tracer does), or a
// convolution (W at argument 1, groups 1, not transposed).
struct Site {
  Node* user;
  std::size_t x_index, w_index;
  bool transposed;  ///< the user reads t(W)
  bool convolution = false;
};

// A constant argument of `n`, or nothing.
c10::optional<c10::IValue> constant_input(const Node* n, std::size_t i) {
  return i < n->inputs().size() ? torch::jit::toIValue(n->input(i)) : c10::nullopt;
}

std::optional<Site> site_of(const Model& model, const std::string& weight) {
  Value* w = input_of(model, weight);
  if (!w || w->uses().size() != 1) return std::nullopt;
  Node* n = w->uses()[0].user;
  if (is(n, "aten::linear") && w->uses()[0].offset == 1) return Site{n, 0, 1, false};
  if ((is(n, "aten::_convolution") || is(n, "aten::conv2d")) && w->uses()[0].offset == 1) {
    const bool traced = is(n, "aten::_convolution");
    const auto groups = constant_input(n, traced ? 8 : 6);
    const auto transposed = traced ? constant_input(n, 6) : c10::optional<c10::IValue>(false);
    if (groups && groups->isInt() && groups->toInt() == 1 && transposed && transposed->isBool() &&
        !transposed->toBool())
      return Site{n, 0, 1, false, true};
    return std::nullopt;
  }
  if (!is(n, "aten::t") || n->output()->uses().size() != 1) return std::nullopt;
  const torch::jit::Use use = n->output()->uses()[0];
  if ((is(use.user, "aten::mm") || is(use.user, "aten::matmul")) && use.offset == 1) return Site{use.user, 0, 1, true};
  if (is(use.user, "aten::addmm") && use.offset == 2) return Site{use.user, 1, 2, true};
  return std::nullopt;
}

}  // namespace

struct FactoredGraph::Rewrite {
  Layer layer;
  Node* user;
  std::vector<std::pair<std::size_t, Value*>> replaced;  ///< the user's inputs before the rewrite
  std::vector<Node*> inserted;                           ///< in the order they were made
  std::vector<std::string> factors;                      ///< the factor tensors' names
};

FactoredGraph::FactoredGraph(Model& model) : model_(model) {}

FactoredGraph::~FactoredGraph() {
  try {
    restore();
  } catch (...) {  // a destructor does not throw; restore() only fails on a graph someone else broke
  }
}

bool FactoredGraph::can_rewrite(const Layer& layer, const LayerConfig& config) const {
  if (layer.uses != 1) return false;
  const std::optional<Site> site = site_of(model_, layer.weight);
  if (!site) return false;
  // A convolution to r channels then a 1x1 one; linear(x, W) and x·t(W) both multiply by a [C, K] weight along K,
  // whatever kind the layer table named it.
  if (site->convolution) return config.decompose == Decomposition::kLowRank && layer.weight_shape.size() == 4;
  return (config.decompose == Decomposition::kLowRank || config.decompose == Decomposition::kMonarch) &&
         layer.weight_shape.size() == 2 && layer.reduction_dim == 1;
}

std::vector<at::Tensor> FactoredGraph::rewrite(const Layer& layer, const Encoding& decomposition) {
  if (!can_rewrite(layer, decomposition.config))
    throw Error(ErrorKind::kInternal, "layer '" + layer.name + "' cannot compute through its factors");
  const Site site = *site_of(model_, layer.weight);
  const std::vector<FactorSpec> specs = factor_specs(layer, decomposition.config);
  std::vector<at::Tensor> factors;
  std::vector<Value*> values;
  for (std::size_t i = 0; i < specs.size(); ++i) {
    factors.push_back(decomposition.factors.at(i).decode().contiguous());
    values.push_back(model_.add_bound_tensor(NamedTensor{specs[i].layer.weight, factors.back(), true, {}}));
  }
  torch::jit::Graph& g = model_.graph();
  Rewrite r{layer, site.user, {}, {}, {}};
  for (const FactorSpec& spec : specs) r.factors.push_back(spec.layer.weight);
  torch::jit::WithInsertPoint guard(site.user);
  const auto made = [&](Value* v) {
    r.inserted.push_back(v->node());
    return v;
  };
  const auto constant = [&](const c10::IValue& c) { return made(g.insertConstant(c)); };
  // An op before the user; every node it adds (the op, and constants for its defaulted arguments) is recorded.
  const auto insert = [&](const char* kind, std::vector<torch::jit::NamedValue> inputs) {
    Node* const before = site.user->prev();
    Value* out = g.insert(c10::Symbol::fromQualString(kind), inputs);
    for (Node* n = before->next(); n != site.user; n = n->next()) r.inserted.push_back(n);
    if (out->type()->cast<c10::TensorType>()) out->setType(c10::TensorType::get());
    return out;
  };
  const auto replace = [&](std::size_t i, Value* v) {
    r.replaced.emplace_back(i, site.user->input(i));
    site.user->replaceInput(i, v);
  };
  Value* const x = site.user->input(site.x_index);
  Value *hidden, *last;  // what the user now multiplies, and by what (in the form it took W)
  if (site.convolution) {
    // The kh×kw convolution to r channels (the user's own arguments, no bias), then the user as a 1x1 one.
    Value* none = constant(c10::IValue());
    Node* first = g.createClone(site.user, [](Value* v) { return v; });
    g.insertNode(first);
    first->replaceInput(1, values[0]);
    first->replaceInput(2, none);
    first->output()->setType(c10::TensorType::get());
    hidden = made(first->output());
    const std::size_t spatial = static_cast<std::size_t>(layer.weight_shape.size() - 2);
    replace(3, constant(std::vector<int64_t>(spatial, 1)));  // stride
    replace(4, constant(std::vector<int64_t>(spatial, 0)));  // padding
    replace(5, constant(std::vector<int64_t>(spatial, 1)));  // dilation
    last = values[1];
  } else if (decomposition.config.decompose == Decomposition::kMonarch) {
    // z[..., l, k] = Σ_j x[..., k, j]·R[k·b + l, j], flattened to l·b + k, times blockdiag(L's b blocks [C/b, b]):
    // W's block (l, k) is L[l-th rows, k]·R[k·b + l] (compress/decompose.h).
    const int64_t b = decomposition.config.blocks, C = layer.weight_shape[0], K = layer.weight_shape[1];
    Value* blocks_in = insert("aten::unflatten", {x, constant(int64_t{-1}), constant(std::vector<int64_t>{b, K / b})});
    Value* r3 = insert("aten::view", {values[0], constant(std::vector<int64_t>{b, b, K / b})});
    Value* pair = made(g.insertNode(g.createList(c10::TensorType::get(), {blocks_in, r3}))->output());
    Value* z = insert("aten::einsum", {constant(std::string("...kj,klj->...lk")), pair});
    hidden = insert("aten::flatten", {z, constant(int64_t{-2}), constant(int64_t{-1})});
    Value* l3 = insert("aten::view", {values[1], constant(std::vector<int64_t>{b, C / b, b})});
    last = insert("aten::block_diag", {insert("aten::unbind", {l3, constant(int64_t{0})})});
  } else {
    // x·Wᵀ = (x·F₁ᵀ)·F₂ᵀ
    hidden = site.transposed ? insert("aten::matmul", {x, insert("aten::t", {values[0]})})
                             : insert("aten::linear", {x, values[0], constant(c10::IValue())});
    last = values[1];
  }
  replace(site.w_index, site.transposed ? insert("aten::t", {last}) : last);
  replace(site.x_index, hidden);
  model_.graph_changed();
  rewrites_.push_back(std::move(r));
  return factors;
}

void FactoredGraph::restore() {
  for (auto r = rewrites_.rbegin(); r != rewrites_.rend(); ++r) {
    for (auto i = r->replaced.rbegin(); i != r->replaced.rend(); ++i) r->user->replaceInput(i->first, i->second);
    for (auto n = r->inserted.rbegin(); n != r->inserted.rend(); ++n) {
      if ((*n)->output()->hasUses())
        throw Error(ErrorKind::kInternal, "layer '" + r->layer.name + "': its factored form is still in use");
      (*n)->destroy();
    }
    model_.remove_bound_tensors(r->factors);
  }
  rewrites_.clear();
  model_.graph_changed();
}

}  // namespace adze
