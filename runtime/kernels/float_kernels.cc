// float_kernels(Isa): the table of the instruction set asked for. Each table is defined in its own translation
// unit, compiled with that set's flags (float_kernels_{scalar,avx2,avx512}.cc).
#include "runtime/kernels/float_kernels.h"

namespace adze {
namespace runtime {

const FloatKernels& scalar_float_kernels();
const FloatKernels& avx2_float_kernels();
const FloatKernels& avx512_float_kernels();

const FloatKernels& float_kernels(Isa isa) {
  switch (isa) {
    case Isa::kAvx512:
      return avx512_float_kernels();
    case Isa::kAvx2:
      return avx2_float_kernels();
    case Isa::kScalar:
      break;
  }
  return scalar_float_kernels();
}

}  // namespace runtime
}  // namespace adze
