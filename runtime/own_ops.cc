#include "runtime/own_ops.h"

#include <torch/torch.h>

#include <limits>
#include <map>

#include "core/error.h"
#include "runtime/attention.h"
#include "runtime/float_ops.h"

namespace adze {
namespace packed {
namespace {

bool constant_ints(const Arg& a, std::vector<int64_t>* out) {
  if (a.kind != Arg::kConstant || !a.constant.isIntList()) return false;
  *out = a.constant.toIntVector();
  return true;
}

std::optional<double> constant_number(const Arg& a) {
  if (a.kind != Arg::kConstant || !(a.constant.isDouble() || a.constant.isInt())) return std::nullopt;
  return a.constant.toScalar().toDouble();
}

bool is_none(const Arg& a) { return a.kind == Arg::kConstant && a.constant.isNone(); }

// A depthwise convolution: aten::_convolution(input, weight, bias, stride, padding, dilation, transposed,
// output_padding, groups, ...) or aten::conv2d(input, weight, bias, stride, padding, dilation, groups) whose
// weight [C, 1, kh, kw] is known at open and whose groups equal C.
void select_depthwise(Node& node, const std::function<const at::Tensor*(const Arg&)>& constant_tensor) {
  const bool full = node.op == "aten::_convolution";
  const std::size_t groups_at = full ? 8 : 6;
  if (node.in.size() <= groups_at || node.in[0].kind != Arg::kValue) return;
  const at::Tensor* weight = constant_tensor(node.in[1]);
  const std::optional<double> groups = constant_number(node.in[groups_at]);
  if (!weight || weight->dim() != 4 || weight->size(1) != 1 || !groups || *groups != weight->size(0) || *groups < 2)
    return;
  if (!constant_ints(node.in[3], &node.stride) || !constant_ints(node.in[4], &node.padding) ||
      !constant_ints(node.in[5], &node.dilation) || node.stride.size() != 2 || node.padding.size() != 2 ||
      node.dilation.size() != 2)
    return;
  if (full && !(node.in[6].kind == Arg::kConstant && node.in[6].constant.isBool() && !node.in[6].constant.toBool()))
    return;
  const Arg& bias = node.in[2];
  if (!is_none(bias) && !constant_tensor(bias)) return;
  node.own = OwnOp::kDepthwise;
  node.kernel = {weight->size(2), weight->size(3)};
  // [C, 1, kh, kw] → [kh·kw, C]: each tap's weights of every channel contiguous, as the kernel reads them.
  node.weight = weight->to(torch::kFloat).reshape({weight->size(0), -1}).t().contiguous();
  if (!is_none(bias)) node.bias = constant_tensor(bias)->to(torch::kFloat).contiguous();
}

// A view op whose arguments after the tensor are constant integers (or, for slice, missing bounds).
bool select_view(Node& node) {
  static const std::map<std::string, std::pair<ViewOp, std::size_t>> kViews = {
      {"aten::view", {ViewOp::kView, 2}},       {"aten::reshape", {ViewOp::kReshape, 2}},
      {"aten::permute", {ViewOp::kPermute, 2}}, {"aten::transpose", {ViewOp::kTranspose, 3}},
      {"aten::select", {ViewOp::kSelect, 3}},   {"aten::flatten", {ViewOp::kFlatten, 3}},
      {"aten::slice", {ViewOp::kSlice, 5}},     {"aten::unsqueeze", {ViewOp::kUnsqueeze, 2}}};
  const auto it = kViews.find(node.op);
  if (it == kViews.end() || node.in.size() != it->second.second || node.in[0].kind != Arg::kValue) return false;
  std::vector<int64_t> ints;
  for (std::size_t i = 1; i < node.in.size(); ++i) {
    const Arg& a = node.in[i];
    if (a.kind != Arg::kConstant) return false;
    if (a.constant.isInt()) {
      ints.push_back(a.constant.toInt());
    } else if (a.constant.isIntList() && node.in.size() == 2) {
      ints = a.constant.toIntVector();
    } else if (a.constant.isNone() && it->second.first == ViewOp::kSlice && (i == 2 || i == 3)) {
      ints.push_back(i == 2 ? std::numeric_limits<int64_t>::min() : std::numeric_limits<int64_t>::max());
    } else {
      return false;
    }
  }
  node.view = it->second.first;
  node.ints = std::move(ints);
  return true;
}

at::Tensor run_view(const Node& node, const at::Tensor& x) {
  const std::vector<int64_t>& v = node.ints;
  switch (node.view) {
    case ViewOp::kView:
      return x.view(v);
    case ViewOp::kReshape:
      return x.reshape(v);
    case ViewOp::kPermute:
      return x.permute(v);
    case ViewOp::kTranspose:
      return x.transpose(v[0], v[1]);
    case ViewOp::kSelect:
      return x.select(v[0], v[1]);
    case ViewOp::kFlatten:  // a channels-last input needs a copy: the runtime's own transpose, not ATen's copy
      return fits_flatten_channels_last(x, v[0], v[1]) ? flatten_channels_last(x) : x.flatten(v[0], v[1]);
    case ViewOp::kSlice: {
      const auto bound = [](int64_t b) -> c10::optional<int64_t> {
        if (b == std::numeric_limits<int64_t>::min() || b == std::numeric_limits<int64_t>::max()) return c10::nullopt;
        return b;
      };
      return x.slice(v[0], bound(v[1]), bound(v[2]), v[3]);
    }
    case ViewOp::kUnsqueeze:
      return x.unsqueeze(v[0]);
  }
  return {};
}

}  // namespace

std::optional<ActivationQuant> calibrated_quantizer(
    const Node& fq, const std::function<const at::Tensor*(const Arg&)>& constant_tensor) {
  if (fq.op != "aten::fake_quantize_per_tensor_affine" || fq.in.size() != 5) return std::nullopt;
  auto number = [&](const Arg& a) -> std::optional<double> {
    if (const auto n = constant_number(a)) return n;
    const at::Tensor* t = constant_tensor(a);
    if (t && t->numel() == 1) return t->item<double>();
    return std::nullopt;
  };
  const auto s = number(fq.in[1]), z = number(fq.in[2]), lo = number(fq.in[3]), hi = number(fq.in[4]);
  if (!s || !z || !lo || !hi || *lo != 0 || *hi != 255 || !(*s > 0) || !std::isfinite(*s) || *z < 0 || *z > 255 ||
      *z != std::floor(*z))
    return std::nullopt;
  return ActivationQuant{static_cast<float>(*s), static_cast<int32_t>(*z)};
}

void select_own_op(Node& node, const std::function<const at::Tensor*(const Arg&)>& constant_tensor) {
  const auto& in = node.in;
  const std::string& op = node.op;
  if (op == "aten::max_pool2d" && in.size() == 6 && in[0].kind == Arg::kValue && constant_ints(in[1], &node.kernel) &&
      constant_ints(in[2], &node.stride) && constant_ints(in[3], &node.padding) &&
      constant_ints(in[4], &node.dilation) && in[5].kind == Arg::kConstant && in[5].constant.isBool()) {
    node.own = OwnOp::kMaxPool2d;
    node.ceil_mode = in[5].constant.toBool();
  } else if (op == "aten::adaptive_avg_pool2d" && in.size() == 2 && constant_ints(in[1], &node.ints) &&
             node.ints == std::vector<int64_t>{1, 1}) {
    node.own = OwnOp::kGlobalAvgPool;
  } else if ((op == "aten::_convolution" || op == "aten::conv2d") && !node.integer) {
    select_depthwise(node, constant_tensor);
  } else if (const auto quant = calibrated_quantizer(node, constant_tensor)) {
    node.own = OwnOp::kFakeQuant;
    node.quant = *quant;
  } else if (op == "aten::masked_fill" && in.size() == 3 && constant_number(in[2])) {
    node.own = OwnOp::kMaskedFill;
    node.fill = static_cast<float>(*constant_number(in[2]));
  } else if (select_view(node)) {
    node.own = OwnOp::kView;
  } else if (op == "aten::layer_norm" && in.size() == 6) {
    std::vector<int64_t> shape;
    const auto eps = constant_number(in[4]);
    const at::Tensor* gamma = constant_tensor(in[2]);
    const at::Tensor* beta = constant_tensor(in[3]);
    if (!constant_ints(in[1], &shape) || shape.size() != 1 || !eps || (!gamma && !is_none(in[2])) ||
        (!beta && !is_none(in[3])))
      return;
    node.own = OwnOp::kLayerNorm;
    node.ints = shape;
    node.eps = static_cast<float>(*eps);
    if (gamma) node.weight = gamma->to(torch::kFloat).contiguous();
    if (beta) node.bias = beta->to(torch::kFloat).contiguous();
  } else if (op == "aten::softmax" && in.size() == 3 && constant_number(in[1]) && is_none(in[2])) {
    node.own = OwnOp::kSoftmax;
    node.dim = static_cast<int64_t>(*constant_number(in[1]));
  } else if (op == "aten::gelu" && in.size() == 2 && in[1].kind == Arg::kConstant && in[1].constant.isString()) {
    const std::string approximate = in[1].constant.toStringRef();
    if (approximate != "none" && approximate != "tanh") return;
    node.own = OwnOp::kGelu;
    node.tanh = approximate == "tanh";
  } else if (op == "aten::add" && in.size() == 3 && constant_number(in[2])) {
    node.own = OwnOp::kAdd;
    node.alpha = static_cast<float>(*constant_number(in[2]));
  } else if ((op == "aten::matmul" || op == "aten::bmm") && in.size() == 2) {
    node.own = OwnOp::kMatmul;
  } else if (op == "aten::relu" && in.size() == 1) {
    node.own = OwnOp::kClamp;
    node.lo = 0;
    node.hi = std::numeric_limits<float>::infinity();
  } else if ((op == "aten::hardtanh" || op == "aten::clamp") && in.size() == 3 && constant_number(in[1]) &&
             constant_number(in[2])) {
    node.own = OwnOp::kClamp;
    node.lo = static_cast<float>(*constant_number(in[1]));
    node.hi = static_cast<float>(*constant_number(in[2]));
  }
}

at::Tensor run_own_op(const Node& node, const std::function<const c10::IValue&(std::size_t)>& value, float* range) {
  auto tensor = [&](std::size_t i) -> const at::Tensor* {
    const c10::IValue& v = value(i);
    return v.isTensor() ? &v.toTensor() : nullptr;
  };
  const at::Tensor* x = tensor(0);
  if (!x) return {};
  switch (node.own) {
    case OwnOp::kNone:
      return {};
    case OwnOp::kMaxPool2d:
      return max_pool2d(*x, node.kernel, node.stride, node.padding, node.dilation, node.ceil_mode, node.out_quant,
                        range);
    case OwnOp::kDepthwise:
      return depthwise_conv2d(*x, node.weight, node.kernel[0], node.kernel[1], node.bias, node.stride, node.padding,
                              node.dilation, node.clamp, !node.channels_last_out);
    case OwnOp::kLayerNorm:
      if (!fits_layer_norm(*x, node.weight, node.bias) || x->size(-1) != node.ints[0]) return {};
      return layer_norm_last(*x, node.weight, node.bias, node.eps);
    case OwnOp::kSoftmax:
      return fits_softmax(*x, node.dim) ? softmax_last(*x) : at::Tensor();
    case OwnOp::kGelu:
      return x->scalar_type() == at::kFloat && x->is_non_overlapping_and_dense() ? gelu(*x, node.tanh) : at::Tensor();
    case OwnOp::kAdd: {
      const at::Tensor* y = tensor(1);
      return y && fits_add(*x, *y) ? add(*x, *y, node.alpha) : at::Tensor();
    }
    case OwnOp::kMatmul: {
      const at::Tensor* y = tensor(1);
      return y && fits_matmul(*x, *y) ? matmul(*x, *y, node.alpha) : at::Tensor();
    }
    case OwnOp::kClamp:
      return fits_clamp(*x) ? clamp(*x, node.lo, node.hi) : at::Tensor();
    case OwnOp::kView:
      try {
        return run_view(node, *x);
      } catch (const c10::Error&) {
        return {};  // ATen's operator then says what is wrong, as it would have
      }
    case OwnOp::kMaskedFill: {
      const at::Tensor* mask = tensor(1);
      return mask && fits_masked_fill(*x, *mask) ? masked_fill(*x, *mask, node.fill) : at::Tensor();
    }
    case OwnOp::kFakeQuant:
      return fits_clamp(*x) ? fake_quantize(*x, node.quant) : at::Tensor();
    case OwnOp::kGlobalAvgPool:
      return fits_global_avg_pool(*x) ? global_avg_pool(*x) : at::Tensor();
    case OwnOp::kAttention: {  // never undefined: the fused chain has no one ATen operator to fall back to
      const at::Tensor *kt = tensor(1), *v = tensor(3);
      if (!kt || !v)
        throw Error(ErrorKind::kInvalidArgument, "packed runtime: attention of a value that is not a tensor");
      const c10::IValue& mask = value(2);
      const AttentionMask m{mask.isTensor() ? mask.toTensor() : at::Tensor(), node.fill,
                            node.constant_mask ? &node.mask_prefixes : nullptr};
      return attention(*x, *kt, *v, m, node.alpha, active_isa());
    }
  }
  return {};
}

}  // namespace packed
}  // namespace adze
