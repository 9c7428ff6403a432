// Reading the traced graph's values, for exporters that translate it op by op (onnx, c-header).
#pragma once

#include <ATen/core/ivalue.h>

#include <cstdint>
#include <string>
#include <vector>

namespace torch {
namespace jit {
struct Value;
}  // namespace jit
}  // namespace torch

namespace adze {

/// The complete shape the trace recorded for `v`, or {} when it is not a tensor of known shape.
std::vector<int64_t> traced_sizes(const torch::jit::Value* v);

/// The constant `v` holds: a prim::Constant, or a prim::ListConstruct of constant ints. Error(kUnsupported),
/// prefixed with `exporter`, when it is computed at run time.
c10::IValue constant_of(const torch::jit::Value* v, const std::string& exporter);

}  // namespace adze
