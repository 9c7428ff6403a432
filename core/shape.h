// Tensor shapes as users write them on the command line: "1x3x224x224".
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace adze {

using Shape = std::vector<int64_t>;

/// The most elements a parsed shape may hold (2^30: 4 GiB as float32).
constexpr int64_t kMaxShapeElements = int64_t{1} << 30;

/// Parses "1x3x224x224" (also accepts ',' as separator). Every dimension must be a positive integer below
/// 2^31, at most 8 of them, holding at most kMaxShapeElements; throws Error(kInvalidArgument) naming the
/// offending part otherwise, before anything of that size is allocated. `what` names the flag.
Shape parse_shape(const std::string& text, const std::string& what = "--input-shape");

/// "1x3x224x224".
std::string shape_to_string(const Shape& shape);

/// Product of the dimensions (1 for an empty shape).
int64_t shape_numel(const Shape& shape);

}  // namespace adze
