// Building and running a c-header export on the host: the real C compiler (cc, or $CC) with
// -std=c99 -Wall -Wextra -Werror, then the program on samples fed through a pipe. Used by verify and the tests.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace adze {
namespace c_header {

/// Compiles DIR's adze_host_main.c and adze_mcu.c into DIR_BUILD/model (a temporary directory of its own);
/// Error(kIo) with the compiler's output when it fails. Returns the outputs [N, output size] for x [N, ...].
at::Tensor compile_and_run(const std::string& dir, const at::Tensor& x);

}  // namespace c_header
}  // namespace adze
