// adze::Error: the one exception type library code throws.
//
// A kind says who is at fault (the user's input or adze), the message names what failed and where, in the
// shape "failed to <verb> <object> '<name>': <constraint>". Only cli/ turns an Error into an exit code:
// user-caused kinds give 2, internal ones 1.
#pragma once

#include <stdexcept>
#include <string>

namespace adze {

enum class ErrorKind {
  kInvalidArgument,  ///< a flag, shape or value the user passed is wrong
  kInvalidConfig,    ///< a config file (plan, pipeline, target) is wrong
  kUnsupported,      ///< valid input that adze cannot handle (an op, a pattern)
  kIo,               ///< a file is missing, unreadable, truncated or of the wrong type
  kInternal,         ///< a bug in adze
};

/// Name of a kind, as printed in messages and JSON ("invalid-argument", ...).
const char* to_string(ErrorKind kind);

class Error : public std::runtime_error {
 public:
  Error(ErrorKind kind, const std::string& message) : std::runtime_error(message), kind_(kind) {}
  ErrorKind kind() const { return kind_; }
  /// True when the user's input caused it (exit code 2), false for internal errors (exit code 1).
  bool is_user_error() const { return kind_ != ErrorKind::kInternal; }

 private:
  ErrorKind kind_;
};

/// First line of an exception message from libtorch, without its C++ stack trace ("Exception raised from").
std::string first_line_of(const std::exception& e);

}  // namespace adze
