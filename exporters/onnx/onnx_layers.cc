#include "exporters/onnx/onnx_layers.h"

#include <torch/csrc/jit/ir/ir.h>
#include <torch/torch.h>

#include <optional>

#include "compress/activation_quant.h"
#include "core/error.h"
#include "exporters/graph_values.h"
#include "exporters/onnx/onnx_factored.h"

namespace adze {
namespace {

using torch::jit::Node;
using torch::jit::Value;

constexpr const char* kFakeQuant = "aten::fake_quantize_per_tensor_affine";

struct ActivationQuant {
  float scale;
  int64_t zero_point;
  const NamedTensor *scale_tensor, *zero_point_tensor;
};

// The parameters of an 8-bit activation fake-quant node (bound scale and zero point, codes 0..255), if it is one.
std::optional<ActivationQuant> fake_quant_params(const OnnxBuilder& b, const Node* fq) {
  if (fq->kind().toQualString() != std::string(kFakeQuant)) return std::nullopt;
  const NamedTensor* s = b.model().model.tensor_of(fq->input(1));
  const NamedTensor* z = b.model().model.tensor_of(fq->input(2));
  if (!s || !z || b.int_of(fq->input(3)) != 0 || b.int_of(fq->input(4)) != 255) return std::nullopt;
  return ActivationQuant{s->value.item<float>(), z->value.item<int64_t>(), s, z};
}

// The 8-bit activation fake-quant that produced v, if one did.
std::optional<ActivationQuant> input_quant(const OnnxBuilder& b, const Value* v) {
  return fake_quant_params(b, v->node());
}

// A weight's codes as stored: int8 or uint8, in the weight's own layout, with per-channel (or per-tensor) scale
// and zero point.
struct StoredCodes {
  at::Tensor codes, scale, zero_point;
  bool per_tensor() const { return scale.dim() == 0; }
};

StoredCodes stored_codes(const OnnxBuilder& b, const Encoding& e) {
  at::Tensor codes = e.from_canonical(e.codes.reshape({e.channels(), e.reduction()})).to(torch::kInt);
  at::Tensor zp = e.zero_point.to(torch::kInt);
  // Asymmetric 8-bit codes are 0..255 and need u8 anyway; symmetric ones move by 128 into u8 when asked.
  const bool unsigned_codes =
      b.options().ort_target == "portable" || (!e.config.symmetric && e.config.weight_bits == 8);
  if (unsigned_codes && e.config.symmetric) {
    codes = codes + 128;
    zp = zp + 128;
  }
  const auto dtype = unsigned_codes ? torch::kByte : torch::kChar;
  StoredCodes c{codes.to(dtype), e.scale.to(torch::kFloat), zp.to(dtype)};
  if (c.scale.numel() == 1) {
    c.scale = c.scale.reshape({});
    c.zero_point = c.zero_point.reshape({});
  }
  return c;
}

// The codes, scale and zero point as initializers NAME.codes, NAME.scale, NAME.zero_point.
std::vector<std::string> initializers(OnnxBuilder& b, const std::string& name, const StoredCodes& c) {
  return {b.initializer(name + ".codes", c.codes), b.initializer(name + ".scale", c.scale),
          b.initializer(name + ".zero_point", c.zero_point)};
}

std::string dequantize(OnnxBuilder& b, const std::string& name, const StoredCodes& c, int64_t axis) {
  return b.node("DequantizeLinear", initializers(b, name, c), [&](onnx::NodeProto* p) {
    if (!c.per_tensor()) OnnxBuilder::attr(p, "axis", axis);
  });
}

// The bias as int32 codes on the accumulator's grid (accumulator_bias, as calibration rounded it) +
// DequantizeLinear: the form ORT's QLinearConv and QGemm fusions take. "" when the bias is not a parameter, a
// code would not fit int32, or the simulation's bias is not on the grid (a model compressed before calibration
// rounded this kind of layer's bias): the export then keeps the simulation's numbers, and ORT a float layer.
std::string int32_bias(OnnxBuilder& b, const Value* bias, float input_scale, const Encoding& e) {
  const NamedTensor* t = b.model().model.tensor_of(bias);
  if (!t) return "";
  const AccumulatorBias grid = accumulator_bias(t->value, e.scale, input_scale);
  if (!grid.fits) return "";
  const at::Tensor value = t->value.to(torch::kFloat).reshape({-1});
  if (!torch::allclose(grid.codes * grid.step, value, 1e-6, 0)) return "";
  const std::string codes = b.initializer(t->name + ".int32", grid.codes.to(torch::kInt));
  const std::string step = b.initializer(t->name + ".int32_scale", grid.step);
  return b.node("DequantizeLinear", {codes, step},
                [](onnx::NodeProto* p) { OnnxBuilder::attr(p, "axis", int64_t{0}); });
}

std::string weight_name(const OnnxBuilder& b, const Value* w) {
  const NamedTensor* t = b.model().model.tensor_of(w);
  return t ? t->name : "weight";
}

// com.microsoft MatMulNBits: codes (+ 2^(bits−1) when symmetric, so that the default zero point applies) packed
// little end first into blocks along K, one scale (and zero point) per block, repeated from the row's.
std::string matmul_nbits(OnnxBuilder& b, const std::string& x, const std::string& name, const Encoding& e) {
  const int64_t bits = e.config.weight_bits <= 4 ? 4 : 8;
  const int64_t n = e.channels(), k = e.reduction();
  const int64_t block = matmul_nbits_block(k), blocks = (k + block - 1) / block;
  const int64_t offset = e.config.symmetric ? int64_t{1} << (bits - 1) : 0;
  at::Tensor codes = e.from_canonical(e.codes.reshape({n, k})).to(torch::kInt) + offset;
  at::Tensor zero_point = (e.zero_point.to(torch::kInt).reshape({-1}).expand({n}) + offset).contiguous();
  // K padded to whole blocks with the zero point's code, which decodes to 0.
  at::Tensor padded = zero_point.unsqueeze(1).repeat({1, blocks * block});
  padded.narrow(1, 0, k).copy_(codes);
  padded = padded.reshape({n, blocks, block});
  at::Tensor packed = bits == 8 ? padded.to(torch::kByte)
                                : (padded.slice(2, 0, block, 2) | padded.slice(2, 1, block, 2) * 16).to(torch::kByte);
  const at::Tensor scales = e.scale.to(torch::kFloat).reshape({-1}).expand({n}).unsqueeze(1).expand({n, blocks});
  std::vector<std::string> inputs = {x, b.initializer(name + ".nbits", packed.contiguous()),
                                     b.initializer(name + ".nbits_scale", scales.reshape({-1}).contiguous())};
  if (!e.config.symmetric) {
    at::Tensor zp = zero_point.unsqueeze(1).expand({n, blocks});
    if (bits == 4) {
      if (blocks % 2) zp = torch::cat({zp, torch::zeros({n, 1}, torch::kInt)}, 1);
      zp = zp.slice(1, 0, zp.size(1), 2) | zp.slice(1, 1, zp.size(1), 2) * 16;
    }
    inputs.push_back(b.initializer(name + ".nbits_zero_point", zp.to(torch::kByte).reshape({-1}).contiguous()));
  }
  return b.node(
      "MatMulNBits", inputs,
      [&](onnx::NodeProto* p) {
        OnnxBuilder::attr(p, "K", k);
        OnnxBuilder::attr(p, "N", n);
        OnnxBuilder::attr(p, "bits", bits);
        OnnxBuilder::attr(p, "block_size", block);
        OnnxBuilder::attr(p, "accuracy_level", int64_t{4});  // int8 activations per block: VNNI's kernels
      },
      "", "com.microsoft");
}

// Weight-only layer with int8 activations quantized per call (ORT's dynamic quantization): DynamicQuantizeLinear →
// MatMulInteger → Cast → Mul(activation scale · weight scales), which ORT fuses into DynamicQuantizeMatMul. That
// takes one range for all rows; per row (kPerRow), each row is first divided by its largest magnitude, so that
// every row spans [−1, 1] at most and gets the codes of a range of its own, and the products are multiplied back.
std::string dynamic_matmul(OnnxBuilder& b, const std::string& x, const std::string& name, const Encoding& e) {
  StoredCodes codes = stored_codes(b, e);
  codes.codes = codes.codes.t().contiguous();  // [K, N]
  const bool per_row = b.options().activations == OnnxOptions::Activations::kPerRow;
  const std::string row_max = per_row ? b.row_max(x) : "";
  onnx::NodeProto* dq = nullptr;
  const std::string xq =
      b.node("DynamicQuantizeLinear", {per_row ? b.node("Div", {x, row_max}) : x}, [&](onnx::NodeProto* p) { dq = p; });
  const std::string xs = b.fresh("x_scale"), xz = b.fresh("x_zero_point");
  dq->add_output(xs);
  dq->add_output(xz);
  const auto w = initializers(b, name, codes);  // codes, scale, zero point
  const std::string acc = b.node("MatMulInteger", {xq, w[0], xz, w[2]});
  const std::string f =
      b.node("Cast", {acc}, [](onnx::NodeProto* p) { OnnxBuilder::attr(p, "to", int64_t{onnx::TensorProto::FLOAT}); });
  const std::string y = b.node("Mul", {f, b.node("Mul", {xs, w[1]})});
  return per_row ? b.node("Mul", {y, row_max}) : y;
}

// Rows of x·wᵀ per call, as traced.
int64_t weight_only_rows(const Value* x, int64_t k) {
  int64_t rows = 1;
  for (int64_t d : traced_sizes(x)) rows *= d;
  return rows / std::max<int64_t>(1, k);
}

// x·wᵀ of `rows` rows for a layer with quantized weights only, in ONNX Runtime's integer forms (MatMulNBits for
// a few rows, DynamicQuantizeMatMul for more) where the options quantize activations on the fly and the
// quantizer is affine with a scale per tensor or channel; "" where the layer runs in fp32 instead.
std::string weight_only_matmul(OnnxBuilder& b, const std::string& x, const std::string& name, const Encoding& e,
                               int64_t rows) {
  if (!e.config.quantized() || !b.options().dynamic_activations() || !traits_of(e.config.quantizer).affine ||
      e.config.granularity == Granularity::kPerGroup)
    return "";
  return rows <= kMaxNBitsRows ? matmul_nbits(b, x, name, e) : dynamic_matmul(b, x, name, e);
}

}  // namespace

int64_t matmul_nbits_block(int64_t k) { return k <= 16 ? 16 : 32; }

std::string factor_matmul(OnnxBuilder& b, const std::string& x, const std::string& name, const Encoding& e,
                          int64_t rows) {
  const std::string y = weight_only_matmul(b, x, name, e, rows);
  return !y.empty() ? y : b.node("MatMul", {x, b.initializer(name + ".t", e.decode().t().contiguous())});
}

std::string onnx_convolution(OnnxBuilder& b, const Node* n) {
  if (b.constant(n->input(6)).toBool()) throw Error(ErrorKind::kUnsupported, "onnx: transposed convolution");
  const Value *x = n->input(0), *w = n->input(1), *bias = n->input(2);
  const auto stride = b.ints_of(n->input(3)), pad = b.ints_of(n->input(4)), dilation = b.ints_of(n->input(5));
  const int64_t groups = b.int_of(n->input(8));
  if (const Encoding* d = b.decomposed_encoding(w); d && d->config.decompose == Decomposition::kLowRank)
    return factored_convolution(b, b.in(x), weight_name(b, w), *d, stride, pad, dilation,
                                OnnxBuilder::is_none(bias) ? "" : b.in(bias));
  std::vector<std::string> inputs = {b.in(x)};
  const Encoding* e = b.quantized_encoding(w);
  const auto act = input_quant(b, x);
  if (e && act) {
    const StoredCodes codes = stored_codes(b, *e);
    inputs.push_back(dequantize(b, weight_name(b, w), codes, e->order.front()));
    if (!OnnxBuilder::is_none(bias)) {
      const std::string q = int32_bias(b, bias, act->scale, *e);
      inputs.push_back(q.empty() ? b.in(bias) : q);
    }
  } else {
    inputs.push_back(b.in(w));
    if (!OnnxBuilder::is_none(bias)) inputs.push_back(b.in(bias));
  }
  return b.node("Conv", inputs, [&](onnx::NodeProto* p) {
    OnnxBuilder::attr(p, "strides", stride);
    OnnxBuilder::attr(p, "pads", OnnxBuilder::pads(pad));
    OnnxBuilder::attr(p, "dilations", dilation);
    OnnxBuilder::attr(p, "group", groups);
  });
}

// x·wᵀ (+ bias, when not null).
std::string linear_form(OnnxBuilder& b, const Value* x, const Value* w, const Value* bias) {
  const bool has_bias = bias && !OnnxBuilder::is_none(bias);
  const std::string name = weight_name(b, w);
  const Encoding* e = b.quantized_encoding(w);
  const auto act = input_quant(b, x);
  auto plus_bias = [&](const std::string& y) { return has_bias ? b.node("Add", {y, b.in(bias)}) : y; };
  if (const Encoding* d = b.decomposed_encoding(w)) {
    const std::string y = factored_linear(b, b.in(x), name, *d, traced_sizes(x));
    if (!y.empty()) return plus_bias(y);
  }
  if (e && act) {
    StoredCodes codes = stored_codes(b, *e);
    const std::vector<int64_t> sizes = traced_sizes(x);
    if (sizes.size() < 2) {
      codes.codes = codes.codes.t().contiguous();  // [K, N]: MatMul's weight, quantized along axis 1
      return plus_bias(b.node("MatMul", {b.in(x), dequantize(b, name, codes, 1)}));
    }
    // QGemm: ORT fuses a Gemm whose every input (the int32 bias too) comes from DequantizeLinear. Rows of a
    // higher rank ([batch, tokens, K]) go through it as [rows, K] and come back: as MatMul + Add they would meet
    // ORT's MatMulAddFusion first, which leaves a float Gemm on dequantized weights, run on every call. The
    // Reshape before moves into the integers (ORT propagates DequantizeLinear past it); the one after takes the
    // leading dimensions from the activation before its quantization (so that its DequantizeLinear keeps one
    // consumer, as ORT's fusion needs): a constant ORT folds when the batch is fixed, the batch wherever it sits
    // when it is symbolic.
    std::string rows = b.in(x);
    if (sizes.size() > 2) rows = b.node("Reshape", {rows, b.ints({-1, sizes.back()})});
    std::vector<std::string> inputs = {rows, dequantize(b, name, codes, 0)};
    if (has_bias) {
      const std::string q = int32_bias(b, bias, act->scale, *e);
      inputs.push_back(q.empty() ? b.in(bias) : q);
    }
    const std::string y =
        b.node("Gemm", inputs, [](onnx::NodeProto* p) { OnnxBuilder::attr(p, "transB", int64_t{1}); });
    if (sizes.size() == 2) return y;
    const std::string lead = b.node("Slice", {b.node("Shape", {b.in(x->node()->input(0))}), b.ints({0}), b.ints({-1})});
    const std::string shape = b.node("Concat", {lead, b.ints({e->channels()})},
                                     [](onnx::NodeProto* p) { OnnxBuilder::attr(p, "axis", int64_t{0}); });
    return b.node("Reshape", {y, shape});
  }
  if (e) {
    const std::string y = weight_only_matmul(b, b.in(x), name, *e, weight_only_rows(x, e->reduction()));
    if (!y.empty()) return plus_bias(y);
  }
  const NamedTensor* t = b.model().model.tensor_of(w);
  const std::string weight = t ? b.initializer(name + ".t", t->value.to(torch::kFloat).t().contiguous())
                               : b.node("Transpose", {b.in(w)}, [](onnx::NodeProto* p) {
                                   OnnxBuilder::attr(p, "perm", std::vector<int64_t>{1, 0});
                                 });
  return plus_bias(b.node("MatMul", {b.in(x), weight}));
}

std::string onnx_linear(OnnxBuilder& b, const Node* n) { return linear_form(b, n->input(0), n->input(1), n->input(2)); }

std::string onnx_matmul(OnnxBuilder& b, const Node* n) {
  const Node* t = n->input(1)->node();
  if (t->kind() == c10::aten::t && b.model().model.tensor_of(t->input(0))) {
    const BiasAdd add = bias_add_of(b.model().model, n);
    if (!add.add) return linear_form(b, n->input(0), t->input(0), nullptr);
    const std::string y = linear_form(b, n->input(0), t->input(0), add.bias);  // the add, done here
    b.bind(add.add->output(), y);
    return y;
  }
  return b.node("MatMul", {b.in(n->input(0)), b.in(n->input(1))});
}

std::string onnx_activation_fake_quant(OnnxBuilder& b, const Node* n) {
  const auto q = fake_quant_params(b, n);
  if (!q) throw Error(ErrorKind::kUnsupported, "onnx: activation fake-quant other than 8-bit asymmetric");
  const std::string scale = b.initializer(q->scale_tensor->name, torch::full({}, q->scale, torch::kFloat));
  const std::string zp = b.initializer(q->zero_point_tensor->name, torch::full({}, q->zero_point, torch::kByte));
  return b.node("DequantizeLinear", {b.node("QuantizeLinear", {b.in(n->input(0)), scale, zp}), scale, zp});
}

}  // namespace adze
