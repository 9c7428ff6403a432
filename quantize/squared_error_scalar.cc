// squared_error.h's kernel for the baseline instruction set (SSE2 on x86-64): squared_error_body.inc, compiled with
// this unit's flags (quantize/CMakeLists.txt).
#include "quantize/squared_error.h"

namespace adze {
namespace {

#include "quantize/squared_error_body.inc"

}  // namespace

const SquaredErrorKernels& scalar_squared_error_kernels() {
  static const SquaredErrorKernels k{rows};
  return k;
}

}  // namespace adze
