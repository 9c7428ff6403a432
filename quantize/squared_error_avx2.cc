// squared_error.h's kernel for avx2: squared_error_body.inc, compiled with this
// unit's flags (quantize/CMakeLists.txt).
#include "quantize/squared_error.h"

namespace adze {
namespace {

#include "quantize/squared_error_body.inc"

}  // namespace

const SquaredErrorKernels& avx2_squared_error_kernels() {
  static const SquaredErrorKernels k{rows};
  return k;
}

}  // namespace adze
