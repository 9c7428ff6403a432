#include "quantize/squared_error.h"

namespace adze {

double row_squared_error(const float* x, const uint8_t* keep, int64_t n, const RowQuantization& q, Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return avx512_squared_error_kernels().row(x, keep, n, q);
    case Isa::kAvx2:
      return avx2_squared_error_kernels().row(x, keep, n, q);
    case Isa::kScalar:
      break;
  }
  return scalar_squared_error_kernels().row(x, keep, n, q);
}

}  // namespace adze
