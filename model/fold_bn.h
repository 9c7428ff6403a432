// fold-bn: folds an inference-mode BatchNorm into the convolution or linear layer that feeds it.
//
//   y = γ (W x + b − μ) / sqrt(σ² + ε) + β   ==   W' x + b',   W' = W · s,  b' = (b − μ) · s + β,  s = γ / sqrt(σ² + ε)
//
// Applies where the conv/linear output has no other use and its weight (and bias) are parameters used only
// there; other BatchNorms are left alone. Analyse-then-transform: each fold computes the new tensors first
// and edits the graph only when nothing can fail. The BatchNorm's parameters and statistics leave the model.
#pragma once

#include <string>
#include <vector>

namespace adze {

class Model;

struct FoldBnResult {
  std::vector<std::string> folded;  ///< "features.0 <- features.1" per fold
  int skipped = 0;                  ///< BatchNorms that could not be folded
};

FoldBnResult fold_batch_norm(Model& model);

}  // namespace adze
