// The graph libtorch's interpreter runs: a copy of a Model's graph with rewrites that compute the very same
// values, faster in libtorch, while the graph that passes and exporters see stays as traced.
//
// One rewrite today. libtorch's max_pool2d on a contiguous (NCHW) float tensor runs a scalar loop per output
// element, and on a channels-last one a vectorised loop over the channels. So a pool whose input is NCHW when it
// runs computes contiguous(max_pool2d(x.contiguous(channels_last)), NCHW): the two layout changes cost less than
// the pool saves (docs/results/fast-pool-2026-12-01.md), and a max is a max in either layout: the values, NaN
// and infinities included, are the same bits, and the output is NCHW as the original op's. An input in any
// other layout goes to the original op.
#pragma once

#include <memory>

namespace torch {
namespace jit {
struct Graph;
}
}  // namespace torch

namespace adze {

/// A copy of `graph` with the rewrites above, or null where none applies (run `graph` itself then). Only pools
/// whose input the trace recorded as a 4-d float tensor of at least four channels and more than one pixel are
/// rewritten (fewer channels gain nothing); `graph` is not changed.
std::shared_ptr<torch::jit::Graph> faster_graph(torch::jit::Graph& graph);

}  // namespace adze
