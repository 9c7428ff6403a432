#include "model/faster_graph.h"

#include <torch/csrc/jit/ir/ir.h>

#include <vector>

namespace adze {
namespace {

using torch::jit::Graph;
using torch::jit::Node;
using torch::jit::Value;

// The trace saw a 4-d float tensor of at least kMinChannels channels and more than one pixel. Its layout is tested
// at run time. With fewer channels the channels-last loop has too little to vectorise: over [64, C, 56, 56] with a
// 2x2 window, C = 2 and 3 ran 0.55-0.83x as fast with the conversions, C = 4 1.36-1.59x, C = 8 2.6-3.0x (three
// timings each, Python's torch on the same libtorch, one thread, one-off).
constexpr int64_t kMinChannels = 4;
bool float_planes(const Value* x) {
  const auto type = x->type()->cast<c10::TensorType>();
  if (!type || type->scalarType() != at::kFloat) return false;
  const auto sizes = type->sizes().concrete_sizes();
  return sizes && sizes->size() == 4 && (*sizes)[1] >= kMinChannels && (*sizes)[2] * (*sizes)[3] > 1;
}

// In place of y = max_pool2d(x, ...):
//   y = x.is_contiguous() ? max_pool2d(x.contiguous(channels_last), ...).contiguous() : max_pool2d(x, ...)
// The test is made at run time: what the trace saw is not what every run gets (a weight replaced by one laid
// out channels last makes the convolution before the pool write channels last), and a pool given a
// channels-last input gives a channels-last output, which the ops after it must see to compute the same bits.
void pool_channels_last(Graph& graph, Node* pool) {
  Value* x = pool->input(0);
  torch::jit::WithInsertPoint before(pool);
  Value* nchw = graph.insert(c10::Symbol::aten("is_contiguous"), {x});
  Node* choice = graph.insertNode(graph.create(c10::prim::If, {nchw}, 1));
  choice->output()->setType(pool->output()->type());

  torch::jit::Block* fast = choice->addBlock();
  {
    torch::jit::WithInsertPoint in(fast);
    Value* cl = graph.insert(c10::aten::contiguous, {x},
                             {torch::jit::NamedValue("memory_format", c10::MemoryFormat::ChannelsLast)});
    Node* pooled = fast->appendNode(graph.createClone(pool, [&](Value* v) { return v == x ? cl : v; }));
    pooled->output()->setType(c10::TensorType::get());
    Value* back = graph.insert(c10::aten::contiguous, {pooled->output()},
                               {torch::jit::NamedValue("memory_format", c10::MemoryFormat::Contiguous)});
    back->setType(pool->output()->type());
    fast->registerOutput(back);
  }
  torch::jit::Block* as_traced = choice->addBlock();
  as_traced->registerOutput(as_traced->appendNode(graph.createClone(pool, [](Value* v) { return v; }))->output());

  pool->output()->replaceAllUsesWith(choice->output());
  pool->destroy();
}

}  // namespace

std::shared_ptr<Graph> faster_graph(Graph& graph) {
  std::shared_ptr<Graph> copy = graph.copy();
  std::vector<Node*> pools;
  for (Node* node : copy->nodes())
    if (node->kind() == c10::aten::max_pool2d && node->outputs().size() == 1 && float_planes(node->input(0)))
      pools.push_back(node);
  if (pools.empty()) return nullptr;
  for (Node* pool : pools) pool_channels_last(*copy, pool);
  return copy;
}

}  // namespace adze
