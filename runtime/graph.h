// The packed runtime's graph (internal to runtime/): the ops of a packed file's "graph", each with its
// arguments resolved at open, and what the runtime decided about it: which layers run on the integer kernels
// (packed_model.cc), which ops it computes with its own kernels (own_ops.h), and what a later op was fused
// into it (fusion.h). Values live in numbered slots, so a run indexes a vector instead of looking up names.
#pragma once

#include <ATen/core/Tensor.h>
#include <ATen/core/ivalue.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "model/batch_symbolic.h"
#include "runtime/packed_ops.h"

namespace adze {
namespace packed {

struct Arg {
  enum Kind { kValue, kTensor, kWeight, kConstant } kind = kConstant;
  std::string name;                    ///< the value, file tensor or layer
  int slot = -1;                       ///< kValue: the value's slot
  const at::Tensor* tensor = nullptr;  ///< kTensor: the file tensor; kWeight: the decoded weight (when decoded)
  c10::IValue constant;
  /// kConstant in a batch-generic file: an int or int list that depends on the batch size, one a*n + b per int
  /// (FORMAT.md, "Batch-generic files"); `constant` holds its value at the batch the schedule is made for.
  std::vector<BatchAffine> batch;
};

/// An op the runtime computes with a kernel of its own instead of ATen's operator (own_ops.h).
enum class OwnOp {
  kNone,
  kMaxPool2d,
  kDepthwise,  ///< a convolution with one filter per channel
  kLayerNorm,  ///< over the last dimension
  kSoftmax,    ///< over the last dimension
  kGelu,
  kAdd,            ///< two tensors of one shape and layout
  kMatmul,         ///< batched, batch dimensions equal
  kClamp,          ///< relu, hardtanh
  kFakeQuant,      ///< a calibrated 8-bit fake-quant (quantize and dequantize)
  kView,           ///< a view or reshape with constant arguments, called directly (no boxing of its arguments)
  kMaskedFill,     ///< masked_fill with a constant value and a mask over the trailing dimensions (a causal mask)
  kGlobalAvgPool,  ///< adaptive_avg_pool2d to 1x1
  kAttention,      ///< matmul, [div,] [masked_fill,] softmax, matmul, fused (attention.h): in = q, kᵀ, mask, v
};

/// Which view op a kView node is.
enum class ViewOp { kView, kReshape, kPermute, kTranspose, kSelect, kFlatten, kSlice, kUnsqueeze };

/// Element-wise work fused into the end of an op (fusion.h).
enum class PostOp { kNone, kGelu, kGeluTanh };

struct Node {
  std::string op, layer, type;
  std::string output_of;  ///< the layer whose output this op computes (the rule of model/tapped_graph.h)
  std::vector<Arg> in;
  std::vector<std::string> out;
  std::vector<int> out_slots;
  /// For ATen ops (also the fallback of own ops): the boxed operator, which takes its arguments from the stack
  /// and leaves its results there (packed_model.cc, aten_operator).
  std::function<void(std::vector<c10::IValue>&)> operation;
  // A packed matmul or a convolution on the integer kernels (plan_integer_layers): `act` when its input is a
  // calibrated 8-bit fake-quant, whose input (`act_input`) it then quantizes itself; the fake-quant node is
  // `skip`ped when nothing else reads it. A node computing a layer in fp32 says why in `float_reason`.
  bool integer = false;
  std::optional<ActivationQuant> act;
  std::string act_input;
  int act_slot = -1;
  bool skip = false;
  std::string float_reason;
  std::vector<int64_t> stride, padding, dilation;  ///< a convolution's or a pooling's
  // An op with a kernel of the runtime's own.
  OwnOp own = OwnOp::kNone;
  ViewOp view = ViewOp::kView;  ///< kView: which
  std::vector<int64_t> ints;    ///< kView: its constant integer arguments in order (a list's elements for view,
                                ///< reshape, permute; slice's missing bounds as INT64_MIN / INT64_MAX);
                                ///< kLayerNorm: the normalized shape
  std::vector<int64_t> kernel;  ///< max_pool2d's window
  bool ceil_mode = false;
  float lo = 0, hi = 0;     ///< kClamp's bounds
  float eps = 0;            ///< kLayerNorm's epsilon
  float fill = 0;           ///< kMaskedFill's value, kAttention's mask's
  int64_t dim = -1;         ///< kSoftmax's dimension
  bool tanh = false;        ///< kGelu: the tanh approximation
  at::Tensor weight, bias;  ///< kDepthwise: taps [kh·kw, C] (tap-major) and bias [C]; kLayerNorm: gamma, beta
  ActivationQuant quant;    ///< kFakeQuant
  // Fused into this op by fusion.h (the schedule only; a run that records layer outputs takes the unfused
  // graph, whose values are the simulation's).
  const at::Tensor* fused_bias = nullptr;         ///< added to the output ([C])
  std::optional<Arg> residual;                    ///< a residual add's other operand, added after the bias
  std::optional<ActivationQuant> residual_quant;  ///< a calibrated fake quantization before that add
  OutputClamp clamp;                              ///< applied after the bias and the residual
  PostOp post = PostOp::kNone;                    ///< applied last
  std::optional<ActivationQuant> out_quant;       ///< a calibrated fake quantization of the output, after all else
  float alpha = 1;                                ///< kMatmul, kAttention: the product scaled (a division fused)
  /// kAttention with a constant mask: its prefix form (attention.h, mask_prefixes), found once at open.
  bool constant_mask = false;
  std::optional<std::vector<int64_t>> mask_prefixes;
  bool channels_last_out = false;  ///< a convolution's output left channels last (every reader takes it)
  /// An integer convolution or a max pool whose output only integer convolutions read, one of them quantizing it
  /// dynamically: its kernels take the output's range as they write it, for that reader (packed_conv2d's
  /// output_range, max_pool2d's range).
  bool passes_range = false;
  std::string fused;          ///< what was fused, for profiles ("+add+gelu")
  std::string second_factor;  ///< a low-rank layer's first factor: its second, run in the same call
};

}  // namespace packed
}  // namespace adze
