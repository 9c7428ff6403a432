// Evaluation: top-1 accuracy, cross-entropy, perplexity and bits per character over a Dataset.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <functional>
#include <nlohmann/json_fwd.hpp>
#include <vector>

#include "data/dataset.h"

namespace adze {

class Model;

struct Metrics {
  Task task = Task::kClassification;
  int64_t samples = 0;           ///< images or windows
  int64_t predictions = 0;       ///< images, or tokens for language models
  double top1 = 0;               ///< fraction of predictions whose argmax is the target
  double cross_entropy = 0;      ///< mean negative log-likelihood, nats per prediction
  double perplexity() const;     ///< exp(cross_entropy)
  double bits_per_char() const;  ///< cross_entropy / ln 2 (language models)
};

/// {"task","samples","top1","cross_entropy","perplexity"[, "bits_per_char"]}.
nlohmann::json to_json(const Metrics& metrics);

struct EvalOptions {
  int64_t batch_size = 256;
  bool progress = false;
  std::vector<uint8_t>* outcomes = nullptr;  ///< when set, receives per prediction 1 (right) or 0, in order
};

using ForwardFn = std::function<at::Tensor(const at::Tensor&)>;

/// Runs `forward` over the dataset without gradients. Throws Error(kInvalidArgument) when the output does not
/// fit the targets ([N, C] logits for classification, [N, T, V] for language models), naming both shapes.
Metrics evaluate(const ForwardFn& forward, const Dataset& data, const EvalOptions& options);
Metrics evaluate(const Model& model, const Dataset& data, const EvalOptions& options);

/// The training loss of a task: mean cross-entropy of logits [N, C] (or [N, T, V]) against targets [N] (or
/// [N, T]); differentiable.
at::Tensor task_loss(const at::Tensor& logits, const at::Tensor& targets);

/// Entropy in bits of the token distribution of a 1-D stream (the unigram baseline for bits per character).
double unigram_entropy_bits(const at::Tensor& stream);

}  // namespace adze
