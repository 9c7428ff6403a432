// Learning-rate schedules shared by adze's fine-tuning passes and the reference models' training.
#pragma once

#include <cmath>

namespace adze {

/// The factor of the peak learning rate at `progress` in [0, 1] of a cosine decay that ends at `floor` of the
/// peak: 1 at the start, `floor` at the end.
inline double cosine_decay(double progress, double floor = 0.05) {
  return floor + (1.0 - floor) * 0.5 * (1.0 + std::cos(M_PI * progress));
}

}  // namespace adze
