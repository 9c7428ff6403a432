#include "runtime/safetensors.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <nlohmann/json.hpp>

#include "core/error.h"
#include "core/files.h"
#include "core/isa.h"
#include "runtime/crc32_clmul.h"

namespace adze {
namespace packed {
namespace {

constexpr int64_t kDataAlignment = 64;
constexpr int64_t kMaxHeaderBytes = int64_t{100} << 20;  // as safetensors' own reader

void put_u64(std::string& out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

uint64_t get_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

}  // namespace

uint32_t crc32_of(const void* data, int64_t bytes, uint32_t crc) {
  // Carry-less multiplication where the CPU has it, unless ADZE_ISA=scalar forces the portable paths (zlib's).
  static const bool clmul = active_isa() != Isa::kScalar && runtime::crc32_clmul_available();
  if (clmul) return runtime::crc32_clmul(crc, static_cast<const uint8_t*>(data), bytes);
  uLong c = crc;
  const auto* p = static_cast<const Bytef*>(data);
  for (int64_t done = 0; done < bytes;) {
    const auto chunk = static_cast<uInt>(std::min<int64_t>(bytes - done, int64_t{1} << 30));
    c = crc32(c, p + done, chunk);
    done += chunk;
  }
  return static_cast<uint32_t>(c);
}

std::string hex32(uint32_t value) {
  char buf[9];
  std::snprintf(buf, sizeof buf, "%08x", value);
  return buf;
}

int dtype_size(const std::string& dtype) {
  if (dtype == "U8" || dtype == "I8" || dtype == "BOOL") return 1;
  if (dtype == "I16" || dtype == "U16" || dtype == "F16" || dtype == "BF16") return 2;
  if (dtype == "I32" || dtype == "U32" || dtype == "F32") return 4;
  if (dtype == "I64" || dtype == "U64" || dtype == "F64") return 8;
  return 0;
}

std::vector<const RawTensor*> data_order(const std::vector<RawTensor>& tensors) {
  std::vector<const RawTensor*> order;
  for (const auto& t : tensors) order.push_back(&t);
  std::stable_sort(order.begin(), order.end(),
                   [](const RawTensor* a, const RawTensor* b) { return dtype_size(a->dtype) > dtype_size(b->dtype); });
  return order;
}

void write_safetensors(const std::string& path, const std::map<std::string, std::string>& metadata,
                       const std::vector<RawTensor>& tensors) {
  const std::vector<const RawTensor*> order = data_order(tensors);
  nlohmann::ordered_json header;
  header["__metadata__"] = metadata;
  int64_t offset = 0;
  for (const RawTensor* t : order) {
    int64_t numel = 1;
    for (int64_t d : t->shape) numel *= d;
    if (dtype_size(t->dtype) == 0 || numel * dtype_size(t->dtype) != static_cast<int64_t>(t->bytes.size()))
      throw Error(ErrorKind::kInternal, "packed: tensor '" + t->name + "' has " + std::to_string(t->bytes.size()) +
                                            " bytes for its dtype and shape");
    if (header.contains(t->name)) throw Error(ErrorKind::kInternal, "packed: tensor '" + t->name + "' twice");
    const auto end = offset + static_cast<int64_t>(t->bytes.size());
    header[t->name] = {{"dtype", t->dtype}, {"shape", t->shape}, {"data_offsets", {offset, end}}};
    offset = end;
  }
  std::string text = header.dump();
  while ((8 + static_cast<int64_t>(text.size())) % kDataAlignment != 0) text.push_back(' ');
  std::string bytes;
  bytes.reserve(8 + text.size() + static_cast<std::size_t>(offset));
  put_u64(bytes, text.size());
  bytes += text;
  for (const RawTensor* t : order) bytes += t->bytes;
  write_file_atomically(path, bytes);
}

std::shared_ptr<const SafetensorsFile> SafetensorsFile::open(const std::string& path) {
  std::shared_ptr<SafetensorsFile> f(new SafetensorsFile());
  f->path_ = path;
  const std::string where = "packed file '" + path + "'";
  auto bad = [&](const std::string& what) { return Error(ErrorKind::kIo, where + ": " + what); };

  const int fd = ::open(path.c_str(), O_RDONLY);
  if (fd < 0) throw bad(std::string("cannot open: ") + std::strerror(errno));
  struct stat st {};
  if (::fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
    ::close(fd);
    throw bad("not a regular file");
  }
  f->size_ = st.st_size;
  if (f->size_ < 8) {
    ::close(fd);
    throw bad("truncated: " + std::to_string(f->size_) + " bytes, shorter than the 8-byte header length");
  }
  f->map_ = ::mmap(nullptr, static_cast<std::size_t>(f->size_), PROT_READ, MAP_PRIVATE, fd, 0);
  ::close(fd);
  if (f->map_ == MAP_FAILED) {
    f->map_ = nullptr;
    throw bad(std::string("cannot map: ") + std::strerror(errno));
  }
  const auto* base = static_cast<const uint8_t*>(f->map_);
  const uint64_t header_bytes = get_u64(base);
  if (header_bytes > static_cast<uint64_t>(f->size_ - 8))
    throw bad("truncated: the header says " + std::to_string(header_bytes) + " bytes, the file has " +
              std::to_string(f->size_ - 8) + " after the length");
  if (header_bytes > static_cast<uint64_t>(kMaxHeaderBytes))
    throw bad("header of " + std::to_string(header_bytes) + " bytes is too large");
  nlohmann::json header;
  try {
    header = nlohmann::json::parse(base + 8, base + 8 + header_bytes);
  } catch (const nlohmann::json::exception& e) {
    throw bad(std::string("the header is not JSON (") + first_line_of(e) + ")");
  }
  if (!header.is_object()) throw bad("the header is not a JSON object");
  f->data_ = base + 8 + header_bytes;
  f->data_bytes_ = f->size_ - 8 - static_cast<int64_t>(header_bytes);

  struct Range {
    int64_t begin, end;
    std::string name;
  };
  std::vector<Range> ranges;
  for (const auto& [name, entry] : header.items()) {
    if (name == "__metadata__") {
      if (!entry.is_object()) throw bad("__metadata__ is not an object");
      for (const auto& [key, value] : entry.items()) {
        if (!value.is_string()) throw bad("__metadata__ '" + key + "' is not a string");
        f->metadata_[key] = value.get<std::string>();
      }
      continue;
    }
    const std::string t = "tensor '" + name + "'";
    if (!entry.is_object() || !entry.contains("dtype") || !entry.contains("shape") || !entry.contains("data_offsets"))
      throw bad(t + ": expected {dtype, shape, data_offsets}");
    const auto& dtype = entry["dtype"];
    const auto& shape = entry["shape"];
    const auto& offsets = entry["data_offsets"];
    if (!dtype.is_string() || dtype_size(dtype.get<std::string>()) == 0)
      throw bad(t + ": unknown dtype " + dtype.dump());
    if (!shape.is_array()) throw bad(t + ": shape is not a list");
    if (!offsets.is_array() || offsets.size() != 2 || !offsets[0].is_number_unsigned() ||
        !offsets[1].is_number_unsigned())
      throw bad(t + ": data_offsets is not [begin, end]");
    TensorSpan span;
    span.dtype = dtype.get<std::string>();
    const int64_t size = dtype_size(span.dtype);
    int64_t numel = 1;
    for (const auto& d : shape) {
      if (!d.is_number_unsigned() || d.get<uint64_t>() > (uint64_t{1} << 40))
        throw bad(t + ": bad dimension " + d.dump());
      span.shape.push_back(d.get<int64_t>());
      if (numel > 0 && span.shape.back() > std::numeric_limits<int64_t>::max() / size / numel)
        throw bad(t + ": shape too large");
      numel *= span.shape.back();
    }
    const uint64_t begin = offsets[0].get<uint64_t>(), end = offsets[1].get<uint64_t>();
    if (begin > end || end > static_cast<uint64_t>(f->data_bytes_))
      throw bad(t + ": bytes [" + std::to_string(begin) + ", " + std::to_string(end) + ") lie outside the " +
                std::to_string(f->data_bytes_) + " data bytes (truncated?)");
    span.bytes = static_cast<int64_t>(end - begin);
    if (span.bytes != numel * size)
      throw bad(t + ": " + std::to_string(span.bytes) + " bytes do not hold " + std::to_string(numel) + " " +
                span.dtype);
    span.data = f->data_ + begin;
    if (reinterpret_cast<uintptr_t>(span.data) % static_cast<uintptr_t>(size) != 0)
      throw bad(t + ": not aligned to its " + std::to_string(size) + "-byte elements");
    ranges.push_back({static_cast<int64_t>(begin), static_cast<int64_t>(end), name});
    f->tensors_.emplace(name, std::move(span));
  }
  std::sort(ranges.begin(), ranges.end(), [](const Range& a, const Range& b) { return a.begin < b.begin; });
  int64_t covered = 0;
  for (const auto& r : ranges) {
    if (r.begin != covered) throw bad("tensor '" + r.name + "' overlaps another or leaves a gap before it");
    covered = r.end;
  }
  if (covered != f->data_bytes_)
    throw bad(std::to_string(f->data_bytes_ - covered) + " bytes after the last tensor belong to none");
  return f;
}

SafetensorsFile::~SafetensorsFile() {
  if (map_) ::munmap(map_, static_cast<std::size_t>(size_));
}

}  // namespace packed
}  // namespace adze
