// While a decomposed layer trains its factors, the graph computes through them, so that a fine-tuning step
// costs what the factors cost. The factors are parameters of their own (named as the factors' layers,
// "fc/first", "fc/second"):
// - low-rank linear: x·Wᵀ becomes (x·F₁ᵀ)·F₂ᵀ, F₁ [r, K] and F₂ [C, r]. The op that read W (linear(x, W, b),
//   or mm, matmul or addmm on t(W)) reads F₂ and x·F₁ᵀ instead;
// - Monarch linear (b blocks): that op reads blockdiag(L's blocks) [C, b·b] and z = einsum("...kj,klj->...lk",
//   x in blocks, R) flattened, b·K + C·b² multiply-adds per row against C·K;
// - low-rank convolution (groups 1): a copy of the convolution with F₁ (kh×kw to r channels, no bias) runs
//   first, and the convolution itself becomes a 1x1 one with F₂, stride 1, no padding.
// Restoring gives the op back its inputs and drops the inserted ops and the factors. Other decomposed layers
// (SmartDeal, Monarch convolutions) train their factors through their product (compress/compressor.h).
#pragma once

#include <ATen/core/Tensor.h>

#include <string>
#include <vector>

#include "compress/decompose.h"
#include "model/model.h"

namespace adze {

class FactoredGraph {
 public:
  explicit FactoredGraph(Model& model);
  ~FactoredGraph();  // restores what is still rewritten
  FactoredGraph(const FactoredGraph&) = delete;
  FactoredGraph& operator=(const FactoredGraph&) = delete;

  /// Whether `layer` can compute through its factors: a low-rank or Monarch linear layer whose weight one op reads
  /// and nothing else (linear, or mm, matmul or addmm on its transpose), or a low-rank convolution of one group.
  bool can_rewrite(const Layer& layer, const LayerConfig& config) const;
  /// Rewrites the layer to compute through factors starting at `decomposition`'s (decoded). Returns the factor
  /// tensors the graph now reads (in the order of factor_specs), parameters of the model.
  std::vector<at::Tensor> rewrite(const Layer& layer, const Encoding& decomposition);
  /// Puts every rewritten layer back as it was and drops its factor tensors.
  void restore();

 private:
  struct Rewrite;
  Model& model_;
  std::vector<Rewrite> rewrites_;
};

}  // namespace adze
