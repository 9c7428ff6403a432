// The hot loop of the MSE scale search (uniform.cc): the squared error of quantizing a row with one candidate
// scale, which the search evaluates 36 times per row, at every step of STE fine-tuning. One table of plain
// functions per instruction set (core/isa.h), each in a translation unit compiled with that set's flags and
// -ffp-contract=off, from one body (squared_error_body.inc) in plain C++ that the compiler vectorises.
//
// Every instruction set gives the same bits. The sum runs in blocks of 256 values; within a block, sixteen
// float partial sums (value j of each group of sixteen goes to sum j, in order), then the sixteen added in a
// fixed tree, and the blocks summed in double. Sixteen explicit sums are one AVX-512 vector, two AVX2 vectors
// or four SSE2 vectors, so no path reorders an addition.
#pragma once

#include <cstdint>

#include "core/isa.h"

namespace adze {

/// The quantization of one row with one scale: v → clamp(round_half_even(v·inv), lo, hi)·scale, where lo and hi
/// are the codes' range less the zero point (so the zero point cancels out of the error).
struct RowQuantization {
  float scale, inv, lo, hi;
};

/// Σ (q(v) − v)² over the n values of a row, v = x[k] (times keep[k] ∈ {0, 1} where keep is not null: a pruned
/// weight counts as 0), summed as the header says.
double row_squared_error(const float* x, const uint8_t* keep, int64_t n, const RowQuantization& q,
                         Isa isa = active_isa());

/// The most quantizations row_squared_errors() takes in one pass.
constexpr int kMaxQuantizationsPerPass = 4;

/// errors[c] = row_squared_error(x, keep, n, q[c]) for c < count ≤ kMaxQuantizationsPerPass, the same bits, in
/// one pass over the row: the candidates' sums are independent, so a core overlaps them (the MSE search's 36
/// candidates take 9 passes, not 36).
void row_squared_errors(const float* x, const uint8_t* keep, int64_t n, const RowQuantization* q, int count,
                        double* errors, Isa isa = active_isa());

struct SquaredErrorKernels {
  void (*rows)(const float* x, const uint8_t* keep, int64_t n, const RowQuantization* q, int count, double* errors);
};
const SquaredErrorKernels& scalar_squared_error_kernels();
const SquaredErrorKernels& avx2_squared_error_kernels();
const SquaredErrorKernels& avx512_squared_error_kernels();

}  // namespace adze
