#include "quantize/squared_error.h"

namespace adze {

double row_squared_error(const float* x, const uint8_t* keep, int64_t n, const RowQuantization& q, Isa isa) {
  return by_isa(isa, scalar_squared_error_kernels, avx2_squared_error_kernels, avx512_squared_error_kernels)().row(
      x, keep, n, q);
}

}  // namespace adze
