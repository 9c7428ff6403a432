// The packed format (FORMAT.md): a whole compressed model in one safetensors-compatible file, and its runtime.
//
// write_packed() stores the graph as a list of ops, the model's float tensors as they are, and every encoded
// weight packed (packed_layer.h), so that the file's size is the model's real compressed size. PackedModel maps a
// file, checks it (checksums, every header field against the tensors), gives back the Encodings bit for bit, and
// runs the model: ATen's own kernels for the float ops, and for the encoded weights kernels that read the packed
// rows where they lie (a matmul decodes 64 output rows at a time; an embedding decodes only the rows it looks up;
// other ops get the weight decoded for the call).
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/compressed_model.h"

namespace adze {
namespace packed {

constexpr const char* kFormat = "adze.packed";
constexpr int kFormatVersion = 1;

class SafetensorsFile;
class LayerView;

/// Writes the packed file atomically. Error(kUnsupported) for what the format cannot hold (an unstructured
/// mask, a graph op without a schema); the exporter's contract catches these before any work.
void write_packed(const CompressedModel& model, const std::string& path);

/// The runtime's kernel of an encoded linear layer: x @ Cᵀ (+ bias) for the layer's encoded matrix C [C, K],
/// decoding 64 rows at a time into a tile that an fp32 GEMM consumes. Error(kInvalidArgument) when x does not
/// end in K. (The host's measured cost table times this kernel.)
at::Tensor packed_matmul(const LayerView& layer, const at::Tensor& x, const at::Tensor& bias);

class PackedModel {
 public:
  /// Maps and checks `path`: Error(kIo) naming the file and what is wrong for anything truncated, corrupted or
  /// of another format or version.
  static PackedModel open(const std::string& path);
  PackedModel(PackedModel&&) noexcept;
  PackedModel& operator=(PackedModel&&) noexcept;
  ~PackedModel();

  /// Every packed layer's Encoding, bit-identical to what was written.
  std::map<std::string, Encoding> encodings() const;
  /// Runs the model on x (any batch: cut into pieces of the traced batch as Model::forward does).
  at::Tensor forward(const at::Tensor& x) const;
  /// With `layer_outputs`, also returns every layer's output, keyed as compress/tapped_graph.h's
  /// layer_outputs() keys the simulation's (for per-layer comparisons).
  at::Tensor forward(const at::Tensor& x, std::map<std::string, at::Tensor>* layer_outputs) const;

  const InputSpec& input() const { return input_; }
  int64_t file_bytes() const;
  /// The bytes of the packed weights (codes, scales, zero points, index bits, permutations) and of the rest.
  int64_t weight_bytes() const { return weight_bytes_; }
  const nlohmann::json& header() const { return header_; }

 private:
  PackedModel() = default;
  struct Node;
  void mark_layer_outputs();
  at::Tensor run_exact_batch(const at::Tensor& x, std::map<std::string, at::Tensor>* layer_outputs) const;
  std::shared_ptr<const SafetensorsFile> file_;
  nlohmann::json header_;
  InputSpec input_;
  std::map<std::string, std::unique_ptr<LayerView>> layers_;
  std::map<std::string, at::Tensor> tensors_;  ///< float tensors, over the mapping
  std::vector<Node> nodes_;
  std::string output_;
  int64_t weight_bytes_ = 0;
};

}  // namespace packed
}  // namespace adze
