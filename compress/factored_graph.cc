#include "compress/factored_graph.h"

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
// it), or mm(x, t(W)), matmul(x, t(W)) and addmm(b, x, t(W), β, α) (as libtorch's C++ tracer does).
struct Site {
  Node* user;
  std::size_t x_index, w_index;
  bool transposed;  ///< the user reads t(W)
};

std::optional<Site> site_of(const Model& model, const std::string& weight) {
  Value* w = input_of(model, weight);
  if (!w || w->uses().size() != 1) return std::nullopt;
  Node* n = w->uses()[0].user;
  if (is(n, "aten::linear") && w->uses()[0].offset == 1) return Site{n, 0, 1, false};
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
  std::size_t x_index, w_index;
  Value* x;  ///< the user's inputs before the rewrite
  Value* w;
  std::vector<Node*> inserted;       ///< in the order they were made
  std::vector<std::string> factors;  ///< the factor tensors' names
};

FactoredGraph::FactoredGraph(Model& model) : model_(model) {}

FactoredGraph::~FactoredGraph() {
  try {
    restore();
  } catch (...) {  // a destructor does not throw; restore() only fails on a graph someone else broke
  }
}

bool FactoredGraph::can_rewrite(const Layer& layer, const LayerConfig& config) const {
  // linear(x, W) and x·t(W) both multiply by a [C, K] weight along K, whatever kind the layer table named it.
  return config.decompose == Decomposition::kLowRank && layer.weight_shape.size() == 2 && layer.uses == 1 &&
         layer.reduction_dim == 1 && site_of(model_, layer.weight).has_value();
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
  Rewrite r{
      layer, site.user, site.x_index, site.w_index, site.user->input(site.x_index), site.user->input(site.w_index),
      {},    {}};
  for (const FactorSpec& spec : specs) r.factors.push_back(spec.layer.weight);
  torch::jit::WithInsertPoint guard(site.user);
  const auto insert = [&](const char* kind, std::vector<torch::jit::NamedValue> inputs) {
    Value* out = g.insert(c10::Symbol::fromQualString(kind), inputs);
    out->setType(c10::TensorType::get());
    r.inserted.push_back(out->node());
    return out;
  };
  // x·Wᵀ = (x·F₁ᵀ)·F₂ᵀ: the user now multiplies x·F₁ᵀ by F₂ (in the form it took W).
  Value* hidden;
  if (site.transposed) {
    hidden = insert("aten::matmul", {r.x, insert("aten::t", {values[0]})});
    site.user->replaceInput(site.w_index, insert("aten::t", {values[1]}));
  } else {
    Value* none = g.insertConstant(c10::IValue());
    r.inserted.push_back(none->node());
    hidden = insert("aten::linear", {r.x, values[0], none});
    site.user->replaceInput(site.w_index, values[1]);
  }
  site.user->replaceInput(site.x_index, hidden);
  model_.graph_changed();
  rewrites_.push_back(std::move(r));
  return factors;
}

void FactoredGraph::restore() {
  for (auto r = rewrites_.rbegin(); r != rewrites_.rend(); ++r) {
    r->user->replaceInput(r->x_index, r->x);
    r->user->replaceInput(r->w_index, r->w);
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
