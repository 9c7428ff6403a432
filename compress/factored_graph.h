// While a low-rank linear layer trains its factors, the graph computes through them, so that a fine-tuning
// step costs what the factors cost: x·Wᵀ becomes (x·F₁ᵀ)·F₂ᵀ, with F₁ [r, K] and F₂ [C, r] parameters of their
// own (named as the factors' layers, "fc/first", "fc/second"). The op that read W (linear(x, W, b), or mm,
// matmul or addmm on t(W)) reads F₂ and x·F₁ᵀ instead. Restoring gives it back its inputs and drops F₁ and F₂.
// Other decomposed layers train their factors through their product (compress/compressor.h).
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

  /// Whether `layer` can compute through its factors: low-rank, a linear layer whose weight one op reads and
  /// nothing else (linear, or mm, matmul or addmm on its transpose).
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
