// LayerConfig says what to do to one layer's weight; an Encoding is the result, from which the float weight
// is reconstructed exactly. Simulation, reports, cost models and exporters all read the Encoding.
//
// Layout: a weight is viewed as a matrix [C, K] with the output channels C as rows and the reduction dimension
// last (conv [Cout, Cin, kh, kw] -> [Cout, kh·kw·Cin]; x @ W with W [K, N] -> Wᵀ). N:M groups and quantization
// groups run along K, consecutive in that layout: the layout sparse kernels and packed formats use.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "compress/scheme.h"
#include "core/shape.h"
#include "quantize/uniform.h"
#include "sparsity/nm.h"

namespace adze {

struct Layer;

enum class Granularity { kPerTensor, kPerChannel, kPerGroup };
const char* to_string(Granularity g);
/// Block decompositions (compress/decompose.h): the weight as a product of factors.
enum class Decomposition : uint8_t { kNone = 0, kLowRank = 1, kMonarch = 2, kSmartDeal = 3 };
const char* to_string(Decomposition d);  ///< "none", "lowrank", "monarch", "smartdeal"
const char* to_string(Quantizer q);      ///< its scheme's name (compress/scheme.h)

struct LayerConfig {
  int weight_bits = 32;  ///< 2..8 quantized; 16 or 32: kept in float
  Quantizer quantizer = Quantizer::kUniform;
  bool symmetric = true;
  Granularity granularity = Granularity::kPerChannel;
  int64_t group_size = 128;  ///< for kPerGroup, along the reduction dimension
  bool pow2_scale = false;
  ScaleMethod scale_method = ScaleMethod::kMinMax;
  double percentile = 99.99;
  int act_bits = 0;  ///< 0: activations not quantized; 8 or 16
  NMPattern nm;
  bool permute = false;  ///< search a channel permutation that raises the magnitude N:M keeps (ASP-style)
  double sparsity = 0;   ///< unstructured: fraction of weights (of those N:M keeps) set to zero, in [0, 1)
  /// Block decomposition (compress/decompose.h); the fields above then apply to each factor.
  Decomposition decompose = Decomposition::kNone;
  int64_t rank = 0;       ///< lowrank: the rank; 0: from rank_ratio
  double rank_ratio = 0;  ///< lowrank: rank as a fraction of min(C, K), when rank is 0
  int64_t blocks = 4;     ///< monarch: diagonal blocks per factor
  int64_t basis = 3;      ///< smartdeal: basis size (the chunk length of each channel's weights)
  bool quantized() const { return weight_bits <= 8; }
  bool decomposed() const { return decompose != Decomposition::kNone; }
  bool compresses() const { return quantized() || nm.enabled() || sparsity > 0 || decomposed(); }
  bool operator==(const LayerConfig& o) const;
};

/// The sparsity structure a projection chose (mask and channel permutation), for later projections of the
/// same layer to keep: quantizing after an earlier sparsity step, or fine-tuning with a fixed mask.
struct SparsityStructure {
  at::Tensor mask;         ///< bool [C, K] in the encoded layout, or undefined
  at::Tensor permutation;  ///< int64 [run] or undefined
};

struct Encoding {
  Shape shape;                 ///< the weight's shape
  std::vector<int64_t> order;  ///< permutation of the weight's dims into the canonical layout
  LayerConfig config;
  at::Tensor codes;       ///< int8 (int16 for asymmetric 8-bit) [R, G]: R·G = C·K, rows of the quantization grid
  at::Tensor scale;       ///< float32 [R]
  at::Tensor zero_point;  ///< int32 [R]
  at::Tensor mask;        ///< bool [C, K], undefined when dense
  /// int64 [run], undefined unless config.permute: the reduction channels (a convolution's input channels, a
  /// linear's inputs) in the order the encoded layout holds them; codes, mask and values are in that order.
  at::Tensor permutation;
  at::Tensor values;  ///< float32 [C, K] when not quantized
  /// When config.decomposed(): each factor's own Encoding, in the order they apply to an input
  /// (compress/decompose.h); the fields above are then undefined, and `order` lays the weight out as the
  /// decomposition's [C, K] matrix.
  std::vector<Encoding> factors;
  int64_t channels() const;   ///< C
  int64_t reduction() const;  ///< K
  /// The weight, in its original layout and dtype float32, reconstructed exactly from the fields above.
  at::Tensor decode() const;
  /// Bool, in the weight's layout: where `weight` lies inside its row's representable range, [(qmin − z)·s,
  /// (qmax − z)·s] (power-of-two: [−s, s]; unquantized: everywhere). The straight-through estimator passes
  /// the gradient there and nowhere else: clipped weights get none.
  at::Tensor representable(const at::Tensor& weight) const;
  /// The weight in the encoded layout: canonical [C, K] with the channel permutation applied.
  at::Tensor to_encoded_layout(const at::Tensor& weight) const;
  /// The inverse: an encoded-layout [C, K] tensor (codes' positions, mask) back in the weight's own layout.
  at::Tensor from_canonical(const at::Tensor& encoded) const;
  SparsityStructure structure() const { return {mask, permutation}; }
};

/// The canonical [C, K] matrix of a weight for `layer`, and the permutation that made it.
at::Tensor to_canonical(const at::Tensor& weight, int reduction_dim, std::vector<int64_t>* order);
/// The dimension of `layer`'s weight that becomes C, the canonical matrix's rows (its channels): a 2-D weight's
/// other than the reduction one, else the first (a convolution's output channels).
int channel_dim(const Layer& layer);

/// Projects `weight` onto the constraint set of `config`: channel permutation (with config.permute), N:M mask,
/// then unstructured mask, then quantization of the survivors (scales chosen from the survivors only); a
/// decomposed config projects onto its factors, and each factor so (compress/decompose.h). Pure
/// and deterministic. With `keep` defined, its mask and permutation are kept instead of searching new ones.
/// With `scales` defined (a uniform quantizer only: learned scales), the rows are quantized with those scales
/// and zero points instead of ones the config's scale_method chooses; they must have one entry per row of the
/// quantization grid. Throws Error(kInvalidConfig) when check_config fails, Error(kInvalidArgument) for NaN/Inf
/// weights.
Encoding project(const at::Tensor& weight, const Layer& layer, const LayerConfig& config,
                 const SparsityStructure& keep = {}, const RowQuantParams& scales = {});

/// The scales and zero points project() chooses for the rows of the quantization grid that output channels
/// [begin, end) of the encoded layout hold (per-channel: those rows; per-group: each channel's groups in turn),
/// the same numbers as the rows of project()'s own; for data-parallel ranks that share the choice out
/// (compress/compressor.h). An affine quantizer per channel or group only, with the permutation (if the config
/// permutes) given in `keep`. Only those channels are read (unless unstructured sparsity must rank the whole
/// layer): a NaN or Inf among them is Error(kInvalidArgument), as in project(); one elsewhere is not seen.
RowQuantParams choose_channel_scales(const at::Tensor& weight, const Layer& layer, const LayerConfig& config,
                                     const SparsityStructure& keep, int64_t begin, int64_t end);

/// Checks that `config` can apply to `layer`; returns "" or the reason, naming the field
/// ("nm 2:4: reduction dimension 30 is not a multiple of M=4").
std::string check_config(const Layer& layer, const LayerConfig& config);

}  // namespace adze
