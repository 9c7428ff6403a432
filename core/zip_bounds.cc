#include "core/zip_bounds.h"

#include <cstdint>

#include "core/error.h"

namespace adze {
namespace {

// Little-endian fields; the caller has checked the bounds.
uint64_t field(const std::vector<char>& b, uint64_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + static_cast<uint64_t>(i)]);
  return v;
}

}  // namespace

std::vector<ZipEntry> check_zip_bounds(const std::vector<char>& b, const std::string& what) {
  std::vector<ZipEntry> members;
  const uint64_t size = b.size();
  const auto fail = [&](const std::string& why) {
    return Error(ErrorKind::kIo,
                 "failed to read " + what + ": not a torch.save file (a damaged zip archive: " + why + ")");
  };
  const auto fits = [&](uint64_t at, uint64_t n) { return at <= size && n <= size - at; };
  // End of central directory: 22 bytes and a comment of at most 65535, at the end.
  if (size < 22) throw fail("shorter than its end record");
  uint64_t eocd = size - 22;
  const uint64_t lowest = size - 22 > 65535 ? size - 22 - 65535 : 0;
  while (field(b, eocd, 4) != 0x06054b50) {
    if (eocd == lowest) throw fail("no end record");
    --eocd;
  }
  uint64_t entries = field(b, eocd + 10, 2), cd_size = field(b, eocd + 12, 4), cd_offset = field(b, eocd + 16, 4);
  uint64_t cd_end_limit = eocd;
  // Zip64: a locator just before the end record points at the zip64 end record. Its figures replace the
  // fields that hold their maximum, as readers (miniz, libtorch's) take them; both sets must lie inside.
  if (eocd >= 20 && field(b, eocd - 20, 4) == 0x07064b50) {
    const uint64_t z = field(b, eocd - 20 + 8, 8);
    if (!fits(z, 56) || z > eocd - 20 || field(b, z, 4) != 0x06064b50) throw fail("a zip64 end record out of place");
    const uint64_t z_entries = field(b, z + 32, 8), z_size = field(b, z + 40, 8), z_offset = field(b, z + 48, 8);
    if (!fits(z_offset, z_size) || z_offset + z_size > z) throw fail("its zip64 directory lies outside it");
    if (entries == 0xFFFF) entries = z_entries;
    if (cd_size == 0xFFFFFFFF) cd_size = z_size;
    if (cd_offset == 0xFFFFFFFF) cd_offset = z_offset;
    cd_end_limit = z;
  }
  if (!fits(cd_offset, cd_size) || cd_offset + cd_size > cd_end_limit) throw fail("its directory lies outside it");
  if (entries > cd_size / 46) throw fail("more entries than its directory holds");
  uint64_t at = cd_offset;
  for (uint64_t i = 0; i < entries; ++i) {
    if (!fits(at, 46) || at + 46 > cd_offset + cd_size || field(b, at, 4) != 0x02014b50)
      throw fail("directory entry " + std::to_string(i) + " is damaged");
    const uint64_t name = field(b, at + 28, 2), extra = field(b, at + 30, 2), comment = field(b, at + 32, 2);
    if (at + 46 + name + extra + comment > cd_offset + cd_size)
      throw fail("directory entry " + std::to_string(i) + " runs past the directory");
    uint64_t compressed = field(b, at + 20, 4), uncompressed = field(b, at + 24, 4), local = field(b, at + 42, 4);
    // Zip64 sizes and offset, in that order, for the fields that hold 0xFFFFFFFF.
    for (uint64_t e = at + 46 + name; e + 4 <= at + 46 + name + extra;) {
      const uint64_t id = field(b, e, 2), n = field(b, e + 2, 2);
      if (e + 4 + n > at + 46 + name + extra) throw fail("directory entry " + std::to_string(i) + " has a bad extra");
      if (id == 1) {
        uint64_t p = e + 4;
        const auto next = [&](uint64_t& v) {
          if (v != 0xFFFFFFFF) return;
          if (p + 8 > e + 4 + n) throw fail("directory entry " + std::to_string(i) + " has a short zip64 field");
          v = field(b, p, 8);
          p += 8;
        };
        next(uncompressed);
        next(compressed);
        next(local);
      }
      e += 4 + n;
    }
    if (!fits(local, 30) || field(b, local, 4) != 0x04034b50)
      throw fail("entry " + std::to_string(i) + "'s local header is missing");
    const uint64_t data = local + 30 + field(b, local + 26, 2) + field(b, local + 28, 2);
    if (!fits(data, compressed)) throw fail("entry " + std::to_string(i) + "'s data runs past the end");
    members.push_back({std::string(b.data() + at + 46, name), data, compressed});
    at += 46 + name + extra + comment;
  }
  return members;
}

void check_pickle_bounds(const char* p, uint64_t size, const std::string& what) {
  const auto fail = [&](uint64_t at, const std::string& why) {
    return Error(ErrorKind::kIo, "failed to read " + what + ": not a torch.save file (a damaged pickle at byte " +
                                     std::to_string(at) + ": " + why + ")");
  };
  const auto u8 = [&](uint64_t at) { return static_cast<uint64_t>(static_cast<unsigned char>(p[at])); };
  uint64_t at = 0;
  while (at < size) {
    const uint64_t op = at++;
    const auto need = [&](uint64_t n) {
      if (n > size - at)
        throw fail(op, "an argument of " + std::to_string(n) + " bytes, " + std::to_string(size - at) + " left");
    };
    const auto length = [&](int bytes) {  // a little-endian length, then that many bytes
      need(static_cast<uint64_t>(bytes));
      uint64_t n = 0;
      for (int k = bytes - 1; k >= 0; --k) n = (n << 8) | u8(at + static_cast<uint64_t>(k));
      at += static_cast<uint64_t>(bytes);
      need(n);
      at += n;
    };
    switch (static_cast<unsigned char>(p[op])) {
      case 'X':
      case 'T':
      case 'B':
        length(4);
        break;  // BINUNICODE, BINSTRING, BINBYTES
      case 'U':
      case 'C':
      case 0x8a:
        length(1);
        break;  // SHORT_BINSTRING, SHORT_BINBYTES, LONG1
      case 0x8b:
        length(4);
        break;  // LONG4
      case 0x8c:
        length(1);
        break;  // SHORT_BINUNICODE
      case 0x8d:
      case 0x8e:
        length(8);
        break;  // BINUNICODE8, BINBYTES8
      case 0x95:
        need(8);
        at += 8;
        break;     // FRAME
      case 'r': {  // LONG_BINPUT: the unpickler grows its memo table to the index (found by fuzzing: 26 GB)
        need(4);
        const uint64_t index = u8(at) | u8(at + 1) << 8 | u8(at + 2) << 16 | u8(at + 3) << 24;
        if (index > size) throw fail(op, "a memo index " + std::to_string(index) + " past the stream's length");
        at += 4;
        break;
      }
      case 'J':
      case 'j':
        need(4);
        at += 4;
        break;  // BININT, LONG_BINGET
      case 'K':
      case 'q':
      case 'h':
      case 0x80:
        need(1);
        at += 1;
        break;  // BININT1, BINPUT, BINGET, PROTO
      case 'M':
        need(2);
        at += 2;
        break;  // BININT2
      case 'G':
        need(8);
        at += 8;
        break;   // BINFLOAT
      case 'c':  // GLOBAL: two lines
        for (int line = 0; line < 2; ++line) {
          while (at < size && p[at] != '\n') ++at;
          need(1);
          ++at;
        }
        break;
      case '(':
      case '}':
      case ']':
      case ')':
      case 't':
      case 0x85:
      case 0x86:
      case 0x87:
      case 'a':
      case 'e':
      case 's':
      case 'u':
      case 0x88:
      case 0x89:
      case 'N':
      case 'R':
      case 'b':
      case 0x81:
      case 'Q':
      case '0':
      case '1':
      case '2':
      case 0x8f:
      case 0x90:
      case 0x91:
      case 0x92:
      case 0x93:
      case 0x94:
        break;
      case '.':  // STOP
        return;
      default:  // an opcode the unpickler rejects as well: it reads no further
        return;
    }
  }
}

void check_torch_save_bounds(const std::vector<char>& bytes, const std::string& what) {
  for (const ZipEntry& e : check_zip_bounds(bytes, what))
    if (e.name.size() >= 4 && e.name.compare(e.name.size() - 4, 4, ".pkl") == 0)
      check_pickle_bounds(bytes.data() + e.offset, e.size, what);
}

}  // namespace adze
