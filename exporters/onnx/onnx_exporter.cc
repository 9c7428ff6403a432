// onnx: the compressed model as ONNX (opset 17, plus com.microsoft's MatMulNBits), written with libonnx's
// protobuf types, in the forms ONNX Runtime runs fastest (onnx_layers.h): QDQ that its fusions turn into
// QLinearConv / QGemm for quantized weights and activations, MatMulNBits for linear layers
// with quantized weights only, float32 for the rest.
//
// N:M-sparse weights carry exact zeros and the pattern in the model's metadata ("adze.nm.<layer>"). Activation
// fake-quant becomes QuantizeLinear → DequantizeLinear (uint8, per tensor). Every other op of the traced graph
// is translated one by one; an op without a translation is an error listing them all, caught by the contract
// before any work.
#include <onnx/checker.h>
#include <onnx/onnx_pb.h>
#include <torch/csrc/jit/ir/ir.h>
#include <torch/torch.h>

#include <cmath>
#include <filesystem>
#include <functional>
#include <limits>
#include <set>

#include "core/error.h"
#include "core/files.h"
#include "exporters/graph_values.h"
#include "exporters/onnx/onnx_builder.h"
#include "exporters/onnx/onnx_layers.h"
#include "exporters/onnx/onnx_runtime.h"
#include "exporters/register.h"

namespace adze {
namespace {

using torch::jit::Node;
using torch::jit::Value;

constexpr int kOpset = 17;

using Builder = OnnxBuilder;
using Handler = std::function<std::string(Builder&, const Node*)>;

std::string unary(Builder& b, const Node* n, const char* op) { return b.node(op, {b.in(n->input(0))}); }
std::string binary(Builder& b, const Node* n, const char* op) {
  auto operand = [&](const Value* v) {
    if (v->type()->kind() == c10::TypeKind::TensorType || !torch::jit::toIValue(v)) return b.in(v);
    return b.scalar(b.constant(v).toScalar().toDouble());
  };
  if ((n->kind() == c10::aten::add || n->kind() == c10::aten::sub ||
       n->kind() == c10::Symbol::fromQualString("aten::add_")) &&
      n->inputs().size() > 2 && b.constant(n->input(2)).toScalar().toDouble() != 1.0)
    throw Error(ErrorKind::kUnsupported, "onnx: add/sub with alpha != 1");
  return b.node(op, {operand(n->input(0)), operand(n->input(1))});
}

std::vector<int64_t> perm_swapping(int64_t rank, int64_t a, int64_t c) {
  std::vector<int64_t> p(static_cast<std::size_t>(rank));
  for (int64_t i = 0; i < rank; ++i) p[static_cast<std::size_t>(i)] = i;
  std::swap(p[static_cast<std::size_t>((a + rank) % rank)], p[static_cast<std::size_t>((c + rank) % rank)]);
  return p;
}

const std::map<std::string, Handler>& handlers() {
  static const std::map<std::string, Handler> h = {
      {"aten::_convolution", onnx_convolution},
      {"aten::linear", onnx_linear},
      {"aten::t",
       [](Builder& b, const Node* n) {  // of a parameter: made where used (OnnxBuilder::in, onnx_matmul)
         if (b.model().model.tensor_of(n->input(0))) return std::string();
         return b.node("Transpose", {b.in(n->input(0))}, [](onnx::NodeProto* p) {
           Builder::attr(p, "perm", std::vector<int64_t>{1, 0});
         });
       }},
      {"aten::mm", onnx_matmul},
      {"aten::bmm", [](Builder& b, const Node* n) { return binary(b, n, "MatMul"); }},
      {"aten::matmul", onnx_matmul},
      {"aten::add", [](Builder& b, const Node* n) { return binary(b, n, "Add"); }},
      {"aten::add_", [](Builder& b, const Node* n) { return binary(b, n, "Add"); }},
      {"aten::sub", [](Builder& b, const Node* n) { return binary(b, n, "Sub"); }},
      {"aten::mul", [](Builder& b, const Node* n) { return binary(b, n, "Mul"); }},
      {"aten::div", [](Builder& b, const Node* n) { return binary(b, n, "Div"); }},
      {"aten::relu", [](Builder& b, const Node* n) { return unary(b, n, "Relu"); }},
      {"aten::sigmoid", [](Builder& b, const Node* n) { return unary(b, n, "Sigmoid"); }},
      {"aten::tanh", [](Builder& b, const Node* n) { return unary(b, n, "Tanh"); }},
      {"aten::hardswish", [](Builder& b, const Node* n) { return unary(b, n, "HardSwish"); }},
      {"aten::silu",
       [](Builder& b, const Node* n) {
         const std::string x = b.in(n->input(0));
         return b.node("Mul", {x, b.node("Sigmoid", {x})});
       }},
      {"aten::gelu",
       [](Builder& b, const Node* n) {  // exact GELU: 0.5·x·(1 + erf(x/√2)); opset 17 has no Gelu
         if (n->inputs().size() > 1 && b.constant(n->input(1)).toStringRef() != "none")
           throw Error(ErrorKind::kUnsupported, "onnx: gelu with approximate='tanh'");
         const std::string x = b.in(n->input(0));
         const std::string erf = b.node("Erf", {b.node("Div", {x, b.scalar(std::sqrt(2.0))})});
         return b.node("Mul", {b.node("Mul", {x, b.scalar(0.5)}), b.node("Add", {erf, b.scalar(1.0)})});
       }},
      {"aten::hardtanh",
       [](Builder& b, const Node* n) {
         return b.node("Clip", {b.in(n->input(0)), b.scalar(b.constant(n->input(1)).toScalar().toDouble()),
                                b.scalar(b.constant(n->input(2)).toScalar().toDouble())});
       }},
      {"aten::clamp",
       [](Builder& b, const Node* n) {
         auto bound = [&](const Value* v) {
           return b.is_none(v) ? std::string() : b.scalar(b.constant(v).toScalar().toDouble());
         };
         std::vector<std::string> inputs = {b.in(n->input(0)), bound(n->input(1))};
         if (!b.is_none(n->input(2))) inputs.push_back(bound(n->input(2)));
         return b.node("Clip", inputs);
       }},
      {"aten::dropout", [](Builder& b, const Node* n) { return unary(b, n, "Identity"); }},
      {"aten::contiguous", [](Builder& b, const Node* n) { return unary(b, n, "Identity"); }},
      {"aten::max_pool2d",
       [](Builder& b, const Node* n) {
         const auto kernel = b.ints_of(n->input(1)), pad = b.ints_of(n->input(3)), dilation = b.ints_of(n->input(4));
         auto stride = b.ints_of(n->input(2));
         if (stride.empty()) stride = kernel;
         const bool ceil = b.constant(n->input(5)).toBool();
         return b.node("MaxPool", {b.in(n->input(0))}, [&](onnx::NodeProto* p) {
           Builder::attr(p, "kernel_shape", kernel);
           Builder::attr(p, "strides", stride);
           Builder::attr(p, "pads", Builder::pads(pad));
           Builder::attr(p, "dilations", dilation);
           Builder::attr(p, "ceil_mode", static_cast<int64_t>(ceil));
         });
       }},
      {"aten::avg_pool2d",
       [](Builder& b, const Node* n) {
         const auto kernel = b.ints_of(n->input(1)), pad = b.ints_of(n->input(3));
         auto stride = b.ints_of(n->input(2));
         if (stride.empty()) stride = kernel;
         if (!b.is_none(n->input(6))) throw Error(ErrorKind::kUnsupported, "onnx: avg_pool2d with divisor_override");
         const bool ceil = b.constant(n->input(4)).toBool(), count_pad = b.constant(n->input(5)).toBool();
         return b.node("AveragePool", {b.in(n->input(0))}, [&](onnx::NodeProto* p) {
           Builder::attr(p, "kernel_shape", kernel);
           Builder::attr(p, "strides", stride);
           Builder::attr(p, "pads", Builder::pads(pad));
           Builder::attr(p, "ceil_mode", static_cast<int64_t>(ceil));
           Builder::attr(p, "count_include_pad", static_cast<int64_t>(count_pad));
         });
       }},
      {"aten::mean",
       [](Builder& b, const Node* n) {
         if (n->inputs().size() < 3 || (n->inputs().size() > 3 && !b.is_none(n->input(3))))
           throw Error(ErrorKind::kUnsupported, "onnx: mean over all dimensions or with a dtype");
         const auto axes = b.ints_of(n->input(1));
         const bool keep = b.constant(n->input(2)).toBool();
         return b.node("ReduceMean", {b.in(n->input(0))}, [&](onnx::NodeProto* p) {
           Builder::attr(p, "axes", axes);
           Builder::attr(p, "keepdims", static_cast<int64_t>(keep));
         });
       }},
      {"aten::adaptive_avg_pool2d",
       [](Builder& b, const Node* n) {
         const auto out = b.ints_of(n->input(1));
         if (out != std::vector<int64_t>{1, 1})
           throw Error(ErrorKind::kUnsupported, "onnx: adaptive_avg_pool2d to other than 1x1");
         return unary(b, n, "GlobalAveragePool");
       }},
      {"aten::flatten",
       [](Builder& b, const Node* n) {
         const auto in = traced_sizes(n->input(0)), out = traced_sizes(n->output());
         if (out.empty()) throw Error(ErrorKind::kUnsupported, "onnx: flatten of a value with unknown shape");
         const auto rank = static_cast<int64_t>(in.size());
         const int64_t start = (b.int_of(n->input(1)) + rank) % std::max<int64_t>(rank, 1);
         const int64_t end = (b.int_of(n->input(2)) + rank) % std::max<int64_t>(rank, 1);
         // To the last dimension: the leading dimensions copied (0), whatever the batch; else the traced sizes.
         std::vector<int64_t> shape = out;
         if (end == rank - 1) {
           shape.assign(static_cast<std::size_t>(start), 0);
           shape.push_back(-1);
         } else if (b.options().dynamic_batch) {
           throw Error(ErrorKind::kUnsupported,
                       "onnx: dynamic batch: a flatten short of the last dimension (export "
                       "with a fixed --batch)");
         }
         return b.node("Reshape", {b.in(n->input(0)), b.ints(shape)});
       }},
      {"aten::view",
       [](Builder& b, const Node* n) {
         return b.node("Reshape", {b.in(n->input(0)), b.shape(n->input(1))});
       }},
      {"aten::reshape",
       [](Builder& b, const Node* n) {
         return b.node("Reshape", {b.in(n->input(0)), b.shape(n->input(1))});
       }},
      {"aten::transpose",
       [](Builder& b, const Node* n) {
         const auto perm = perm_swapping(static_cast<int64_t>(traced_sizes(n->input(0)).size()), b.int_of(n->input(1)),
                                         b.int_of(n->input(2)));
         return b.node("Transpose", {b.in(n->input(0))}, [&](onnx::NodeProto* p) { Builder::attr(p, "perm", perm); });
       }},
      {"aten::permute",
       [](Builder& b, const Node* n) {
         const auto perm = b.ints_of(n->input(1));
         return b.node("Transpose", {b.in(n->input(0))}, [&](onnx::NodeProto* p) { Builder::attr(p, "perm", perm); });
       }},
      {"aten::softmax",
       [](Builder& b, const Node* n) {
         const int64_t axis = b.int_of(n->input(1));
         return b.node("Softmax", {b.in(n->input(0))}, [&](onnx::NodeProto* p) { Builder::attr(p, "axis", axis); });
       }},
      {"aten::layer_norm",
       [](Builder& b, const Node* n) {
         const auto shape = b.ints_of(n->input(1));
         const auto eps = static_cast<float>(b.constant(n->input(4)).toDouble());
         std::vector<std::string> inputs = {b.in(n->input(0))};
         inputs.push_back(b.is_none(n->input(2)) ? b.initializer(b.fresh("ones"), torch::ones(shape))
                                                 : b.in(n->input(2)));
         if (!b.is_none(n->input(3))) inputs.push_back(b.in(n->input(3)));
         const auto rank = static_cast<int64_t>(traced_sizes(n->input(0)).size());
         return b.node("LayerNormalization", inputs, [&](onnx::NodeProto* p) {
           Builder::attr(p, "axis", rank - static_cast<int64_t>(shape.size()));
           Builder::attr(p, "epsilon", eps);
         });
       }},
      {"aten::batch_norm",
       [](Builder& b, const Node* n) {
         const auto eps = static_cast<float>(b.constant(n->input(7)).toDouble());
         return b.node("BatchNormalization",
                       {b.in(n->input(0)), b.in(n->input(1)), b.in(n->input(2)), b.in(n->input(3)), b.in(n->input(4))},
                       [&](onnx::NodeProto* p) { Builder::attr(p, "epsilon", eps); });
       }},
      {"aten::cat",
       [](Builder& b, const Node* n) {
         std::vector<std::string> inputs;
         for (const Value* v : n->input(0)->node()->inputs()) inputs.push_back(b.in(v));
         const int64_t axis = b.int_of(n->input(1));
         return b.node("Concat", inputs, [&](onnx::NodeProto* p) { Builder::attr(p, "axis", axis); });
       }},
      {"aten::slice",
       [](Builder& b, const Node* n) {
         const auto in_sizes = traced_sizes(n->input(0));
         const int64_t dim = b.int_of(n->input(1));
         const int64_t start = b.is_none(n->input(2)) ? 0 : b.int_of(n->input(2));
         int64_t end = b.is_none(n->input(3)) ? std::numeric_limits<int64_t>::max() : b.int_of(n->input(3));
         const int64_t step = b.int_of(n->input(4));
         return b.node("Slice", {b.in(n->input(0)), b.ints({start}), b.ints({end}), b.ints({dim}), b.ints({step})});
       }},
      {"aten::select",
       [](Builder& b, const Node* n) {
         const int64_t dim = b.int_of(n->input(1));
         const std::string index = b.initializer(b.fresh("index"), torch::tensor(b.int_of(n->input(2)), torch::kLong));
         return b.node("Gather", {b.in(n->input(0)), index},
                       [&](onnx::NodeProto* p) { Builder::attr(p, "axis", dim); });
       }},
      // chunk and split produce a list that prim::ListUnpack takes apart: translated together, at the unpack.
      {"aten::chunk", [](Builder&, const Node*) { return std::string(); }},
      {"aten::split", [](Builder&, const Node*) { return std::string(); }},
      {"aten::split_with_sizes", [](Builder&, const Node*) { return std::string(); }},
      {"aten::embedding",
       [](Builder& b, const Node* n) {
         return b.node("Gather", {b.in(n->input(0)), b.in(n->input(1))});
       }},
      {"aten::zeros_like",
       [](Builder& b, const Node* n) {
         if (b.options().dynamic_batch)  // its traced shape holds the batch
           throw Error(ErrorKind::kUnsupported, "onnx: dynamic batch: zeros_like (export with a fixed --batch)");
         const auto shape = traced_sizes(n->output());
         return b.initializer(b.fresh("zeros"), torch::zeros(shape));
       }},
      {"aten::masked_fill",
       [](Builder& b, const Node* n) {
         return b.node("Where",
                       {b.in(n->input(1)), b.scalar(b.constant(n->input(2)).toScalar().toDouble()), b.in(n->input(0))});
       }},
      {"aten::fake_quantize_per_tensor_affine", onnx_activation_fake_quant},
  };
  return h;
}

// prim::ListUnpack of aten::chunk / split / split_with_sizes → one Split with an output per piece.
void split(Builder& b, const Node* unpack) {
  const Node* producer = unpack->input(0)->node();
  const std::string kind = producer->kind().toQualString();
  if (kind != "aten::chunk" && kind != "aten::split" && kind != "aten::split_with_sizes")
    throw Error(ErrorKind::kUnsupported, "onnx: no translation for prim::ListUnpack of " + kind);
  const auto rank = static_cast<int64_t>(traced_sizes(producer->input(0)).size());
  const int64_t axis = (b.int_of(producer->input(2)) + rank) % rank;
  std::vector<int64_t> pieces;
  for (const Value* v : unpack->outputs()) pieces.push_back(traced_sizes(v).at(static_cast<std::size_t>(axis)));
  onnx::NodeProto* node = nullptr;
  const std::string first = b.node("Split", {b.in(producer->input(0)), b.ints(pieces)}, [&](onnx::NodeProto* p) {
    Builder::attr(p, "axis", axis);
    node = p;
  });
  b.bind(unpack->output(0), first);
  for (std::size_t i = 1; i < unpack->outputs().size(); ++i) {
    const std::string name = b.fresh("Split");
    node->add_output(name);
    b.bind(unpack->outputs()[i], name);
  }
}

onnx::TensorProto::DataType elem_type(const std::string& dtype) {
  return dtype == "int64" ? onnx::TensorProto::INT64 : onnx::TensorProto::FLOAT;
}

// A value's type: its traced shape, or with `batch` set, that name for the first dimension (a symbolic batch).
void set_shape(onnx::ValueInfoProto* info, const std::string& name, onnx::TensorProto::DataType type,
               const std::vector<int64_t>& shape, const std::string& batch = "") {
  info->set_name(name);
  auto* t = info->mutable_type()->mutable_tensor_type();
  t->set_elem_type(type);
  for (std::size_t i = 0; i < shape.size(); ++i) {
    auto* dim = t->mutable_shape()->add_dim();
    if (i == 0 && !batch.empty())
      dim->set_dim_param(batch);
    else
      dim->set_dim_value(shape[i]);
  }
}

class OnnxExporter : public Exporter {
 public:
  explicit OnnxExporter(OnnxOptions options) : options_(std::move(options)) {}
  const Contract& contract() const override {
    static const Contract c = [] {
      Contract k;
      k.weight_bits = {2, 3, 4, 5, 6, 7, 8, 32};
      k.granularities = {Granularity::kPerTensor, Granularity::kPerChannel};
      k.asymmetric_weights = true;
      k.act_bits = {0, 8};
      k.any_nm = k.unstructured = k.permutation = true;
      k.decompositions = {Decomposition::kLowRank, Decomposition::kMonarch, Decomposition::kSmartDeal};
      for (const auto& [op, handler] : handlers()) k.ops.push_back(op);
      k.accelerated_weight_bits = {2, 3, 4, 5, 6, 7, 8};
      k.notes =
          "ONNX Runtime runs 8-bit weights with 8-bit activations as integer convolutions and matrix products "
          "(QLinearConv, QGemm), and linear layers with 2-8-bit weights only as MatMulNBits "
          "(4- or 8-bit blocks, int8 compute); convolutions with quantized weights only run in fp32 (decoded "
          "weights), and N:M is stored as zeros and runs dense; lowrank and monarch layers run as their factor "
          "chains (exporters/onnx/onnx_factored.h), smartdeal ones dense";
      return k;
    }();
    return c;
  }

  void write(const CompressedModel& m, const std::string& path) const override {
    onnx::ModelProto model;
    model.set_ir_version(8);
    model.set_producer_name("adze");
    auto* opset = model.add_opset_import();
    opset->set_domain("");
    opset->set_version(kOpset);
    auto* microsoft = model.add_opset_import();  // MatMulNBits
    microsoft->set_domain("com.microsoft");
    microsoft->set_version(1);
    onnx::GraphProto* g = model.mutable_graph();
    g->set_name(m.dir);
    Builder b(m, options_, g);
    const auto& graph = m.model.graph();
    const Value* x = graph.inputs()[0];
    if (options_.dynamic_batch && !m.model.batch_dependence().generic)
      throw Error(ErrorKind::kUnsupported, "onnx: --dynamic-batch: the model runs at its traced batch only (" +
                                               m.model.batch_dependence().why_not + "); export with a fixed --batch");
    const std::string batch = options_.dynamic_batch ? "batch" : "";
    set_shape(g->add_input(), "input", elem_type(m.model.input().dtype), m.model.input().shape, batch);
    b.bind(x, "input");
    for (const Node* n : graph.nodes()) {
      const std::string kind = n->kind().toQualString();
      if (kind == "prim::Constant" || kind == "prim::ListConstruct") continue;  // read where used
      if (n->outputs().size() == 1 && b.bound(n->output()))
        continue;  // done within an earlier node's translation (a linear layer's bias)
      if (kind == "prim::ListUnpack") {
        split(b, n);
        continue;
      }
      const auto it = handlers().find(kind);
      if (it == handlers().end()) throw Error(ErrorKind::kUnsupported, "onnx: no translation for " + kind);
      try {
        const std::string out = it->second(b, n);
        if (!out.empty()) b.bind(n->output(), out);
      } catch (const c10::Error& e) {
        throw Error(ErrorKind::kUnsupported, "onnx: cannot translate " + kind + ": " + e.what_without_backtrace());
      }
    }
    const Value* out = graph.outputs()[0];
    if (out->node()->kind() == c10::prim::TupleConstruct) out = out->node()->input(0);
    const std::string result = b.in(out);
    b.node("Identity", {result}, {}, "output");
    // With a symbolic batch, the output's first dimension is whatever the graph computes from it.
    set_shape(g->add_output(), "output", onnx::TensorProto::FLOAT, traced_sizes(out), batch.empty() ? "" : "n");
    for (const auto& [name, e] : m.encodings) {
      if (!e.config.nm.enabled()) continue;
      auto* meta = model.add_metadata_props();
      meta->set_key("adze.nm." + name);
      meta->set_value(e.config.nm.to_string() + (e.permutation.defined() ? " permuted" : ""));
    }
    try {
      onnx::checker::check_model(model);
    } catch (const std::exception& e) {
      throw Error(ErrorKind::kInternal, "onnx: the exported model fails onnx::checker: " + first_line_of(e));
    }
    std::string bytes;
    if (!model.SerializeToString(&bytes)) throw Error(ErrorKind::kInternal, "onnx: failed to serialise the model");
    write_file_atomically(path, bytes);
  }
  bool recognizes(const std::string& path) const override {
    return std::filesystem::path(path).extension() == ".onnx" && !std::filesystem::is_directory(path);
  }
  std::string file_form() const override { return ".onnx"; }
  std::unique_ptr<Runner> open(const std::string& path, const RunnerOptions& options) const override {
    return open_onnx_runner(path, options);
  }
  // Quantized layers (a weight from DequantizeLinear) whose bias went out in float: ORT fuses none of them.
  std::vector<std::string> written_notes(const std::string& path) const override {
    onnx::ModelProto proto;
    if (!proto.ParseFromString(read_file_text(path))) return {};
    std::set<std::string> dequantized;
    for (const auto& n : proto.graph().node())
      if (n.op_type() == "DequantizeLinear") dequantized.insert(n.output(0));
    int float_bias = 0;
    for (const auto& n : proto.graph().node())
      float_bias += (n.op_type() == "Gemm" || n.op_type() == "Conv") && n.input_size() > 2 && !n.input(2).empty() &&
                    dequantized.count(n.input(1)) && !dequantized.count(n.input(2));
    if (float_bias == 0) return {};
    return {"note: " + std::to_string(float_bias) +
            " quantized layer(s) keep a float bias, off the int32 grid that calibration rounds biases to (a model "
            "compressed by an earlier adze has such biases): ONNX Runtime cannot fuse them into integer kernels "
            "and runs them in float. Compress again to have them fused."};
  }

 private:
  OnnxOptions options_;
};

}  // namespace

Registry<Exporter>::Entry onnx_exporter_entry() {
  using O = OnnxOptions;
  return Registry<Exporter>::entry(
      "onnx",
      "ONNX opset 17 in the forms ONNX Runtime runs fastest: QDQ for W8A8, MatMulNBits for low-bit linear weights",
      OptionList<O>()
          .add(&O::ort_target, "ort_target",
               "the CPUs ONNX Runtime will run it on: portable (u8 x u8 integer kernels, exact on every x86 CPU) or "
               "vnni (u8 x s8: faster with AVX-512 VNNI or AVX-VNNI, liable to saturate on AVX2-only CPUs)",
               one_of({"portable", "vnni"}))
          .add(&O::dynamic_batch, "dynamic_batch",
               "a symbolic batch dimension: one file serves every batch size (the model must be batch-generic)")
          .choose(&O::activations, "activations",
                  "linear layers with quantized weights only: dynamic (int8 activations quantized per call, each "
                  "row to its own range: MatMulNBits, or DynamicQuantizeMatMul on rows divided by their largest "
                  "magnitude), dynamic-tensor (one range for all the rows of a call: DynamicQuantizeMatMul alone, "
                  "fastest) or float (fp32 on the decoded weight: the simulation's numbers)",
                  {{"dynamic", O::Activations::kPerRow},
                   {"dynamic-tensor", O::Activations::kPerTensor},
                   {"float", O::Activations::kFloat}}),
      [](const O& o) { return std::make_unique<OnnxExporter>(o); });
}

}  // namespace adze
