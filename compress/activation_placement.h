// Where activation fake-quant goes beyond the inputs of quantized layers, so that an integer runtime keeps the
// tensors between integer ops in int8.
//
// An integer op is an element-wise add of two tensors or an average pool. It can run on int8 codes (ONNX
// Runtime's QLinearAdd, QLinearAveragePool, QLinearGlobalAveragePool) when all its operands and its result are
// quantized. Its result is quantized when every use of it is, directly or through ops that keep values:
//   - a quantized layer's input;
//   - another integer op;
//   - ReLU, ReLU6, hardtanh or clamp, which an int8 result makes redundant;
//   - max pooling, flatten, view, reshape, dropout, contiguous, which commute with quantization.
// The integer ops whose results are quantized are found by a fixed point: start from all of them and drop any
// with a use outside the list, until none changes. Their operands are then quantized too. The convolution
// that feeds a residual add then has its output quantized, which is what QLinearConv needs.
//
// An operand already quantized for a layer reuses that layer's fake-quant; any other gets its own, calibrated
// like the layer inputs. With ReLU after the op (ResNet), the fake-quant goes after the ReLU, so that its
// range starts at 0.
#pragma once

#include <cstddef>
#include <set>
#include <utility>
#include <vector>

namespace torch {
namespace jit {
struct Graph;
struct Node;
}  // namespace jit
}  // namespace torch

namespace adze {

/// One input of one node.
using NodeInput = std::pair<torch::jit::Node*, std::size_t>;

/// The operands (node, input index) of the integer ops of `graph` whose results stay quantized, given the
/// layer inputs that are quantized (`quantized`: each a layer op and the index of its activation input). In
/// graph order.
std::vector<NodeInput> integer_operands(torch::jit::Graph& graph, const std::set<NodeInput>& quantized);

}  // namespace adze
