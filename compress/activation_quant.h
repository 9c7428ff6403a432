// Activation quantization: fake-quant on the input activation of every layer the plan gives act_bits.
//
// A tap is one use of a layer (a tied weight has several): the activation that feeds it. Calibration runs the
// model on the training data (the evaluation data when there is none) with the taps as extra outputs and
// observes their ranges: min-max; a percentile averaged over batches; or mse, the range shrunk by the factor
// in [0.30, 1.00] whose fake-quantization of a subsample of all batches has the least squared error; then each tap gets
// an aten::fake_quantize_per_tensor_affine node (asymmetric, per tensor, codes 0..2^b−1) whose scale and zero point are
// buffers bound to the graph ("<layer>.act_scale",
// "<layer>.act_zero_point"; "<layer>_act_scale" beside a layer that is a bare parameter, such as
// "self_attn.in_proj_weight"), so that they are saved with the model and the gradient passes straight through.
//
// A quantized layer's bias is then rounded to its integer accumulator's grid (input scale · weight scale, per
// output channel), as integer runtimes add it (ONNX Runtime's int32 bias), so that the simulation computes what
// deploys. Fine-tuning after calibration trains the bias on in float.
#pragma once

#include <string>
#include <vector>

#include "compress/pass.h"

namespace torch {
namespace jit {
struct Node;
struct Value;
}  // namespace jit
}  // namespace torch

namespace adze {

struct ActivationObserver {
  std::string method = "minmax";  ///< "minmax", "percentile" or "mse"
  double percentile = 99.99;
  int64_t batches = 8;  ///< calibration batches of the model's traced batch size
  /// "integer": also the operands of residual adds and average pools between quantized layers
  /// (activation_placement.h), as integer runtimes run them; "inputs": only the inputs of quantized layers.
  std::string placement = "integer";
};

struct ActivationQuantResult {
  int taps = 0;     ///< fake-quant nodes inserted
  int skipped = 0;  ///< layers with act_bits that take no float activation (embeddings)
};

/// Calibrates and inserts fake-quant for every layer whose plan config has act_bits 8 or 16. Needs data.
ActivationQuantResult quantize_activations(CompressionContext& context, const ActivationObserver& observer);

/// A bias on its integer accumulator's grid: the codes (whole numbers, in float32) and the per-channel step,
/// input scale · weight scale, both computed in float32, so that the simulation and an int32 bias in an export
/// come out the same. `fits` is false when a code is not finite or beyond int32.
struct AccumulatorBias {
  at::Tensor codes, step;
  bool fits = false;
};
AccumulatorBias accumulator_bias(const at::Tensor& bias, const at::Tensor& weight_scale, float input_scale);

/// A linear layer traced as matmul(x, t(W)) and then add(·, b) (or add(b, ·)): that add and b, when the matmul's
/// output has no other use, alpha is 1 and b is a 1-D tensor of the model; {nullptr, nullptr} otherwise. Its
/// bias is rounded as aten::linear's is (round_biases_to_accumulators) and goes out inside the layer (ONNX's
/// Gemm, fused by ONNX Runtime into QGemm).
struct BiasAdd {
  const torch::jit::Node* add = nullptr;
  const torch::jit::Value* bias = nullptr;
};
BiasAdd bias_add_of(const Model& model, const torch::jit::Node* matmul);

/// Rounds the bias of every single-use convolution or linear layer (bias_add_of's too) with quantized uniform weights
/// and an 8-bit quantized input to its integer accumulator's grid, input scale · weight scale (per output channel):
/// what an integer runtime adds to the int32 sums (ONNX Runtime's QLinearConv and QGemm), so that the simulation
/// computes what deploys. quantize_activations calls it, and fine-tuning again at its end. Returns the biases rounded;
/// a code beyond int32 leaves that bias as it is.
int round_biases_to_accumulators(CompressionContext& c);

/// LSQ-style learned activation ranges for fine-tuning: switches every activation fake-quant to
/// aten::_fake_quantize_learnable_per_tensor_affine (the gradient reaches the scale, scaled by
/// 1/sqrt(elements per sample · qmax) as LSQ does) and returns the scale tensors, now requiring grad.
/// Zero points stay fixed.
std::vector<at::Tensor> learn_activation_scales(Model& model);
/// The smallest activation scale: learned scales are clamped to it after every step.
constexpr float kMinScale = 1e-8f;
/// Back to fixed fake-quant with the learned scales; returns how many nodes were switched back.
int fix_activation_scales(Model& model);

}  // namespace adze
