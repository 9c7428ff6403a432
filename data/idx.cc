#include "data/idx.h"

#include <torch/torch.h>
#include <zlib.h>

#include "core/error.h"
#include "core/files.h"

namespace adze {
namespace {

class GzReader {
 public:
  explicit GzReader(const std::string& path) : path_(path), file_(gzopen(path.c_str(), "rb")) {
    if (!file_) throw Error(ErrorKind::kIo, "failed to open IDX file '" + path + "'");
  }
  ~GzReader() { gzclose(file_); }
  GzReader(const GzReader&) = delete;
  GzReader& operator=(const GzReader&) = delete;

  // Reads up to n bytes; fewer only at the end of the file.
  std::size_t read_upto(void* out, std::size_t n) {
    std::size_t done = 0;
    while (done < n) {
      const unsigned chunk = static_cast<unsigned>(std::min<std::size_t>(n - done, 1u << 30));
      const int got = gzread(file_, static_cast<char*>(out) + done, chunk);
      if (got < 0) {
        int code = 0;
        throw Error(ErrorKind::kIo, "failed to read IDX file '" + path_ + "': " + gzerror(file_, &code));
      }
      if (got == 0) break;
      done += static_cast<std::size_t>(got);
    }
    return done;
  }

  // Reads exactly n bytes or throws, naming what was being read.
  void read(void* out, std::size_t n, const std::string& what) {
    const std::size_t got = read_upto(out, n);
    if (got < n)
      throw Error(ErrorKind::kIo, "failed to read IDX file '" + path_ + "': truncated " + what + " (expected " +
                                      std::to_string(n) + " bytes, found " + std::to_string(got) + ")");
  }

 private:
  std::string path_;
  gzFile file_;
};

uint32_t big_endian(const unsigned char* b) {
  return (uint32_t{b[0]} << 24) | (uint32_t{b[1]} << 16) | (uint32_t{b[2]} << 8) | uint32_t{b[3]};
}

}  // namespace

at::Tensor read_idx_file(const std::string& path) {
  require_readable_file(path, "IDX file");
  GzReader in(path);
  unsigned char magic[4];
  in.read(magic, 4, "header");
  if (magic[0] != 0 || magic[1] != 0)
    throw Error(ErrorKind::kIo, "failed to read IDX file '" + path + "': bad magic number (not an IDX file)");
  if (magic[2] != 0x08)
    throw Error(ErrorKind::kIo, "failed to read IDX file '" + path + "': element type 0x" + std::to_string(magic[2]) +
                                    ", expected 0x08 (unsigned byte)");
  const int dims = magic[3];
  if (dims < 1 || dims > 4)
    throw Error(ErrorKind::kIo,
                "failed to read IDX file '" + path + "': " + std::to_string(dims) + " dimensions, expected 1 to 4");
  std::vector<int64_t> shape;
  int64_t numel = 1;
  for (int d = 0; d < dims; ++d) {
    unsigned char b[4];
    in.read(b, 4, "header");
    const int64_t dim = big_endian(b);
    if (dim == 0 || dim > (int64_t{1} << 31) / numel)
      throw Error(ErrorKind::kIo, "failed to read IDX file '" + path + "': implausible shape (dimension " +
                                      std::to_string(d + 1) + " is " + std::to_string(dim) + ")");
    shape.push_back(dim);
    numel *= dim;
  }
  // Read in chunks, so that a header claiming more data than the file holds fails before a big allocation.
  std::vector<uint8_t> payload;
  const std::size_t total = static_cast<std::size_t>(numel);
  const std::size_t chunk = std::size_t{1} << 22;
  while (payload.size() < total) {
    const std::size_t n = std::min(chunk, total - payload.size());
    const std::size_t done = payload.size();
    payload.resize(done + n);
    const std::size_t got = in.read_upto(payload.data() + done, n);
    if (got < n)
      throw Error(ErrorKind::kIo, "failed to read IDX file '" + path + "': truncated payload (expected " +
                                      std::to_string(total) + " bytes, found " + std::to_string(done + got) + ")");
  }
  return torch::from_blob(payload.data(), shape, torch::kUInt8).clone();
}

}  // namespace adze
