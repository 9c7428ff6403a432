// The safetensors container, which the packed format uses (FORMAT.md): an 8-byte little-endian header length,
// a JSON header naming every tensor's dtype, shape and byte range, then the raw little-endian tensor bytes.
// Standard safetensors readers open adze's files; adze's reader checks everything a corrupted or truncated file
// can get wrong and maps the file instead of reading it.
#pragma once

#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <vector>

namespace adze {
namespace packed {

/// A tensor to write: raw little-endian bytes, dtype in safetensors' spelling ("U8", "I32", "I64", "F32").
struct RawTensor {
  std::string name;
  std::string dtype;
  std::vector<int64_t> shape;
  std::string bytes;
};

/// A tensor inside an open file: its bytes stay in the mapping.
struct TensorSpan {
  std::string dtype;
  std::vector<int64_t> shape;
  const uint8_t* data = nullptr;
  int64_t bytes = 0;
};

/// CRC-32 (zlib's) of `bytes` bytes, continuing from `crc` (0 to start).
uint32_t crc32_of(const void* data, int64_t bytes, uint32_t crc = 0);

/// Eight lowercase hex digits.
std::string hex32(uint32_t value);

/// Bytes per element of a safetensors dtype, or 0 for one adze does not know.
int dtype_size(const std::string& dtype);

/// The tensors in the order their bytes follow each other in the data section: widest element first (8-byte,
/// 4-byte, then bytes), each width in the given order.
std::vector<const RawTensor*> data_order(const std::vector<RawTensor>& tensors);

/// Writes the file atomically. Tensors are laid out in data_order(), and the header is padded with spaces so that the
/// data starts at a multiple of 64 bytes: every tensor is then aligned to its element size in a mapping. Equal inputs
/// give equal bytes.
void write_safetensors(const std::string& path, const std::map<std::string, std::string>& metadata,
                       const std::vector<RawTensor>& tensors);

/// A file opened read-only by mmap. Every check runs in open(): Error(kIo) naming the file and what is wrong.
class SafetensorsFile {
 public:
  static std::shared_ptr<const SafetensorsFile> open(const std::string& path);
  ~SafetensorsFile();
  SafetensorsFile(const SafetensorsFile&) = delete;
  SafetensorsFile& operator=(const SafetensorsFile&) = delete;

  const std::string& path() const { return path_; }
  int64_t file_bytes() const { return size_; }
  const std::map<std::string, std::string>& metadata() const { return metadata_; }
  const std::map<std::string, TensorSpan>& tensors() const { return tensors_; }
  /// The data section, for checksums.
  const uint8_t* data() const { return data_; }
  int64_t data_bytes() const { return data_bytes_; }

 private:
  SafetensorsFile() = default;
  std::string path_;
  void* map_ = nullptr;
  int64_t size_ = 0;
  const uint8_t* data_ = nullptr;
  int64_t data_bytes_ = 0;
  std::map<std::string, std::string> metadata_;
  std::map<std::string, TensorSpan> tensors_;
};

}  // namespace packed
}  // namespace adze
