// One encoded weight in the packed format (FORMAT.md, "Layers"): the Encoding's codes bit-packed at their width,
// only the weights the N:M mask keeps, with the mask as index bits. Rows are the output channels of the
// encoded layout [C, K] (channel permutation applied), each row starting on a byte, so that a kernel reads row c
// at c · row_bytes with no transformation. The reverse gives back the Encoding bit for bit.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "compress/encoding.h"
#include "runtime/kernels/qgemm.h"
#include "runtime/safetensors.h"

namespace adze {
namespace packed {

/// Scheme identifiers, versioned: a change of meaning gets a new identifier, and none is ever reused. A weight
/// scheme's own (adze.uniform.v1: code − qmin in `bits` bits; adze.pow2.v1: code + 2^(bits−1) − 1) is its
/// SchemeTraits::packed_scheme (compress/scheme.h).
constexpr const char* kFloatScheme = "adze.float.v1";         ///< float32 values
constexpr const char* kNMIndexScheme = "adze.nm_index.v1";    ///< per group of M, N positions in ceil(log2 M) bits
constexpr const char* kBitmapIndexScheme = "adze.bitmap.v1";  ///< unstructured sparsity: one bit per position
/// A lowrank layer L is stored as two layers, L + kFirstFactor and L + kSecondFactor (FORMAT.md, "Decomposed
/// layers"); the second's output is L's.
constexpr const char* kFirstFactor = "#first";
constexpr const char* kSecondFactor = "#second";
/// The graph op of a Monarch layer (its factors stored as a lowrank layer's are): packed_monarch_matmul.
constexpr const char* kMonarchOp = "adze::packed_monarch";
/// The graph op that composes a SmartDeal layer's weight from its two stored factors (coefficients, basis),
/// once at open; the ops that read the weight read its output (FORMAT.md, "Decomposed layers").
constexpr const char* kSmartDealOp = "adze::smartdeal_weight";

/// The layer's entry of the header ("layers" → name) and its tensors, named "<weight>:codes" and so on.
struct PackedLayer {
  nlohmann::ordered_json header;
  std::vector<RawTensor> tensors;
};

/// Packs an Encoding: in the integer kernels' layout where they take it (FORMAT.md, "Kernel layout"), else as
/// codes and index bits; with `kernel_layout` false always the latter, as version 1 files hold every layer.
/// Error(kUnsupported) for a mask that is not exactly N of every M (unstructured sparsity).
PackedLayer pack_layer(const std::string& weight_name, const Encoding& e, bool kernel_layout = true);

/// Read access to one packed layer, over tensors that stay where they are (a mapped file).
class LayerView {
 public:
  /// Checks the header entry against the tensors (sizes, schemes, ranges); Error(kIo) naming `where` if they
  /// disagree.
  LayerView(const nlohmann::json& header, const std::map<std::string, TensorSpan>& tensors, const std::string& where);

  int64_t channels() const { return channels_; }
  int64_t reduction() const { return reduction_; }
  int64_t kept_per_row() const { return kept_; }
  const Encoding& layout() const { return layout_; }  ///< shape, order, config, permutation (no codes)

  /// Rows [begin, end) of the encoded layout as float32 into out [end − begin, K] (zeros where pruned).
  void decode_rows(int64_t begin, int64_t end, float* out) const;
  /// The rows listed (an embedding's ids) into out [count, K]; Error(kInvalidArgument) for a row outside [0, C).
  /// A layer of at most kDecodedTableMaxBytes as float32 is decoded whole at the first call (once, whichever
  /// thread asks) and kept, and its rows are then copied: an embedding's lookups cost a copy, not a decode.
  void decode_listed_rows(const int64_t* rows, int64_t count, float* out) const;
  static constexpr int64_t kDecodedTableMaxBytes = int64_t{4} << 20;
  /// The Encoding, bit-identical to the one packed.
  Encoding encoding() const;
  /// The weight in the integer kernels' layout (kernels/qgemm.h), in the encoded column order, built when the
  /// view is made; null when the kernels cannot take it (integer_unsupported() says why).
  const runtime::QWeights* integer_weights() const { return kernel_ || integer_ ? &kernel_view_ : nullptr; }
  const std::string& integer_unsupported() const { return integer_unsupported_; }
  /// integer_weights() expanded for the GEMM microkernel of the active instruction set (qgemm.h, QPanels),
  /// built at the first call (once, whichever thread asks) and kept for the view's life; null without
  /// integer weights.
  const runtime::QPanels* panels() const;
  /// With a channel permutation: encoded column j holds the layer's column gather()[j] (empty without one).
  const std::vector<int64_t>& gather() const { return gather_; }

 private:
  // The kept positions of row c (ascending) and their stored unsigned codes; returns how many (kept_per_row,
  // or fewer for a row of a bitmap-indexed layer).
  int64_t unpack_row(int64_t c, int32_t* positions, uint8_t* codes) const;
  // Every row decoded ([C, K]), made at the first call and kept, for a layer of at most kDecodedTableMaxBytes;
  // null for a larger one.
  const float* decoded_table() const;
  // Row c into out [K]; positions and codes are scratch of kept_per_row entries.
  void decode_row(int64_t c, float* out, int32_t* positions, uint8_t* codes) const;
  using TensorFinder = std::function<const uint8_t*(const char* part, const std::string& dtype, int64_t bytes)>;
  // Reads a layer stored in the kernels' layout (FORMAT.md, "Kernel layout") into kernel_view_.
  void read_kernel_layout(const nlohmann::json& kernel, const TensorFinder& find);
  // For a layer stored as codes and index bits: packs it for the kernels (integer_) or says why not.
  void build_integer_weights();
  Encoding layout_;
  std::string scheme_;
  int bits_ = 0;
  int64_t channels_ = 0, reduction_ = 0, kept_ = 0, row_bytes_ = 0, index_row_bytes_ = 0, grid_rows_ = 0;
  int index_bits_ = 0;
  const uint8_t* codes_ = nullptr;
  const uint8_t* index_ = nullptr;
  const float* values_ = nullptr;
  const float* scale_ = nullptr;
  const uint8_t* zero_point_ = nullptr;
  int64_t qmin_ = 0;
  std::string where_;
  bool kernel_ = false;  ///< stored in the kernels' layout: kernel_view_ points into the file
  bool bitmap_ = false;  ///< unstructured sparsity: index_ is one bit per position
  runtime::QWeights kernel_view_;
  std::vector<uint64_t> mask_copy_;  ///< the kernel layout's mask, where the file's is not 8-byte aligned
  std::shared_ptr<const runtime::PackedQWeights> integer_;  ///< packed at open (older layers)
  std::string integer_unsupported_;
  std::vector<int64_t> gather_;
  mutable std::once_flag panels_once_;
  mutable std::unique_ptr<const runtime::QPanels> panels_;
  mutable std::once_flag table_once_;
  mutable std::vector<float> table_;  ///< decode_listed_rows' whole decoded layer, [C, K] (small layers)
};

}  // namespace packed
}  // namespace adze
