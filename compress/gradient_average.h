// Data-parallel gradient averaging that starts during the backward pass, as DistributedDataParallel's reducer
// does: the trained parameters are grouped into buckets of about kBucketBytes, and a bucket's all-reduce
// (GradientSync::start_average) begins as soon as backward has accumulated the gradient of every parameter in
// it. The ranks then exchange the last layers' gradients while the first layers' are still being computed, and
// while the caller does its other work (the next batch's teacher outputs); finish() waits and writes the means
// back.
//
// The first step's buckets follow reverse parameter order, and all are sent by finish(). After it they are
// planned again, as the reducer rebuilds its buckets: in the order in which backward gave the parameters their
// gradients, the parameters it gave none (scales trained outside backward, unused branches) last. Buckets are
// sent strictly in order, so every rank issues the same collectives in the same order. A parameter without a
// gradient by finish() is sent as it stands (zeros where it has none). The averages are the same numbers as one
// all-reduce of every gradient: a bucket is a contiguous copy of its gradients, and a sum over ranks is element
// by element.
#pragma once

#include <ATen/core/Tensor.h>

#include <cstdint>
#include <memory>
#include <vector>

#include "compress/gradient_sync.h"

namespace adze {

class GradientAverage {
 public:
  /// A bucket closes once it holds at least this many bytes (DistributedDataParallel's first bucket).
  static constexpr int64_t kBucketBytes = int64_t{1} << 20;

  /// Hooks the gradient accumulator of every parameter (leaf tensors that require grad), in the order given.
  GradientAverage(std::vector<at::Tensor> params, GradientSync& sync, int64_t bucket_bytes = kBucketBytes);
  ~GradientAverage();
  GradientAverage(const GradientAverage&) = delete;
  GradientAverage& operator=(const GradientAverage&) = delete;

  /// Before a backward pass: from now until finish(), a bucket is sent once backward completes it.
  void begin();
  /// Sends the buckets backward did not complete, waits for every average, and writes each mean into its
  /// parameter's gradient (a parameter without a gradient keeps none). Outside begin()…finish() the hooks do
  /// nothing, so other backward passes (a decomposed layer's factors) are left alone.
  void finish();

  /// How many buckets the parameters fill.
  int buckets() const;

  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace adze
