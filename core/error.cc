#include "core/error.h"

namespace adze {

const char* to_string(ErrorKind kind) {
  switch (kind) {
    case ErrorKind::kInvalidArgument:
      return "invalid-argument";
    case ErrorKind::kInvalidConfig:
      return "invalid-config";
    case ErrorKind::kUnsupported:
      return "unsupported";
    case ErrorKind::kIo:
      return "io";
    case ErrorKind::kInternal:
      return "internal";
  }
  return "internal";
}

std::string first_line_of(const std::exception& e) {
  std::string text = e.what();
  // libtorch messages often start with an empty line or a TorchScript traceback; take the last line that
  // carries the actual error ("RuntimeError: ..."), else the first non-empty one.
  std::string best;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t end = text.find('\n', start);
    if (end == std::string::npos) end = text.size();
    std::string line = text.substr(start, end - start);
    if (line.rfind("Exception raised from", 0) == 0) break;
    if (line.rfind("RuntimeError: ", 0) == 0) return line.substr(14);
    if (best.empty() && line.find_first_not_of(" \t") != std::string::npos) best = line;
    start = end + 1;
  }
  return best.empty() ? text : best;
}

}  // namespace adze
