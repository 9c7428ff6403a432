// Block decomposition: a weight written as a product of smaller factors, each factor itself a plain Encoding
// (quantized by the layer's weight_bits and granularity, with its N:M mask and sparsity). Like the other
// schemes, a decomposition is a projection onto a constraint set, and the weight is decoded exactly from the
// factors. All three work on the canonical [C, K] matrix of compress/encoding.h (C outputs, K reduction):
//
//   lowrank   W ≈ B·A, A [r, K], B [C, r]: truncated SVD with √σ in each factor (Eckart–Young optimal before
//             quantization). A convolution becomes a kh×kw convolution to r channels, then a 1×1 convolution.
//   monarch   W ≈ P·blockdiag(L)·Pᵀ·blockdiag(R) with b = `blocks`: R holds b blocks [b, K/b] (factor 1,
//             stored [b·b, K/b]: row k·b + l maps input block k to output block l), L holds b blocks [C/b, b]
//             (factor 2, stored [C, b]). W's block (l, k), C/b × K/b, is then the rank-1 product of row
//             k·b + l of R and column k of L's block l: the projection is the best rank-1 approximation (its
//             SVD) of each block, Frobenius-optimal as in Dao et al. 2022 (Monarch). Linears and 1×1
//             convolutions.
//   smartdeal W ≈ C·B per output channel (SmartDeal, Chen et al.): the channel's weights, cut into chunks of
//             `basis` consecutive values (for a convolution, along its kernel rows: the weight's own layout
//             [Cout, Cin, kh, kw]), are a power-of-two, optionally sparse, coefficient matrix [K/b, b] (factor
//             1, stored [C, K]) times a small dense basis [b, b] (factor 2, stored [C, b·b]). Alternating least
//             squares: coefficients = Π_pow2(W·B⁺), then B = least squares given the coefficients.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "compress/encoding.h"
#include "model/layer_table.h"

namespace adze {

/// "lowrank" -> kLowRank, ...; false when `name` is none of them.
bool parse_decomposition(const std::string& name, Decomposition* out);
/// "none, lowrank, monarch or smartdeal", for messages.
std::string decomposition_names();

/// One factor of a decomposed layer: a layer of its own (a linear [rows, cols]; for lowrank of a convolution, a
/// kh×kw convolution to r channels and a 1×1 convolution), and the config it is projected with.
struct FactorSpec {
  std::string role;  ///< "first", "second" (lowrank), "blocks_in", "blocks_out" (monarch), "coefficients", "basis"
  Layer layer;
  LayerConfig config;
};

/// The factors `config` splits `layer` into, in the order they apply to an input (empty when not decomposed).
/// Assumes check_decomposition() passed.
std::vector<FactorSpec> factor_specs(const Layer& layer, const LayerConfig& config);

/// "lowrank r=8", "monarch 4 blocks", "smartdeal basis 3", or "none": for reports and tables.
std::string describe_decomposition(const Layer& layer, const LayerConfig& config);

/// lowrank's r: `rank` when set, else round(rank_ratio · min(C, K)), at least 1.
int64_t lowrank_rank(const Layer& layer, const LayerConfig& config);

/// "" or why `config`'s decomposition cannot apply to `layer`, naming the field ("blocks 3: does not divide
/// the layer's 64 outputs"); includes each factor's own check_config.
std::string check_decomposition(const Layer& layer, const LayerConfig& config);

/// The layer's MACs per sample when it runs as its factors (lowrank, monarch); smartdeal and dense layers
/// keep layer.macs (SmartDeal's product is taken once, at load).
double factored_macs(const Layer& layer, const LayerConfig& config);

/// Projects `weight` (the layer's, any layout) onto the decomposition: the Encoding's `factors` hold each
/// factor's Encoding in factor_specs() order. Deterministic. Called by project() after its checks.
Encoding project_decomposed(const at::Tensor& weight, const Layer& layer, const LayerConfig& config);

/// The decomposed weight's matrix in the Encoding's canonical layout [C, K], from its decoded factors.
at::Tensor compose_factors(const Encoding& e);
/// The weight, in its own layout, that factors given as tensors (each in its factor's own layout, as
/// e.factors[i].shape) compose to under e's decomposition; differentiable, so gradients reach the factors
/// (fine-tuning the factors themselves, compress/compressor.h).
at::Tensor compose_weight(const Encoding& e, const at::Tensor& first, const at::Tensor& second);

}  // namespace adze
