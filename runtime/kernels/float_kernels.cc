// float_kernels(Isa): the table of the instruction set asked for. Each table is defined in its own translation
// unit, compiled with that set's flags (float_kernels_{scalar,avx2,avx512}.cc).
#include "runtime/kernels/float_kernels.h"

namespace adze {
namespace runtime {

const FloatKernels& scalar_float_kernels();
const FloatKernels& avx2_float_kernels();
const FloatKernels& avx512_float_kernels();

const FloatKernels& float_kernels(Isa isa) {
  return by_isa(isa, scalar_float_kernels, avx2_float_kernels, avx512_float_kernels)();
}

}  // namespace runtime
}  // namespace adze
