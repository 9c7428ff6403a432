// The packed runtime's schedule: the graph with element-wise work folded into the op before it, so that it runs
// in that op's epilogue (in cache, with no dispatch, no tensor of its own):
// - a low-rank linear layer's second factor into its first (one packed_factored_matmul call, whose first
//   product never becomes a tensor), then what would fold into the second;
// - a packed matmul's bias add (aten::add of a file tensor), then a ReLU / hardtanh / clamp (into the integer
//   kernels' epilogue) or a GELU (applied to the output in place);
// - an integer or depthwise convolution's ReLU / hardtanh, and a residual add's (as ResNet's add, ReLU);
// - a residual add (alpha 1) into the integer convolution or packed matmul that computes one operand, where the
//   other is a tensor computed before it: the add then runs in that op's epilogue (after the fake quantization a
//   W8A8 model puts on the op's own output), with what had folded into the add; so ResNet's add goes into
//   conv2, or into the downsample convolution that runs after conv2;
// - after an integer convolution's, a packed matmul's or an add's other folds, a calibrated fake quantization of
//   its output (in place: what a depthwise convolution of a W8A8 MobileNet reads, or the next block of a W8A8
//   ResNet), also where the op's output is read besides only by integer layers that quantize it themselves with
//   the same scale and zero point (they then read the fake quantization's output: the same codes);
// - a division of a matmul by a constant (attention's 1/√d), as a scale of the product.
// - then attention's chain after that matmul: [masked_fill,] softmax, the product with V, as one op
//   (attention.h), which skips the keys a causal mask hides and leaves its output in the layout attention's
//   transpose(1, 2).reshape reads as a view.
// Convolutions also leave their outputs channels last where every reader takes that layout (convolutions,
// element-wise ops, fake-quants, pooling, flatten), so the next convolution reads them without a transpose.
//
// Fusion folds only an op whose input is read by nothing else (but for that fake quantization), and never the
// graph's output. The values change only where the fused arithmetic rounds differently (a division by a
// constant that is not a power of two becomes a multiplication). A run that records every layer's output takes the
// unfused graph: its values are the simulation's layer outputs (a packed matmul's output before its bias add).
#pragma once

#include <string>
#include <vector>

#include "runtime/graph.h"

namespace adze {
namespace packed {

/// Folds what can be folded in `nodes` (a copy of the graph, run in order; skipped nodes stay in place,
/// marked skip) whose result is `output`.
void fuse(std::vector<Node>& nodes, const std::string& output);

}  // namespace packed
}  // namespace adze
