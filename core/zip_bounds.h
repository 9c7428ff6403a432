// The bounds of a zip archive (the container of torch.save and TorchScript files), checked before libtorch
// reads it from memory: libtorch 1.13's in-memory reader (torch::pickle_load) follows the archive's offsets
// without checking them against the buffer, so a damaged file would be read out of bounds. Found by fuzzing
// (tests/fuzz/fuzz_tensors.cc).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace adze {

/// An archive member: its name and where its (stored) data lies in the archive.
struct ZipEntry {
  std::string name;
  uint64_t offset = 0, size = 0;
  uint32_t method = 0;  ///< 0: stored, 8: deflated
  uint32_t crc = 0;     ///< of the uncompressed data, as the directory gives it
};

/// Every check names the file as `what` and what it is not as `format` ("torch.save file", or a TorchScript
/// file: the same container holding a module).
///
/// Walks the end-of-central-directory record (zip64 too), the central directory and each entry's local header,
/// and checks that every offset and size lies inside `bytes`, and that a stored entry's two sizes agree. Error(kIo)
/// "failed to read <what>: not a <format> (a damaged zip archive: <why>)" otherwise. Returns the members.
std::vector<ZipEntry> check_zip_bounds(std::string_view bytes, const std::string& what,
                                       const std::string& format = "torch.save file");

/// Walks a pickle stream (protocol 2, as torch.save writes it) opcode by opcode and checks that every
/// length-prefixed argument fits in what is left: libtorch 1.13's unpickler reserves a string of the length a
/// file claims before it reads it, so 20 bytes could ask for 4 GB (found by fuzzing). Stops at an opcode it
/// does not know, where the unpickler stops too. Error(kIo) as check_zip_bounds says.
void check_pickle_bounds(const char* data, uint64_t size, const std::string& what,
                         const std::string& format = "torch.save file");

/// What libtorch 1.13's archive reader checks as it opens, checked first: a member in a folder (the archive's
/// name), and a stored `version` record (at <archive>/version or <archive>/.data/version, matched without
/// regard to case as miniz does) of the right CRC whose number is one it reads (1..10). libtorch throws from its
/// reader's constructor on any of these and leaks the zip state it had opened (found by fuzzing: four
/// allocations a file). Error(kIo) "failed to read <what>: not a <format> (<why>)" otherwise.
void check_torch_save_records(std::string_view bytes, const std::vector<ZipEntry>& members, const std::string& what,
                              const std::string& format = "torch.save file");

/// check_zip_bounds, check_torch_save_records, then check_pickle_bounds on every member that holds a pickle
/// (*.pkl): what to run on a torch.save file before torch::pickle_load reads it from memory.
void check_torch_save_bounds(std::string_view bytes, const std::string& what,
                             const std::string& format = "torch.save file");

/// check_torch_save_bounds on the file at `path`, mapped: what to run before torch::jit::load opens a
/// TorchScript file, whose reader shares the unpickler's faults. Error(kIo) also where the file cannot be opened.
void check_torch_save_file(const std::string& path, const std::string& what,
                           const std::string& format = "torch.save file");

}  // namespace adze
