// Tensor shapes as users write them on the command line: "1x3x224x224".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace adze {

using Shape = std::vector<int64_t>;

/// Parses "1x3x224x224" (also accepts ',' as separator). Every dimension must be a positive integer below
/// 2^31; throws Error(kInvalidArgument) naming the offending part otherwise. `what` names the flag.
Shape parse_shape(const std::string& text, const std::string& what = "--input-shape");

/// "1x3x224x224".
std::string shape_to_string(const Shape& shape);

/// Product of the dimensions (1 for an empty shape).
int64_t shape_numel(const Shape& shape);

}  // namespace adze
