// OnnxBuilder: writes one ONNX graph (libonnx's protobuf types) from adze's traced graph: fresh names,
// initializers, nodes and attributes, and the ONNX name of every traced value translated so far.
#pragma once

#include <ATen/core/ivalue.h>
#include <onnx/onnx_pb.h>

#include <cstdint>
#include <functional>
#include <map>
#include <string>
#include <vector>

#include "compress/compressed_model.h"

namespace torch {
namespace jit {
struct Value;
}  // namespace jit
}  // namespace torch

namespace adze {

/// What an ONNX export targets, from the exporter's options (`adze exporters` documents them).
struct OnnxOptions {
  /// "portable": 8-bit weights stored unsigned (u8 activations × u8 weights), which ONNX Runtime computes exactly
  /// on every x86 CPU; "vnni": signed weights (u8 × s8), faster where the CPU has AVX-512 VNNI / AVX-VNNI and
  /// liable to saturate on AVX2-only CPUs (vpmaddubsw adds two u8·s8 products into 16 bits).
  std::string ort_target = "portable";
  /// Linear layers with quantized weights only: int8 activations quantized per call (MatMulNBits,
  /// DynamicQuantizeMatMul: fast, an approximation as adze's own runtime's default), each row scaled to its own
  /// range first (kPerRow) or one range for all rows (kPerTensor); or fp32 on the decoded weight (kFloat: the
  /// simulation's numbers).
  enum class Activations { kPerRow, kPerTensor, kFloat };
  Activations activations = Activations::kPerRow;
  bool dynamic_activations() const { return activations != Activations::kFloat; }
  /// The batch dimension is symbolic ("batch"): one file serves every batch size.
  bool dynamic_batch = false;
};

class OnnxBuilder {
 public:
  OnnxBuilder(const CompressedModel& m, const OnnxOptions& options, onnx::GraphProto* g);

  const CompressedModel& model() const { return m_; }
  const OnnxOptions& options() const { return options_; }

  // --- constants of the traced graph ---------------------------------------------------------------------
  /// The constant `v` holds. With dynamic_batch, Error(kUnsupported) when it depends on the batch size (only
  /// shape() computes such a value).
  c10::IValue constant(const torch::jit::Value* v) const;
  /// An int list argument (a view's shape) as an int64 tensor: an initializer, or with dynamic_batch and a
  /// batch-dependent list, computed from the input's batch dimension (Shape → Gather → a·n + b → Concat).
  std::string shape(const torch::jit::Value* list);
  int64_t int_of(const torch::jit::Value* v) const { return constant(v).toInt(); }
  std::vector<int64_t> ints_of(const torch::jit::Value* v) const { return constant(v).toIntVector(); }
  static bool is_none(const torch::jit::Value* v);

  // --- names, initializers and nodes ---------------------------------------------------------------------
  std::string fresh(const std::string& hint) { return hint + "_" + std::to_string(counter_++); }
  /// A named initializer holding `value` (float32, int64, int32, int8, uint8 or bool).
  std::string initializer(const std::string& name, const at::Tensor& value);
  std::string ints(const std::vector<int64_t>& v);
  std::string scalar(double x);
  /// The largest magnitude of each row (last dimension) of tensor `x`, at least 1e-30 (keepdims: [..., 1]):
  /// made once per tensor, however many layers read it.
  std::string row_max(const std::string& x);
  /// Adds a node of `op` (in `domain`, "" for ONNX's own) and returns its output's name.
  std::string node(const std::string& op, const std::vector<std::string>& inputs,
                   const std::function<void(onnx::NodeProto*)>& attrs = {}, std::string output = "",
                   const std::string& domain = "");

  static void attr(onnx::NodeProto* n, const std::string& name, int64_t v);
  static void attr(onnx::NodeProto* n, const std::string& name, float v);
  static void attr(onnx::NodeProto* n, const std::string& name, const std::vector<int64_t>& v);
  /// ONNX's pads (begin of every axis, then end) for PyTorch's symmetric padding.
  static std::vector<int64_t> pads(const std::vector<int64_t>& symmetric);

  // --- traced values ---------------------------------------------------------------------------------------
  /// The ONNX name of a traced value: a model input, a parameter (a float initializer; a quantized weight is
  /// decoded to float32 here: only the layer translations (onnx_layers.h) keep its codes), or an earlier node's
  /// output.
  std::string in(const torch::jit::Value* v);
  void bind(const torch::jit::Value* v, const std::string& name) { names_[v] = name; }
  bool bound(const torch::jit::Value* v) const { return names_.count(v) > 0; }
  /// The Encoding of a layer weight with quantized codes (not decomposed), or nullptr.
  const Encoding* quantized_encoding(const torch::jit::Value* weight) const;
  /// The Encoding of a decomposed layer weight (its factors), or nullptr.
  const Encoding* decomposed_encoding(const torch::jit::Value* weight) const;

 private:
  const Encoding* encoding(const torch::jit::Value* weight) const;
  const CompressedModel& m_;
  OnnxOptions options_;
  onnx::GraphProto* g_;
  std::map<std::string, const Layer*> weight_layer_;
  std::map<const torch::jit::Value*, std::string> names_;
  int counter_ = 0;
  std::string batch_;  ///< the input's batch size as an int64 [1] tensor, made at its first use
  std::map<std::string, std::string> row_max_;  ///< per tensor, its rows' largest magnitudes (row_max())
};

}  // namespace adze
