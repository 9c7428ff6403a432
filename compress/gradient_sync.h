// Data-parallel fine-tuning: ranks that each train a copy of the model on their share of every batch and
// average their gradients after each backward pass, as DistributedDataParallel does. The finetune.* passes
// take one through CompressionContext::sync; distributed/gloo_sync.h makes one over a c10d Gloo process group.
#pragma once

#include <ATen/core/Tensor.h>

#include <memory>
#include <vector>

namespace adze {

/// An average under way (GradientSync::start_average): wait() returns once the tensors hold the mean.
class PendingAverage {
 public:
  virtual ~PendingAverage() = default;
  virtual void wait() = 0;
};

class GradientSync {
 public:
  virtual ~GradientSync() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  /// Replaces every tensor, on every rank, with its mean over the ranks (in place). Each rank passes tensors of
  /// the same shapes in the same order.
  virtual void average(std::vector<at::Tensor>& tensors) = 0;
  /// Replaces every tensor, on every rank, with its sum over the ranks (in place). Exact where each element is
  /// non-zero on one rank at most: how ranks that each compute a share of a result give it to all.
  virtual void sum(std::vector<at::Tensor>& tensors) = 0;
  /// The average, begun and left to run while the caller does other work (the next batch's teacher outputs):
  /// the tensors are neither read nor written until wait(). By default the average is done before returning.
  virtual std::unique_ptr<PendingAverage> start_average(std::vector<at::Tensor>& tensors) {
    average(tensors);
    struct Done : PendingAverage {
      void wait() override {}
    };
    return std::make_unique<Done>();
  }
};

}  // namespace adze
