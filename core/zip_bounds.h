// The bounds of a zip archive (the container of torch.save and TorchScript files), checked before libtorch
// reads it from memory: libtorch 1.13's in-memory reader (torch::pickle_load) follows the archive's offsets
// without checking them against the buffer, so a damaged file would be read out of bounds. Found by fuzzing
// (tests/fuzz/fuzz_tensors.cc).
#pragma once

#include <string>
#include <vector>

namespace adze {

/// Walks the end-of-central-directory record (zip64 too), the central directory and each entry's local header,
/// and checks that every offset and size lies inside `bytes`. Error(kIo) "failed to read <what>: not a torch.save
/// file (a damaged zip archive: <why>)" otherwise.
void check_zip_bounds(const std::vector<char>& bytes, const std::string& what);

}  // namespace adze
