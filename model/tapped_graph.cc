#include "model/tapped_graph.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/csrc/jit/runtime/interpreter.h>

#include <set>

#include "core/error.h"
#include "model/faster_graph.h"

namespace adze {

using torch::jit::Node;
using torch::jit::Value;

TappedGraph::TappedGraph(const Model& model, const std::vector<const Value*>& taps) : model_(model) {
  torch::jit::Graph& original = model.graph();  // copy() is not const, but leaves the graph as it is
  std::shared_ptr<torch::jit::Graph> graph = original.copy();
  std::map<const Value*, Value*> mapping;  // copy() keeps the order of inputs, nodes and outputs
  for (std::size_t i = 0; i < original.inputs().size(); ++i) mapping[original.inputs()[i]] = graph->inputs()[i];
  auto copied = graph->nodes().begin();
  for (const Node* n : original.nodes()) {
    for (std::size_t i = 0; i < n->outputs().size(); ++i) mapping[n->outputs()[i]] = copied->outputs()[i];
    ++copied;
  }
  for (const Value* v : taps) {
    const auto it = mapping.find(v);
    if (it == mapping.end())
      throw Error(ErrorKind::kInternal, "tapped value %" + v->debugName() + " is not in the graph");
    graph->registerOutput(it->second);
  }
  extra_ = taps.size();
  std::shared_ptr<torch::jit::Graph> faster = faster_graph(*graph);
  code_ = std::make_unique<torch::jit::Code>(faster ? faster : graph, "tapped");
}

TappedGraph::~TappedGraph() = default;

TappedGraph::Result TappedGraph::run(const at::Tensor& x) const {
  torch::jit::Stack stack{x};
  const auto inputs = model_.graph().inputs();
  for (std::size_t i = 1; i < inputs.size(); ++i) stack.emplace_back(model_.tensor_of(inputs[i])->value);
  torch::jit::InterpreterState(*code_).run(stack);
  Result r;
  const c10::IValue& out = stack.at(0);
  r.output = out.isTuple() ? out.toTupleRef().elements().at(0).toTensor() : out.toTensor();
  for (std::size_t i = stack.size() - extra_; i < stack.size(); ++i) r.values.push_back(stack[i].toTensor());
  return r;
}

std::string layer_output_key(const std::string& layer, std::map<std::string, int>& seen) {
  const int n = ++seen[layer];
  return n == 1 ? layer : layer + "@" + std::to_string(n);
}

std::vector<LayerOutput> layer_outputs(const Model& model, const std::map<std::string, std::string>& layer_of_weight) {
  std::set<const Value*> from_input{model.graph().inputs()[0]};
  std::map<const Value*, std::string> weight_only;  // values computed from one layer's weight alone
  for (const Value* v : model.graph().inputs())
    if (const NamedTensor* t = model.tensor_of(v))
      if (auto it = layer_of_weight.find(t->name); it != layer_of_weight.end()) weight_only[v] = it->second;
  std::vector<LayerOutput> out;
  std::map<std::string, int> seen;
  for (const Node* n : model.graph().nodes()) {
    bool reads_input = false;
    const std::string* layer = nullptr;
    for (const Value* v : n->inputs()) {
      reads_input |= from_input.count(v) > 0;
      if (auto it = weight_only.find(v); it != weight_only.end()) layer = &it->second;
    }
    if (reads_input) {
      for (const Value* o : n->outputs()) from_input.insert(o);
      if (layer && n->outputs().size() == 1 && n->output()->type()->cast<c10::TensorType>())
        out.push_back({layer_output_key(*layer, seen), n->output()});
    } else if (layer) {
      for (const Value* o : n->outputs()) weight_only[o] = *layer;
    }
  }
  return out;
}

}  // namespace adze
