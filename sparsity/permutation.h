// Channel permutation search for N:M sparsity (as NVIDIA ASP does): which input channels share an N:M group
// decides how much magnitude the mask can keep. Permuting the reduction dimension's channels before forming
// groups of M, and undoing it after, keeps more of the weight at the same N:M pattern. The permutation is
// stored with the Encoding; a deployment either folds it into the producer of the layer's input (permuting
// that layer's output channels) or gathers the input channels once.
//
// Search: a deterministic local search over swaps of two channels in different groups. Each pass visits
// every group and, for a window of partner groups, applies the best of the M·M swaps when it raises the kept
// magnitude; passes repeat until none improves (or `max_passes`).
#pragma once

#include <ATen/core/Tensor.h>

#include "sparsity/nm.h"

namespace adze {

struct PermutationSearch {
  int max_passes = 20;
  int window = 16;  ///< partner groups visited per group and pass
};

struct ChannelPermutation {
  at::Tensor order;        ///< int64 [K]: group slot k holds original channel order[k]
  double kept_before = 0;  ///< Σ|w| the N:M mask keeps without permuting
  double kept_after = 0;   ///< ... with `order`
  int passes = 0;
};

/// `magnitude` is float [R, K]: |w| with the permutable channels as columns (for a convolution, every
/// output channel and kernel position is a row). K must be a multiple of M.
ChannelPermutation search_channel_permutation(const at::Tensor& magnitude, NMPattern pattern,
                                              const PermutationSearch& options = {});

/// Σ over rows and groups of the N largest values per group, for channels taken in `order` (undefined: 0..K-1).
double nm_kept_magnitude(const at::Tensor& magnitude, NMPattern pattern, const at::Tensor& order = {});

}  // namespace adze
