// The packed format's runtime (FORMAT.md): a whole compressed model in one safetensors-compatible file, written
// by exporters/packed/packed_writer.h, opened and run here. PackedModel maps a file, checks it (checksums, every
// header field against the tensors), gives back the Encodings bit for bit, and runs the graph as a schedule
// made at open (fusion.h): linear layers and convolutions whose weights the integer kernels take on those
// kernels (packed_ops.h, kernels/qgemm.h), with calibrated or on-the-fly 8-bit activations and their bias and
// activation functions fused; layer norm, softmax, GELU, attention's matmuls, adds, clamps, fake-quants, max
// pooling and depthwise convolutions on float kernels of its own (own_ops.h, float_ops.h); every other op with
// ATen's operator, weights those read decoded once at open. A batch-generic file (FORMAT.md, "Batch-generic
// files") runs any batch size in one call: its schedule is made again for each batch size seen (the batch-dependent
// constants evaluated, constants folded, ops fused, slots planned) and kept for the next call at that size.
#pragma once

#include <ATen/core/Tensor.h>

#include <map>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/compressed_model.h"
#include "runtime/packed_ops.h"

namespace adze {
namespace runtime {
class BufferPool;
}
namespace packed {

constexpr const char* kFormat = "adze.packed";
/// Version 2 stores the layers the integer kernels take in their layout (FORMAT.md); version 1 files, which
/// hold every layer as codes and index bits, are still read (their layers are packed for the kernels at open).
constexpr int kFormatVersion = 2;
constexpr int kOldestFormatVersion = 1;

class SafetensorsFile;
class LayerView;
struct Node;
struct Program;
struct Schedule;
struct ScheduleCache;

/// How the runtime computes the layers whose weights the integer kernels take (LayerView::integer_weights()).
struct RunOptions {
  /// Layers with calibrated activation quantization (act_bits 8) always run on the integer kernels, with the
  /// calibrated scale and zero point: the simulation's codes exactly. For the others (weight-only plans):
  /// quantize their input to 8 bits per row on the fly and run the integer kernels (true), or decode the
  /// weights and multiply in fp32, the simulation's numbers up to summation order (false).
  bool dynamic_activations = true;
  /// false: no integer kernels at all, every layer decodes its weights and multiplies in fp32.
  bool integer_kernels = true;
};

/// One op of a profiled run.
struct NodeProfile {
  std::string op, layer;  ///< the operator, and the layer it computes (or "")
  bool integer = false;   ///< on the integer kernels
  bool own = false;       ///< on a float kernel of the runtime's own (else ATen's operator)
  double seconds = 0;     ///< mean per run
};

class PackedModel {
 public:
  /// Maps and checks `path`: Error(kIo) naming the file and what is wrong for anything truncated, corrupted or
  /// of another format or version.
  static PackedModel open(const std::string& path, const RunOptions& options = {});
  PackedModel(PackedModel&&) noexcept;
  PackedModel& operator=(PackedModel&&) noexcept;
  ~PackedModel();

  /// Every packed layer's Encoding, bit-identical to what was written.
  std::map<std::string, Encoding> encodings() const;
  /// Runs the model on x, any batch: a batch-generic file in one call at x's batch size, any other cut into
  /// pieces of the traced batch as Model::forward does.
  at::Tensor forward(const at::Tensor& x) const;
  /// With `layer_outputs`, also returns every layer's output, keyed as model/tapped_graph.h's
  /// layer_outputs() keys the simulation's (for per-layer comparisons). With `from` as well (x one batch the
  /// file runs in one call), each layer's output, once recorded, is replaced by from's tensor of the same key
  /// before the run goes on: every recorded output is then what the runtime makes of that one layer from the
  /// simulation's values of the layers before it, apart from the differences those layers would pass on.
  at::Tensor forward(const at::Tensor& x, std::map<std::string, at::Tensor>* layer_outputs,
                     const std::map<std::string, at::Tensor>* from = nullptr) const;

  /// The input the file records; shape[0] is the batch it was traced with.
  const InputSpec& input() const { return input_; }
  /// Whether the file is batch-generic: the runtime runs any batch size natively.
  bool batch_generic() const { return batch_generic_; }
  /// The batch the graph runs at: the traced batch, or 0 for a batch-generic file (any batch).
  int64_t batch() const { return batch_generic_ ? 0 : input_.shape.at(0); }
  int64_t file_bytes() const;
  /// The bytes of the packed weights (codes, scales, zero points, index bits, permutations) and of the rest.
  int64_t weight_bytes() const { return weight_bytes_; }
  const nlohmann::json& header() const { return header_; }
  const RunOptions& options() const { return options_; }
  /// The layers that run on the integer kernels with these options, and why each other one does not.
  std::map<std::string, std::string> float_layers() const;
  std::vector<std::string> integer_layers() const;
  /// Those of them whose input is quantized on the fly (weight-only layers with dynamic activations).
  std::vector<std::string> dynamic_layers() const;
  /// Where the time goes: every op of the schedule in order (fused ops named with what they fused:
  /// "adze::packed_matmul+add+gelu") with its mean seconds over `runs` runs of x (a batch of exactly the traced
  /// size; any batch for a batch-generic file), after one untimed run.
  std::vector<NodeProfile> profile(const at::Tensor& x, int runs) const;
  /// The ATen operators the schedule runs (ops the runtime has no kernel of its own for, and those whose
  /// kernel takes only some shapes), with how many nodes call each.
  std::map<std::string, int> aten_ops() const;

 private:
  PackedModel() = default;
  void mark_layer_outputs();
  void plan_integer_layers();
  /// A SmartDeal layer's weight composed from its two stored factors into decoded_, for a kSmartDealOp node
  /// (shape, order, basis): "" or why the node does not fit its factors.
  std::string compose_smartdeal(const Node& node);
  /// The graph at `batch` (its batch-dependent constants evaluated there), constants folded, own ops chosen,
  /// fused, slots planned.
  std::shared_ptr<const Schedule> make_schedule(int64_t batch) const;
  /// The schedule for x's batch size: the traced one, or for a batch-generic file one made (and kept) for it.
  std::shared_ptr<const Schedule> schedule_for(int64_t batch) const;
  at::Tensor run(const Program& program, const at::Tensor& x, std::map<std::string, at::Tensor>* layer_outputs,
                 std::vector<double>* node_seconds = nullptr,
                 const std::map<std::string, at::Tensor>* from = nullptr) const;
  std::shared_ptr<const SafetensorsFile> file_;
  nlohmann::json header_;
  InputSpec input_;
  std::map<std::string, std::unique_ptr<LayerView>> layers_;
  std::map<std::string, at::Tensor> tensors_;  ///< float tensors, over the mapping
  std::unique_ptr<Program> graph_;             ///< the file's graph, each op resolved, integer layers planned
  std::shared_ptr<const Schedule> traced_;     ///< made at open for the traced batch
  std::unique_ptr<ScheduleCache> schedules_;   ///< a batch-generic file's schedules for other batch sizes
  bool batch_generic_ = false;
  std::string output_;
  int64_t weight_bytes_ = 0;
  RunOptions options_;
  std::map<std::string, at::Tensor> decoded_;  ///< weights ops read whole in fp32, decoded at open
  /// The runtime's output buffers, reused from run to run (buffer_pool.h).
  std::shared_ptr<runtime::BufferPool> pool_;
};

}  // namespace packed
}  // namespace adze
