// Batch-generic graphs: which int constants of a traced graph are the batch size in disguise.
//
// The tracer bakes every int that came from x.size(0) into the graph as a constant (multi-head attention
// reshapes to [seq, batch*heads, head_dim]), so a traced graph runs at its traced batch only. The front-end
// therefore traces the model at two more batch sizes. When the three graphs match node for node (same kinds in
// the same order, same wiring, same attributes) and differ only in int or int-list constants, each differing
// int is fitted as a*batch + b with integer a, b from two of the traces and checked against the third; anything
// else leaves the model batch-specialised, as a traced graph always was, with the reason recorded
// (Model::batch_dependence()).
//
// The fit lives on the prim::Constant nodes of the Model's own graph, as two int-list node attributes. So it
// travels with Graph::copy (Model::clone) and with every pass that keeps those nodes; prim::Constant still
// evaluates to its value (toIValue reads attr::value only), and constant pooling never merges an annotated
// constant with a plain one (node equality compares attributes). A pass that replaced an annotated constant by a
// fresh one would bake the traced value back in: passes keep the constants they do not own (none of today's
// passes makes shape constants, and none runs constant propagation). Passes and exporters keep seeing the
// constant, batch-specialised graph; batch_generic_graph() builds the form that runs at any batch size when
// one is wanted (model.pt of adze compress, the torchscript exporter's dynamic_batch), and batch_affine_of()
// lets an exporter write a symbolic batch dimension of its own.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <vector>

#include "model/model.h"

namespace torch {
namespace jit {
struct Node;
}
}  // namespace torch

namespace adze {

/// One int of a constant as a function of the batch size n: a*n + b (a == 0: it does not depend on n).
struct BatchAffine {
  int64_t a = 0;
  int64_t b = 0;
  int64_t at(int64_t batch) const { return a * batch + b; }
};

/// Traces the model at a batch size and returns its graph, dead code removed, as the front-end does. It may
/// throw: a model that cannot run at that batch size is batch-specialised.
using TraceAtBatch = std::function<std::shared_ptr<torch::jit::Graph>(int64_t batch)>;

/// Traces at two more batch sizes (the two smallest of 1, 2, 3 other than `batch`: cheap however large the
/// traced batch) and compares with `graph`, which was traced at `batch`. When it is batch-generic, annotates
/// the batch-dependent constants of `graph` in place. Never throws for a merely batch-specialised model: the
/// result says why (a trace that failed, a graph that differs in structure, an int that no a*batch + b fits).
BatchDependence find_batch_dependence(torch::jit::Graph& graph, int64_t batch, const TraceAtBatch& trace);

/// For a prim::Constant node of a batch-generic Model's graph: one BatchAffine per int (one for an int, one
/// per element of an int list), when the front-end found the constant batch-dependent; else empty.
std::vector<BatchAffine> batch_affine_of(const torch::jit::Node* constant);

/// Whether model.graph() itself runs at any batch size: the model is batch-generic and none of its constants
/// depends on the batch (a CNN whose flatten keeps the batch dimension as it comes).
bool specialised_graph_takes_any_batch(const Model& model);

/// model.graph() with every batch-dependent constant replaced by int arithmetic on aten::size(input, 0)
/// (aten::mul, aten::add; prim::ListConstruct for a list) and shapes erased: it runs at any batch size. Same
/// inputs and outputs as model.graph(). nullptr when the model is batch-specialised.
std::shared_ptr<torch::jit::Graph> batch_generic_graph(const Model& model);

/// The model with batch_generic_graph() as its graph when there is one, otherwise a copy of the model itself
/// (for writing a file: save_torchscript).
Model batch_generic_or_specialised(const Model& model);

}  // namespace adze
