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

#include "core/shape.h"
#include "quantize/uniform.h"
#include "sparsity/nm.h"

namespace adze {

struct Layer;

enum class Granularity { kPerTensor, kPerChannel, kPerGroup };
const char* to_string(Granularity g);
enum class Quantizer { kUniform, kPow2 };
const char* to_string(Quantizer q);

struct LayerConfig {
  int weight_bits = 32;  ///< 2..8 quantized; 16 or 32: kept in float
  Quantizer quantizer = Quantizer::kUniform;
  bool symmetric = true;
  Granularity granularity = Granularity::kPerChannel;
  int64_t group_size = 128;  ///< for kPerGroup, along the reduction dimension
  bool pow2_scale = false;
  ScaleMethod scale_method = ScaleMethod::kMinMax;
  double percentile = 99.99;
  int act_bits = 0;   ///< 0: activations not quantized; 8 or 16
  NMPattern nm;
  double sparsity = 0;  ///< unstructured: fraction of weights (of those N:M keeps) set to zero, in [0, 1)
  bool quantized() const { return weight_bits <= 8; }
  bool compresses() const { return quantized() || nm.enabled() || sparsity > 0; }
  bool operator==(const LayerConfig& o) const;
};

struct Encoding {
  Shape shape;                 ///< the weight's shape
  std::vector<int64_t> order;  ///< permutation of the weight's dims into the canonical layout
  LayerConfig config;
  at::Tensor codes;       ///< int8 (int16 for asymmetric 8-bit) [R, G]: R·G = C·K, rows of the quantization grid
  at::Tensor scale;       ///< float32 [R]
  at::Tensor zero_point;  ///< int32 [R]
  at::Tensor mask;        ///< bool [C, K], undefined when dense
  at::Tensor values;      ///< float32 [C, K] when not quantized
  int64_t channels() const;   ///< C
  int64_t reduction() const;  ///< K
  /// The weight, in its original layout and dtype float32, reconstructed exactly from the fields above.
  at::Tensor decode() const;
  /// Bool, in the weight's layout: where `weight` lies inside its row's representable range, [(qmin − z)·s,
  /// (qmax − z)·s] (power-of-two: [−s, s]; unquantized: everywhere). The straight-through estimator passes
  /// the gradient there and nowhere else: clipped weights get none.
  at::Tensor representable(const at::Tensor& weight) const;
  /// A canonical [C, K] tensor back in the weight's own layout (the inverse of to_canonical).
  at::Tensor from_canonical(const at::Tensor& canonical) const;
};

/// The canonical [C, K] matrix of a weight for `layer`, and the permutation that made it.
at::Tensor to_canonical(const at::Tensor& weight, int reduction_dim, std::vector<int64_t>* order);

/// Projects `weight` onto the constraint set of `config`: N:M mask, then unstructured mask, then quantization
/// of the survivors (scales chosen from the survivors only). Pure and deterministic. With `fixed_mask` (bool,
/// canonical [C, K]) that mask is kept instead of computing one: quantizing after an earlier sparsity step.
/// Throws Error(kInvalidConfig) when check_config fails, Error(kInvalidArgument) for NaN/Inf weights.
Encoding project(const at::Tensor& weight, const Layer& layer, const LayerConfig& config,
                 const at::Tensor& fixed_mask = {});

/// Checks that `config` can apply to `layer`; returns "" or the reason, naming the field
/// ("nm 2:4: reduction dimension 30 is not a multiple of M=4").
std::string check_config(const Layer& layer, const LayerConfig& config);

}  // namespace adze
