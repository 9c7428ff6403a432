// Data-parallel fine-tuning: ranks that each train a copy of the model on their share of every batch and
// average their gradients after each backward pass, as DistributedDataParallel does. The finetune.* passes
// take one through CompressionContext::sync; distributed/gloo_sync.h makes one over a c10d Gloo process group.
#pragma once

#include <ATen/core/Tensor.h>

#include <vector>

namespace adze {

class GradientSync {
 public:
  virtual ~GradientSync() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Replaces every tensor, on every rank, with its mean over the ranks (in place). Each rank passes tensors of
  /// the same shapes in the same order.
  virtual void average(std::vector<at::Tensor>& tensors) = 0;
};

}  // namespace adze
