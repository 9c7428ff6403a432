#include "quantize/squared_error.h"

#include <algorithm>

namespace adze {

double row_squared_error(const float* x, const uint8_t* keep, int64_t n, const RowQuantization& q, Isa isa) {
  double error = 0;
  row_squared_errors(x, keep, n, &q, 1, &error, isa);
  return error;
}

void row_squared_errors(const float* x, const uint8_t* keep, int64_t n, const RowQuantization* q, int count,
                        double* errors, Isa isa) {
  const auto& kernels =
      by_isa(isa, scalar_squared_error_kernels, avx2_squared_error_kernels, avx512_squared_error_kernels)();
  for (int done = 0; done < count; done += kMaxQuantizationsPerPass)
    kernels.rows(x, keep, n, q + done, std::min(count - done, kMaxQuantizationsPerPass), errors + done);
}

}  // namespace adze
