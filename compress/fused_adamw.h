// AdamW whose step is one pass over each parameter: it reads the parameter, its gradient and both moments once
// and writes the parameter and the moments once, where libtorch's AdamW makes eight passes and two temporary
// tensors. Fine-tuning takes a step per batch, and on a data-parallel rank the step is work every rank repeats.
//
// The update is libtorch's (torch/csrc/api/src/optim/adamw.cpp), operation for operation in float32:
//   p ← p·(1 − lr·wd);  m ← m·β1 + (1 − β1)·g;  v ← v·β2 + (1 − β2)·g·g;
//   p ← p − (lr / (1 − β1^t)) · m / (√v / √(1 − β2^t) + ε)
// each operation rounded once (compiled with -ffp-contract=off, so every instruction set gives the same bits;
// libtorch's vector kernels fuse some multiply-adds, so the two differ in the last bits). The state is
// libtorch's AdamWParamState under libtorch's keys, so state_dict() and load_state_dict() work unchanged.
// Where a step cannot be fused (amsgrad, or a parameter with a gradient that is not contiguous float32), the
// whole step is libtorch's own.
#pragma once

#include <torch/optim/adamw.h>

namespace adze {

class FusedAdamW : public torch::optim::AdamW {
 public:
  using torch::optim::AdamW::AdamW;
  torch::Tensor step(LossClosure closure = nullptr) override;

 private:
  bool fusable() const;
};

}  // namespace adze
