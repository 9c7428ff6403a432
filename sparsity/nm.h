// N:M structured sparsity: in every group of M consecutive weights along the reduction dimension, at most N
// are non-zero. The projection keeps exactly the N largest magnitudes of each group (ties go to the lower
// index), which is what sparse tensor cores (2:4) and flexible N:M accelerators execute.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace adze {

struct NMPattern {
  int n = 0;
  int m = 0;  ///< 0: no N:M constraint
  bool enabled() const { return m > 0; }
  /// "2:4", or "none".
  std::string to_string() const;
  /// Parses "2:4" (and "none"); requires 0 < N < M <= 16. Throws Error(kInvalidConfig) naming `where`.
  static NMPattern parse(const std::string& text, const std::string& where = "nm");
  bool operator==(const NMPattern& o) const { return n == o.n && m == o.m; }
};

/// Keep-mask (bool, shape of `rows`) of a 2-D float matrix [R, K] whose rows are cut into groups of M
/// consecutive elements; K must be a multiple of M. A plain O(M^2)-per-group loop over contiguous memory:
/// faster than a sort for M <= 16, and exactly "the N largest, lower index first on ties".
at::Tensor nm_mask_rows(const at::Tensor& rows, NMPattern pattern);

/// True when every group of M along the last dimension of `rows` has at most N non-zeros.
bool satisfies_nm(const at::Tensor& rows, NMPattern pattern);

}  // namespace adze
