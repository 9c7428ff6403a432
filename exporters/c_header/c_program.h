// Building and running a c-header export on the host: the real C compiler (cc, or $CC) with
// -std=c99 -Wall -Wextra -Werror, then the program on samples fed through a pipe. Used by verify and the tests.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

#include "core/files.h"

namespace adze {
namespace c_header {

/// A c-header export compiled for the host: DIR's adze_host_main.c and adze_mcu.c built into a temporary
/// directory of its own (removed with the object).
class CProgram {
 public:
  /// Compiles; Error(kIo) naming the file for a missing part, or with the compiler's output when it fails.
  explicit CProgram(const std::string& dir);
  ~CProgram();
  CProgram(const CProgram&) = delete;
  CProgram& operator=(const CProgram&) = delete;
  /// Runs the program once on every sample of x [N, ...] (fed through a pipe): the outputs [N, output size].
  at::Tensor run(const at::Tensor& x) const;

 private:
  ScratchDir scratch_{"adze-cc"};  ///< removed with the object, or when the constructor throws
  std::string program_;
};

/// CProgram(dir).run(x).
at::Tensor compile_and_run(const std::string& dir, const at::Tensor& x);

}  // namespace c_header
}  // namespace adze
