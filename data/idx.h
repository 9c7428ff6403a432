// IDX files (the MNIST family's format), optionally gzipped.
#pragma once

#include <ATen/core/Tensor.h>

#include <string>

namespace adze {

/// Reads an IDX file of unsigned bytes (type 0x08) into a uint8 tensor of its declared shape. Throws
/// Error(kIo) naming the file for a bad magic number, a wrong element type, or a truncated payload.
at::Tensor read_idx_file(const std::string& path);

}  // namespace adze
