#include "model/layer_table.h"

#include <torch/csrc/jit/ir/ir.h>

#include <algorithm>
#include <map>
#include <set>

#include "core/error.h"
#include "model/model.h"

namespace adze {
namespace {

using torch::jit::Node;
using torch::jit::Value;

// Ops adze understands (compresses, costs or exports); anything else is reported as unknown.
const std::set<std::string>& known_ops() {
  static const std::set<std::string> ops = {"aten::linear",
                                            "aten::_convolution",
                                            "aten::convolution",
                                            "aten::conv1d",
                                            "aten::conv2d",
                                            "aten::embedding",
                                            "aten::matmul",
                                            "aten::mm",
                                            "aten::bmm",
                                            "aten::addmm",
                                            "aten::add",
                                            "aten::add_",
                                            "aten::sub",
                                            "aten::mul",
                                            "aten::div",
                                            "aten::relu",
                                            "aten::relu_",
                                            "aten::gelu",
                                            "aten::silu",
                                            "aten::sigmoid",
                                            "aten::tanh",
                                            "aten::hardswish",
                                            "aten::hardswish_",
                                            "aten::hardtanh",
                                            "aten::hardtanh_",
                                            "aten::clamp",
                                            "aten::softmax",
                                            "aten::log_softmax",
                                            "aten::layer_norm",
                                            "aten::batch_norm",
                                            "aten::max_pool2d",
                                            "aten::avg_pool2d",
                                            "aten::adaptive_avg_pool2d",
                                            "aten::flatten",
                                            "aten::reshape",
                                            "aten::view",
                                            "aten::transpose",
                                            "aten::t",
                                            "aten::permute",
                                            "aten::cat",
                                            "aten::slice",
                                            "aten::chunk",
                                            "aten::split",
                                            "aten::unsafe_chunk",
                                            "aten::unsafe_split",
                                            "aten::dropout",
                                            "aten::contiguous",
                                            "aten::select",
                                            "aten::unsqueeze",
                                            "aten::squeeze",
                                            "aten::expand",
                                            "aten::mean",
                                            "aten::size",
                                            "aten::Int",
                                            "aten::ScalarImplicit",
                                            "aten::scaled_dot_product_attention",
                                            "aten::masked_fill",
                                            "aten::to",
                                            "aten::detach",
                                            "aten::neg",
                                            "aten::sqrt",
                                            "aten::rsqrt",
                                            "aten::pow",
                                            "aten::exp",
                                            "aten::sum",
                                            "aten::zeros",
                                            "aten::ones",
                                            "aten::arange",
                                            "aten::triu",
                                            "aten::tril",
                                            "aten::eq",
                                            "aten::ne",
                                            "aten::lt",
                                            "aten::gt",
                                            "aten::where",
                                            "aten::zeros_like",
                                            "aten::ones_like",
                                            "aten::fake_quantize_per_tensor_affine",
                                            "aten::fake_quantize_per_channel_affine",
                                            "aten::baddbmm",
                                            "aten::repeat",
                                            "aten::index_select",
                                            "aten::numel",
                                            "aten::max",
                                            "aten::min",
                                            "aten::abs",
                                            "aten::clone",
                                            "aten::new_zeros",
                                            "aten::full",
                                            "prim::Constant",
                                            "prim::ListConstruct",
                                            "prim::ListUnpack",
                                            "prim::TupleConstruct",
                                            "prim::TupleUnpack",
                                            "prim::NumToTensor"};
  return ops;
}

std::vector<int64_t> sizes_of(const Value* v) {
  auto type = v->type()->cast<c10::TensorType>();
  if (!type) return {};
  auto sizes = type->sizes().concrete_sizes();
  return sizes ? *sizes : std::vector<int64_t>{};
}

int64_t numel_of(const Value* v) {
  auto s = sizes_of(v);
  if (s.empty()) return 0;
  int64_t n = 1;
  for (auto d : s) n *= d;
  return n;
}

std::string module_path_of(const std::string& weight) {
  const std::string suffix = ".weight";
  if (weight.size() > suffix.size() && weight.compare(weight.size() - suffix.size(), suffix.size(), suffix) == 0)
    return weight.substr(0, weight.size() - suffix.size());
  return weight;
}

struct Use {
  LayerKind kind;
  int64_t macs = 0;
  int64_t in = 0, out = 0, groups = 1;
  int reduction_dim = 1;
  const NamedTensor* bias = nullptr;
};

class Builder {
 public:
  Builder(const Model& model, LayerTable& table) : model_(model), table_(table) {}

  void visit(const Node* node) {
    const std::string kind = node->kind().toQualString();
    if (!known_ops().count(kind)) {
      ++unknown_[kind];
      return;
    }
    if (kind == "aten::linear") return linear(node);
    if (kind == "aten::_convolution" || kind == "aten::convolution" || kind == "aten::conv1d" || kind == "aten::conv2d")
      return convolution(node, kind);
    if (kind == "aten::embedding") return embedding(node);
    if (kind == "aten::matmul" || kind == "aten::mm" || kind == "aten::bmm") return matmul(node, 0, 1);
    if (kind == "aten::addmm") return matmul(node, 1, 2);
  }

  void finish() {
    for (const auto& [name, count] : unknown_) table_.unknown_ops.push_back(UnknownOp{name, count});
    for (const auto& layer : table_.layers) table_.total_macs += layer.macs;
    table_.total_params = model_.parameter_count();
  }

 private:
  int64_t per_sample(int64_t total) const { return total / std::max<int64_t>(1, table_.batch); }

  const NamedTensor* param_of(const Value* v) const {
    const NamedTensor* t = model_.tensor_of(v);
    return (t && t->is_parameter) ? t : nullptr;
  }

  void linear(const Node* node) {
    const NamedTensor* w = param_of(node->input(1));
    if (!w || w->value.dim() != 2) return;
    Use use{LayerKind::kLinear};
    use.out = w->value.size(0);
    use.in = w->value.size(1);
    use.macs = per_sample(numel_of(node->output()) * use.in);
    use.bias = param_of(node->input(2));
    record(*w, use, node->input(0), node->output());
  }

  void convolution(const Node* node, const std::string& kind) {
    const NamedTensor* w = param_of(node->input(1));
    if (!w || (w->value.dim() != 3 && w->value.dim() != 4)) return;
    const bool has_transposed = kind == "aten::_convolution" || kind == "aten::convolution";
    if (has_transposed) {
      auto transposed = torch::jit::constant_as<bool>(node->input(6));
      if (!transposed || *transposed) {
        ++unknown_[kind + " (transposed)"];
        return;
      }
    }
    auto groups = torch::jit::constant_as<int64_t>(node->input(has_transposed ? 8 : 6));
    Use use{w->value.dim() == 3 ? LayerKind::kConv1d : LayerKind::kConv2d};
    use.groups = groups.value_or(1);
    use.out = w->value.size(0);
    use.in = w->value.size(1) * use.groups;
    const int64_t per_output = w->value.numel() / w->value.size(0);  // (in/groups) * kernel
    use.macs = per_sample(numel_of(node->output()) * per_output);
    use.bias = param_of(node->input(2));
    record(*w, use, node->input(0), node->output());
  }

  void embedding(const Node* node) {
    const NamedTensor* w = param_of(node->input(0));
    if (!w || w->value.dim() != 2) return;
    Use use{LayerKind::kEmbedding};
    use.in = w->value.size(0);
    use.out = w->value.size(1);
    record(*w, use, node->input(1), node->output());
  }

  // A matmul-like op whose operand `a` or `b` is a parameter, directly or through a transpose.
  void matmul(const Node* node, std::size_t a, std::size_t b) {
    for (std::size_t operand : {a, b}) {
      const Value* v = node->input(operand);
      bool transposed = false;
      if (v->node()->kind().toQualString() == std::string("aten::t")) {
        v = v->node()->input(0);
        transposed = true;
      }
      const NamedTensor* w = param_of(v);
      if (!w || w->value.dim() != 2) continue;
      // As the right operand (x @ W, W [K, N]) the reduction runs over rows; as the left one over columns.
      int reduction = operand == b ? 0 : 1;
      if (transposed) reduction = 1 - reduction;
      Use use{LayerKind::kMatmul};
      use.reduction_dim = reduction;
      use.in = w->value.size(reduction);
      use.out = w->value.size(1 - reduction);
      use.macs = per_sample(numel_of(node->output()) * use.in);
      if (operand == b && node->inputs().size() > 2 && a == 1) use.bias = param_of(node->input(0));
      // A tied weight used as in a linear (e.g. an LM head tied to the embedding) keeps its first kind.
      record(*w, use, node->input(operand == a ? b : a), node->output());
      return;
    }
  }

  void record(const NamedTensor& w, const Use& use, const Value* input, const Value* output) {
    const int64_t in_elements = per_sample(numel_of(input)), out_elements = per_sample(numel_of(output));
    auto it = index_.find(w.name);
    if (it != index_.end()) {
      Layer& layer = table_.layers[it->second];
      layer.uses += 1;
      layer.macs += use.macs;
      layer.input_elements += in_elements;
      layer.output_elements += out_elements;
      return;
    }
    Layer layer;
    layer.weight = w.name;
    layer.name = module_path_of(w.name);
    layer.kind = use.kind;
    layer.weight_shape = Shape(w.value.sizes().begin(), w.value.sizes().end());
    layer.params = w.value.numel();
    layer.bias_params = use.bias ? use.bias->value.numel() : 0;
    layer.macs = use.macs;
    layer.input_elements = in_elements;
    layer.output_elements = out_elements;
    layer.in_channels = use.in;
    layer.out_channels = use.out;
    layer.groups = use.groups;
    layer.reduction_dim = use.reduction_dim;
    layer.reduction_size = w.value.size(use.reduction_dim);
    layer.tied_names = w.aliases;
    index_.emplace(w.name, table_.layers.size());
    table_.layers.push_back(std::move(layer));
  }

  const Model& model_;
  LayerTable& table_;
  std::map<std::string, std::size_t> index_;
  std::map<std::string, int> unknown_;
};

void visit_block(const torch::jit::Block* block, Builder& builder) {
  for (const Node* node : block->nodes()) {
    builder.visit(node);
    for (const auto* sub : node->blocks()) visit_block(sub, builder);
  }
}

}  // namespace

const char* to_string(LayerKind kind) {
  switch (kind) {
    case LayerKind::kLinear:
      return "linear";
    case LayerKind::kConv1d:
      return "conv1d";
    case LayerKind::kConv2d:
      return "conv2d";
    case LayerKind::kEmbedding:
      return "embedding";
    case LayerKind::kMatmul:
      return "matmul";
  }
  return "unknown";
}

LayerTable build_layer_table(const Model& model) {
  LayerTable table;
  table.batch = model.traced_batch();
  Builder builder(model, table);
  visit_block(model.graph().block(), builder);
  builder.finish();
  return table;
}

}  // namespace adze
