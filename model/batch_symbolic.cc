#include "model/batch_symbolic.h"

#include <torch/csrc/jit/ir/constants.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/passes/shape_analysis.h>
#include <torch/torch.h>

#include <algorithm>
#include <cmath>
#include <optional>
#include <string>
#include <unordered_map>
#include <utility>

#include "core/error.h"

namespace adze {
namespace {

using torch::jit::Block;
using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

// Per int of the constant: the slope a and the offset b of a*batch + b.
c10::Symbol slope_attr() {
  static const c10::Symbol s = c10::Symbol::attr("adze_batch_a");
  return s;
}
c10::Symbol offset_attr() {
  static const c10::Symbol s = c10::Symbol::attr("adze_batch_b");
  return s;
}

bool same_tensor(const at::Tensor& x, const at::Tensor& y) {
  return x.scalar_type() == y.scalar_type() && x.sizes() == y.sizes() && x.device() == y.device() && at::equal(x, y);
}

bool same_ivalue(const c10::IValue& x, const c10::IValue& y) {
  if (x.isTensor() || y.isTensor()) return x.isTensor() && y.isTensor() && same_tensor(x.toTensor(), y.toTensor());
  if (x.isDouble() && y.isDouble()) {  // a NaN fill value is the same constant in both graphs
    const double p = x.toDouble(), q = y.toDouble();
    return p == q || (std::isnan(p) && std::isnan(q));
  }
  return x == y;
}

bool same_attribute(const Node* x, const Node* y, c10::Symbol name) {
  using torch::jit::AttributeKind;
  if (x->kindOf(name) != y->kindOf(name)) return false;
  switch (x->kindOf(name)) {
    case AttributeKind::f:
      return x->f(name) == y->f(name);
    case AttributeKind::fs:
      return x->fs(name) == y->fs(name);
    case AttributeKind::i:
      return x->i(name) == y->i(name);
    case AttributeKind::is:
      return x->is(name) == y->is(name);
    case AttributeKind::s:
      return x->s(name) == y->s(name);
    case AttributeKind::ss:
      return x->ss(name) == y->ss(name);
    case AttributeKind::t:
      return same_tensor(x->t(name), y->t(name));
    case AttributeKind::ival:
      return same_ivalue(x->ival(name), y->ival(name));
    default:
      return false;  // graphs, types, complex: not in traced graphs; treated as a difference
  }
}

bool same_attributes(const Node* x, const Node* y) {
  std::vector<c10::Symbol> xs = x->attributeNames(), ys = y->attributeNames();
  const auto by_id = [](c10::Symbol p, c10::Symbol q) {
    return static_cast<c10::unique_t>(p) < static_cast<c10::unique_t>(q);
  };
  std::sort(xs.begin(), xs.end(), by_id);
  std::sort(ys.begin(), ys.end(), by_id);
  if (xs != ys) return false;
  return std::all_of(xs.begin(), xs.end(), [&](c10::Symbol name) { return same_attribute(x, y, name); });
}

std::string describe(const Node* constant) {
  const Value* v = constant->output();
  std::string text = "constant %" + v->debugName() + " (" + v->type()->str();
  if (v->hasUses()) text += std::string(", an input of ") + v->uses().front().user->kind().toQualString();
  return text + ")";
}

// Walks the graph traced at the kept batch size and one traced at another in step, pairing values by position.
// Constants are paired, not compared: whether their values may differ is the fit's question.
class GraphMatch {
 public:
  GraphMatch(Graph& kept, const Graph& other, int64_t kept_batch, int64_t other_batch)
      : kept_batch_(kept_batch), other_batch_(other_batch) {
    match_block(kept.block(), other.block());
  }
  bool ok() const { return why_.empty(); }
  const std::string& why() const { return why_; }
  /// Every prim::Constant of the kept graph, in graph order, with its counterpart.
  const std::vector<std::pair<Node*, const Node*>>& constants() const { return constants_; }

 private:
  bool fail(const std::string& what) {
    why_ = "its graph at batch size " + std::to_string(other_batch_) + " differs from the one at " +
           std::to_string(kept_batch_) + " beyond int constants: " + what;
    return false;
  }

  bool match_values(at::ArrayRef<Value*> kept, at::ArrayRef<const Value*> other, const std::string& where) {
    if (kept.size() != other.size())
      return fail(where + " has " + std::to_string(other.size()) + " values, not " + std::to_string(kept.size()));
    for (std::size_t i = 0; i < kept.size(); ++i) {
      if (kept[i]->type()->kind() != other[i]->type()->kind())
        return fail(where + " value " + std::to_string(i) + " is " + other[i]->type()->str() + ", not " +
                    kept[i]->type()->str());
      map_[kept[i]] = other[i];
    }
    return true;
  }

  bool match_uses(const Node* kept, const Node* other, const std::string& where) {
    if (kept->inputs().size() != other->inputs().size()) return fail(where + " has another number of inputs");
    for (std::size_t i = 0; i < kept->inputs().size(); ++i) {
      auto it = map_.find(kept->inputs()[i]);
      if (it == map_.end() || it->second != other->inputs()[i])
        return fail(where + " input " + std::to_string(i) + " comes from elsewhere");
    }
    return true;
  }

  bool match_node(Node* kept, const Node* other, const std::string& where) {
    if (kept->kind() != other->kind())
      return fail(where + " is " + other->kind().toQualString() + ", not " + kept->kind().toQualString());
    if (!match_uses(kept, other, where)) return false;
    if (kept->kind() == c10::prim::Constant && torch::jit::toIValue(kept->output()) &&
        torch::jit::toIValue(other->output())) {
      constants_.emplace_back(kept, other);
    } else if (!same_attributes(kept, other)) {
      return fail(where + " (" + kept->kind().toQualString() + ") has other attributes");
    }
    if (!match_values(kept->outputs(), other->outputs(), where)) return false;
    if (kept->blocks().size() != other->blocks().size()) return fail(where + " has another number of blocks");
    for (std::size_t b = 0; b < kept->blocks().size(); ++b)
      if (!match_block(kept->blocks()[b], other->blocks()[b])) return false;
    return true;
  }

  bool match_block(Block* kept, const Block* other) {
    if (!match_values(kept->inputs(), other->inputs(), "the inputs")) return false;
    auto k = kept->nodes().begin();
    auto o = other->nodes().begin();
    for (; k != kept->nodes().end() && o != other->nodes().end(); ++k, ++o)
      if (!match_node(*k, *o, "node " + std::to_string(++position_))) return false;
    if (k != kept->nodes().end() || o != other->nodes().end())
      return fail("it has another number of nodes (after node " + std::to_string(position_) + ")");
    return match_uses(kept->return_node(), other->return_node(), "the return");
  }

  int64_t kept_batch_, other_batch_;
  int64_t position_ = 0;
  std::string why_;
  std::unordered_map<const Value*, const Value*> map_;  // lookup only, never iterated
  std::vector<std::pair<Node*, const Node*>> constants_;
};

std::optional<std::vector<int64_t>> ints_of(const c10::IValue& v) {
  if (v.isInt()) return std::vector<int64_t>{v.toInt()};
  if (v.isIntList()) return v.toIntVector();
  return std::nullopt;
}

std::string ints_text(const std::vector<int64_t>& ints, bool list) {
  std::string s;
  for (int64_t i : ints) s += (s.empty() ? "" : ", ") + std::to_string(i);
  return list ? "[" + s + "]" : s;
}

// The ints of one constant at three batch sizes; `values[0]` at the kept one.
struct Observed {
  Node* node;
  c10::IValue values[3];
};

// a*batch + b per int, fitted on the two other traces and checked against the kept one; why_not when none fits.
std::optional<std::vector<BatchAffine>> fit(const Observed& seen, const int64_t batches[3], std::string* why_not) {
  std::optional<std::vector<int64_t>> ints[3];
  for (int t = 0; t < 3; ++t) ints[t] = ints_of(seen.values[t]);
  if (!ints[0] || !ints[1] || !ints[2] || ints[1]->size() != ints[0]->size() || ints[2]->size() != ints[0]->size()) {
    *why_not = describe(seen.node) + " changes with the batch size and is not an int or a list of fixed length";
    return std::nullopt;
  }
  std::vector<BatchAffine> fits;
  for (std::size_t e = 0; e < ints[0]->size(); ++e) {
    const int64_t rise = (*ints[2])[e] - (*ints[1])[e], run = batches[2] - batches[1];
    BatchAffine f;
    f.a = rise / run;
    f.b = (*ints[1])[e] - f.a * batches[1];
    if (rise % run != 0 || f.at(batches[0]) != (*ints[0])[e]) {
      const bool list = seen.values[0].isIntList();
      *why_not = describe(seen.node) + " is " + ints_text(*ints[0], list) + " at batch size " +
                 std::to_string(batches[0]) + ", " + ints_text(*ints[1], list) + " at " + std::to_string(batches[1]) +
                 " and " + ints_text(*ints[2], list) + " at " + std::to_string(batches[2]) +
                 ": no a*batch + b with integer a, b fits";
      return std::nullopt;
    }
    fits.push_back(f);
  }
  return fits;
}

void collect_annotated(Block* block, std::vector<Node*>* out) {
  for (Node* n : block->nodes()) {
    if (n->kind() == c10::prim::Constant && n->hasAttribute(slope_attr())) out->push_back(n);
    for (Block* b : n->blocks()) collect_annotated(b, out);
  }
}

Value* affine_value(Graph& g, Value* batch, const BatchAffine& f) {
  if (f.a == 0) return g.insertConstant(f.b);
  Value* scaled = f.a == 1 ? batch : g.insert(c10::aten::mul, {batch, f.a});
  return f.b == 0 ? scaled : g.insert(c10::aten::add, {scaled, f.b});
}

}  // namespace

BatchDependence find_batch_dependence(torch::jit::Graph& graph, int64_t batch, const TraceAtBatch& trace) {
  int64_t batches[3] = {batch, 0, 0};
  for (int64_t n = 1, found = 1; found < 3; ++n)
    if (n != batch) batches[found++] = n;
  std::shared_ptr<Graph> others[2];
  for (int t = 0; t < 2; ++t) {
    try {
      others[t] = trace(batches[t + 1]);
    } catch (const std::exception& e) {
      return {false, "it fails at batch size " + std::to_string(batches[t + 1]) + ": " + first_line_of(e)};
    }
  }
  std::vector<std::pair<Node*, const Node*>> pairs[2];
  for (int t = 0; t < 2; ++t) {
    GraphMatch match(graph, *others[t], batch, batches[t + 1]);
    if (!match.ok()) return {false, match.why()};
    pairs[t] = match.constants();
  }
  std::vector<std::pair<Node*, std::vector<BatchAffine>>> fits;
  for (std::size_t k = 0; k < pairs[0].size(); ++k) {
    const Observed seen{
        pairs[0][k].first,
        {*torch::jit::toIValue(pairs[0][k].first->output()), *torch::jit::toIValue(pairs[0][k].second->output()),
         *torch::jit::toIValue(pairs[1][k].second->output())}};
    if (same_ivalue(seen.values[0], seen.values[1]) && same_ivalue(seen.values[0], seen.values[2])) continue;
    std::string why_not;
    std::optional<std::vector<BatchAffine>> f = fit(seen, batches, &why_not);
    if (!f) return {false, why_not};
    fits.emplace_back(seen.node, std::move(*f));
  }
  // Annotated only once every constant fits: a graph is either generic or untouched.
  for (auto& [node, f] : fits) {
    std::vector<int64_t> slopes, offsets;
    for (const auto& e : f) {
      slopes.push_back(e.a);
      offsets.push_back(e.b);
    }
    node->is_(slope_attr(), std::move(slopes));
    node->is_(offset_attr(), std::move(offsets));
  }
  return {true, ""};
}

std::vector<BatchAffine> batch_affine_of(const torch::jit::Node* constant) {
  if (constant->kind() != c10::prim::Constant || !constant->hasAttribute(slope_attr())) return {};
  const std::vector<int64_t>& slopes = constant->is(slope_attr());
  const std::vector<int64_t>& offsets = constant->is(offset_attr());
  std::vector<BatchAffine> out;
  for (std::size_t e = 0; e < slopes.size() && e < offsets.size(); ++e) out.push_back({slopes[e], offsets[e]});
  return out;
}

bool specialised_graph_takes_any_batch(const Model& model) {
  if (!model.batch_dependence().generic) return false;
  std::vector<Node*> annotated;
  collect_annotated(model.graph().block(), &annotated);
  return annotated.empty();
}

std::shared_ptr<torch::jit::Graph> batch_generic_graph(const Model& model) {
  if (!model.batch_dependence().generic) return nullptr;
  std::shared_ptr<Graph> graph = model.graph().copy();
  std::vector<Node*> annotated;
  collect_annotated(graph->block(), &annotated);
  if (!annotated.empty()) {
    Value* batch = nullptr;
    {
      torch::jit::WithInsertPoint at_start(*graph->nodes().begin());
      batch = graph->insert(c10::aten::size, {graph->inputs().at(0), int64_t{0}});
    }
    for (Node* constant : annotated) {
      torch::jit::WithInsertPoint here(constant);
      const std::vector<BatchAffine> fits = batch_affine_of(constant);
      Value* replacement = nullptr;
      if (constant->output()->type()->kind() == c10::TypeKind::IntType) {
        replacement = affine_value(*graph, batch, fits.at(0));
      } else {
        std::vector<Value*> elements;
        for (const auto& f : fits) elements.push_back(affine_value(*graph, batch, f));
        replacement = graph->insertNode(graph->createList(c10::IntType::get(), elements))->output();
      }
      constant->output()->replaceAllUsesWith(replacement);
      constant->destroy();
    }
  }
  // The traced shapes hold at the traced batch only.
  torch::jit::EraseShapeInformation(graph);
  return graph;
}

Model batch_generic_or_specialised(const Model& model) {
  std::shared_ptr<Graph> generic = batch_generic_graph(model);
  return generic ? model.with_graph(std::move(generic)) : model.clone();
}

}  // namespace adze
