// Which ops of a packed graph the runtime computes with kernels of its own (float_ops.h) instead of ATen's
// operators, decided at open from each op's name and constant arguments, and running them. Shapes are only
// known at run time: where the values do not fit a kernel, run_own_op says so and the runtime calls ATen.
#pragma once

#include <functional>
#include <optional>

#include "runtime/graph.h"

namespace adze {
namespace packed {

/// Sets node.own and its parameters where a kernel of the runtime's own computes the op; `constant_tensor`
/// gives the tensor an argument holds at open (a file tensor or a decoded weight), or null.
void select_own_op(Node& node, const std::function<const at::Tensor*(const Arg&)>& constant_tensor);

/// The calibrated quantizer of an 8-bit fake-quant node (aten::fake_quantize_per_tensor_affine, codes 0..255)
/// whose scale and zero point are constants or one-value tensors known at open; nullopt for any other node.
std::optional<ActivationQuant> calibrated_quantizer(
    const Node& fq, const std::function<const at::Tensor*(const Arg&)>& constant_tensor);

/// Runs node.own on its arguments' values (value(i) is argument i's), with what fusion.h fused into it;
/// undefined when the values do not fit the kernel. `range`, where not null, is widened by the output's values
/// where the kernel takes them (a max pool's, Node::passes_range), and left as it was otherwise.
at::Tensor run_own_op(const Node& node, const std::function<const c10::IValue&(std::size_t)>& value,
                      float* range = nullptr);

}  // namespace packed
}  // namespace adze
