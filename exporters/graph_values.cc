#include "exporters/graph_values.h"

#include <torch/csrc/jit/ir/ir.h>

#include "core/error.h"

namespace adze {

std::vector<int64_t> traced_sizes(const torch::jit::Value* v) {
  const auto t = v->type()->cast<c10::TensorType>();
  if (!t) return {};
  const auto s = t->sizes().concrete_sizes();
  return s ? *s : std::vector<int64_t>{};
}

c10::IValue constant_of(const torch::jit::Value* v, const std::string& exporter) {
  if (v->node()->kind() == c10::prim::ListConstruct) {
    c10::List<int64_t> list;
    for (const torch::jit::Value* i : v->node()->inputs()) list.push_back(constant_of(i, exporter).toInt());
    return list;
  }
  auto iv = torch::jit::toIValue(v);
  if (!iv)
    throw Error(ErrorKind::kUnsupported,
                exporter + ": a non-constant argument of " + std::string(v->node()->kind().toQualString()));
  return *iv;
}

}  // namespace adze
