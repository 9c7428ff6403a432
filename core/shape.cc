#include "core/shape.h"

#include <cstdio>

#include "core/error.h"

namespace adze {
namespace {

std::string short_number(double v) {
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3g", v);
  return buf;
}

}  // namespace

Shape parse_shape(const std::string& text, const std::string& what) {
  auto fail = [&](const std::string& why) {
    throw Error(ErrorKind::kInvalidArgument,
                "failed to parse " + what + " '" + text + "': " + why + " (expected e.g. 1x3x224x224)");
  };
  if (text.empty()) fail("it is empty");
  Shape shape;
  std::size_t start = 0;
  while (true) {
    std::size_t end = text.find_first_of("x,", start);
    if (end == std::string::npos) end = text.size();
    const std::string part = text.substr(start, end - start);
    if (part.empty()) fail("dimension " + std::to_string(shape.size() + 1) + " is empty");
    int64_t value = 0;
    for (char c : part) {
      if (c < '0' || c > '9') fail("dimension '" + part + "' is not a positive integer");
      value = value * 10 + (c - '0');
      if (value >= (int64_t{1} << 31)) fail("dimension '" + part + "' is too large");
    }
    if (value == 0) fail("dimension " + std::to_string(shape.size() + 1) + " is zero");
    shape.push_back(value);
    if (shape.size() > 8) fail("more than 8 dimensions");
    if (end == text.size()) break;
    start = end + 1;
  }
  // Refused before anything is allocated: an input this large is a typo, and the model's activations would be
  // larger still.
  double elements = 1;
  for (int64_t d : shape) elements *= static_cast<double>(d);
  if (elements > static_cast<double>(kMaxShapeElements))
    fail("it holds " + short_number(elements) + " elements (" + short_number(elements * 4) +
         " bytes as float32), more than the " + short_number(static_cast<double>(kMaxShapeElements)) +
         " an input may hold");
  return shape;
}

std::string shape_to_string(const Shape& shape) {
  std::string s;
  for (std::size_t i = 0; i < shape.size(); ++i) s += (i ? "x" : "") + std::to_string(shape[i]);
  return s;
}

int64_t shape_numel(const Shape& shape) {
  int64_t n = 1;
  for (auto d : shape) n *= d;
  return n;
}

}  // namespace adze
