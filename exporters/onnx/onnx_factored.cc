#include "exporters/onnx/onnx_factored.h"

#include <torch/torch.h>

#include "exporters/onnx/onnx_layers.h"

namespace adze {
namespace {

// A Reshape target that keeps the first `kept` dimensions (ONNX's 0: copy that dimension) and appends `tail`.
std::string keep_then(OnnxBuilder& b, std::size_t kept, const std::vector<int64_t>& tail) {
  std::vector<int64_t> shape(kept, 0);
  shape.insert(shape.end(), tail.begin(), tail.end());
  return b.ints(shape);
}

std::string monarch_linear(OnnxBuilder& b, const std::string& x, const std::string& name, const Encoding& e,
                           std::size_t rank) {
  const int64_t blocks = e.config.blocks, C = e.channels(), K = e.reduction();
  const std::size_t lead = rank - 1;
  // blocks_in [k·b + l, j] → [k, j, l]: x's block k times it gives that block's value for every output block l.
  const at::Tensor in = e.factors[0].decode().view({blocks, blocks, K / blocks}).permute({0, 2, 1}).contiguous();
  // blocks_out [l·S + s, k] → [l, k, s].
  const at::Tensor out = e.factors[1].decode().view({blocks, C / blocks, blocks}).permute({0, 2, 1}).contiguous();
  const std::string x1 = b.node("Reshape", {x, keep_then(b, lead, {blocks, 1, K / blocks})});
  const std::string y1 = b.node("MatMul", {x1, b.initializer(name + ".blocks_in", in)});  // [..., k, 1, l]
  const std::string y2 = b.node("Reshape", {y1, keep_then(b, lead, {blocks, blocks})});   // [..., k, l]
  std::vector<int64_t> perm;
  for (std::size_t d = 0; d < lead; ++d) perm.push_back(static_cast<int64_t>(d));
  perm.push_back(static_cast<int64_t>(lead) + 1);
  perm.push_back(static_cast<int64_t>(lead));
  const std::string y3 = b.node("Transpose", {y2}, [&](onnx::NodeProto* p) { OnnxBuilder::attr(p, "perm", perm); });
  const std::string y4 = b.node("Reshape", {y3, keep_then(b, lead, {blocks, 1, blocks})});  // [..., l, 1, k]
  const std::string y5 = b.node("MatMul", {y4, b.initializer(name + ".blocks_out", out)});  // [..., l, 1, s]
  return b.node("Reshape", {y5, keep_then(b, lead, {C})});
}

}  // namespace

std::string factored_linear(OnnxBuilder& b, const std::string& x, const std::string& name, const Encoding& e,
                            const std::vector<int64_t>& x_sizes) {
  int64_t rows = 1;
  for (int64_t d : x_sizes) rows *= d;
  rows /= std::max<int64_t>(1, e.reduction());
  switch (e.config.decompose) {
    case Decomposition::kLowRank:
      return factor_matmul(b, factor_matmul(b, x, name + ".first", e.factors[0], rows), name + ".second", e.factors[1],
                           rows);
    case Decomposition::kMonarch:
      return monarch_linear(b, x, name, e, x_sizes.size());
    case Decomposition::kSmartDeal:
    case Decomposition::kNone:
      break;
  }
  return "";
}

std::string factored_convolution(OnnxBuilder& b, const std::string& x, const std::string& name, const Encoding& e,
                                 const std::vector<int64_t>& stride, const std::vector<int64_t>& pad,
                                 const std::vector<int64_t>& dilation, const std::string& bias) {
  // [r, Cin, k...], then [C, r, 1...]
  const std::string y1 =
      b.node("Conv", {x, b.initializer(name + ".first", e.factors[0].decode())}, [&](onnx::NodeProto* p) {
        OnnxBuilder::attr(p, "strides", stride);
        OnnxBuilder::attr(p, "pads", OnnxBuilder::pads(pad));
        OnnxBuilder::attr(p, "dilations", dilation);
      });
  std::vector<std::string> inputs = {y1, b.initializer(name + ".second", e.factors[1].decode())};
  if (!bias.empty()) inputs.push_back(bias);
  return b.node("Conv", inputs);
}

}  // namespace adze
