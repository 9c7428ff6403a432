// How far an exported model's outputs lie from the simulation's: sums accumulated in double over batches, so
// that the figures do not depend on the outputs' scale (tiny logits of a randomly initialised network give a
// cosine of exactly 1 when they are equal).
#pragma once

#include <ATen/core/Tensor.h>

namespace adze {

struct Agreement {
  double signal = 0;           ///< Σ simulated²
  double noise = 0;            ///< Σ (exported − simulated)²
  double dot = 0;              ///< Σ exported · simulated
  double exported_energy = 0;  ///< Σ exported²
  double max_abs = 0;          ///< max |exported − simulated|
  /// Adds a batch (same shape).
  void add(const at::Tensor& simulated, const at::Tensor& exported);
  /// 10·log10(signal / noise); +∞ when exact.
  double sqnr_db() const;
  /// dot / (√signal · √exported_energy) in [−1, 1]: 1 for identical outputs at any scale; two zero outputs give
  /// 1, one zero output 0.
  double cosine() const;
};

}  // namespace adze
