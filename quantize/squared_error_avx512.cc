// squared_error.h's kernel for avx512: squared_error_body.inc, compiled with this
// unit's flags (quantize/CMakeLists.txt).
#include "quantize/squared_error.h"

namespace adze {
namespace {

#include "quantize/squared_error_body.inc"

}  // namespace

const SquaredErrorKernels& avx512_squared_error_kernels() {
  static const SquaredErrorKernels k{rows};
  return k;
}

}  // namespace adze
