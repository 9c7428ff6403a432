#include "compress/activation_placement.h"

#include <torch/csrc/jit/ir/ir.h>

#include <string>

namespace adze {
namespace {

using torch::jit::Node;
using torch::jit::Value;

bool is_add(const Node* n) {
  const std::string k = n->kind().toQualString();
  if (k != "aten::add" && k != "aten::add_") return false;
  // Two computed tensors (not parameters: adding one is a bias), alpha 1: what QLinearAdd computes.
  for (std::size_t i = 0; i < 2; ++i) {
    const Value* v = n->input(i);
    if (v->type()->kind() != c10::TypeKind::TensorType) return false;
    if (v->node()->kind() == c10::prim::Param && v->offset() != 0) return false;
  }
  const auto alpha = n->inputs().size() > 2 ? torch::jit::toIValue(n->input(2)) : c10::optional<c10::IValue>(1);
  return alpha && alpha->isScalar() && alpha->toScalar().toDouble() == 1.0;
}

bool is_average_pool(const Node* n) {
  const std::string k = n->kind().toQualString();
  return k == "aten::avg_pool2d" || k == "aten::adaptive_avg_pool2d";
}

bool is_integer_op(const Node* n) { return is_add(n) || is_average_pool(n); }

// Ops whose int8 result needs no quantization of its own: clamps made redundant by the result's range, and
// ops that move or select values (they commute with quantization).
bool keeps_quantization(const Node* n) {
  static const std::set<std::string> kinds = {"aten::relu",      "aten::relu_",   "aten::hardtanh",   "aten::hardtanh_",
                                              "aten::clamp",     "aten::clamp_",  "aten::max_pool2d", "aten::flatten",
                                              "aten::view",      "aten::reshape", "aten::dropout",    "aten::dropout_",
                                              "aten::contiguous"};
  return kinds.count(n->kind().toQualString()) > 0;
}

// Whether every use of v is quantized, given the integer ops still in `candidates`.
bool uses_quantized(const Value* v, const std::set<NodeInput>& quantized, const std::set<const Node*>& candidates,
                    int depth = 0) {
  if (v->uses().empty() || depth > 16) return false;
  for (const auto& use : v->uses()) {
    if (quantized.count({use.user, use.offset}) || candidates.count(use.user)) continue;
    if (keeps_quantization(use.user) && use.offset == 0 &&
        uses_quantized(use.user->output(), quantized, candidates, depth + 1))
      continue;
    return false;
  }
  return true;
}

std::vector<std::size_t> operand_indices(const Node* n) {
  return is_add(n) ? std::vector<std::size_t>{0, 1} : std::vector<std::size_t>{0};
}

}  // namespace

std::vector<NodeInput> integer_operands(torch::jit::Graph& graph, const std::set<NodeInput>& quantized) {
  std::set<const Node*> candidates;
  for (const Node* n : graph.nodes())
    if (is_integer_op(n)) candidates.insert(n);
  for (bool changed = true; changed;) {
    changed = false;
    for (auto it = candidates.begin(); it != candidates.end();) {
      if (uses_quantized((*it)->output(), quantized, candidates)) {
        ++it;
      } else {
        it = candidates.erase(it);
        changed = true;
      }
    }
  }
  std::vector<NodeInput> operands;
  for (Node* n : graph.nodes())
    if (candidates.count(n))
      for (std::size_t i : operand_indices(n)) operands.emplace_back(n, i);
  return operands;
}

}  // namespace adze
