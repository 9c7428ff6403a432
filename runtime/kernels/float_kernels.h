// Float kernels the packed runtime runs instead of ATen's operators, for the shapes of single-sample inference
// where ATen's per-call overhead (dispatch, TensorIterator, parallel_for) costs more than the arithmetic: one
// table of plain functions per instruction set, as row_kernels.h, each in a translation unit compiled with
// that set's flags and sharing no inline library code with the others. The scalar table is plain loops over
// libm (float_kernels_scalar.cc). AVX2's and AVX-512's are one body (float_kernels_body.inc) written against a
// few vector operations that each unit defines with its intrinsics: exp and erf approximated in registers, a
// row's last partial vector read and written under a mask, no scalar tails. No allocation, no threads.
//
// Every function takes contiguous float arrays; the output may be the input (in place) where said. Results
// match ATen's operators up to float rounding (float_kernels_test.cc bounds the difference against double
// references), special values included but for gelu(−∞): 0 here, NaN (−∞·0) in ATen.
#pragma once

#include <cstdint>

#include "core/isa.h"

namespace adze {
namespace runtime {

struct FloatKernels {
  /// y = x·Φ(x) over n values, the erf form (ATen's gelu with approximate="none"); y may be x. Within
  /// 3e-7·(1 + |x|) of the exact value, as gelu_tanh.
  void (*gelu)(const float* x, float* y, int64_t n);
  /// The tanh form (approximate="tanh"): 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³))); y may be x.
  void (*gelu_tanh)(const float* x, float* y, int64_t n);
  /// Softmax of each of `rows` rows of n values (max subtracted first, as ATen: −∞ entries give 0, and a row
  /// with +∞ or NaN, or only −∞, is NaN); y may be x.
  void (*softmax)(const float* x, float* y, int64_t rows, int64_t n);
  /// In place, `rows` rows ld apart: row i's softmax over its first n[i] values (n[i] ≥ 1), and its values from
  /// n[i] to `width` set to 0 (attention's rows under a causal mask). The same values as softmax of each prefix.
  void (*softmax_prefixes)(float* x, int64_t ld, int64_t rows, const int64_t* n, int64_t width);
  /// Layer norm of each of `rows` rows of n values: (x − mean)/√(var + eps)·gamma + beta, with the biased
  /// variance as ATen; gamma and beta [n] may be null; y may be x.
  void (*layer_norm)(const float* x, float* y, int64_t rows, int64_t n, const float* gamma, const float* beta,
                     float eps);
  /// C [m, n] (rows ldc apart) = alpha·A·B for small strided operands: A(i, p) = a[i·a_rs + p·a_cs],
  /// B(p, j) = b[p·b_rs + j·b_cs], so transposed views (attention's q·kᵀ) need no copy; any strides (0 for a
  /// broadcast operand). C must not overlap them. Fastest with B's rows contiguous (b_cs = 1); other layouts
  /// pack B's columns into a panel on the stack first (up to k = 128), or take dot products.
  void (*matmul)(const float* a, int64_t a_rs, int64_t a_cs, const float* b, int64_t b_rs, int64_t b_cs, float* c,
                 int64_t ldc, int64_t m, int64_t n, int64_t k, float alpha);
  /// y = a + alpha·b over n values; y may be a or b. Exactly a + alpha·b rounded once wherever alpha·b is exact
  /// (alpha = ±1 or a power of 2), the same on every instruction set; otherwise rounded once or twice.
  void (*add)(const float* a, const float* b, float alpha, float* y, int64_t n);
  /// y = x clamped to [lo, hi] over n values, NaN kept (ReLU, ReLU6, hardtanh); y may be x.
  void (*clamp)(const float* x, float* y, int64_t n, float lo, float hi);
  /// y = a + b clamped to [lo, hi] over n values: add (alpha 1) and then clamp in one pass (a residual add fused
  /// into a product's outputs, with its ReLU); y may be a or b.
  void (*add_clamp)(const float* a, const float* b, float* y, int64_t n, float lo, float hi);
  /// y = the element-wise maximum of `count` (≥ 1) arrays of n values (a max pool's window of channel vectors,
  /// channels last), NaN where any of them is NaN, as ATen's max_pool2d. y may not overlap them.
  void (*max_of)(const float* const* x, int64_t count, float* y, int64_t n);
};

/// The table of an instruction set (active_isa() in production; the tests pass each runnable one).
const FloatKernels& float_kernels(Isa isa);

}  // namespace runtime
}  // namespace adze
