#include "core/zip_bounds.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cstdint>
#include <vector>

#include "core/error.h"

namespace adze {
namespace {

// Little-endian fields; the caller has checked the bounds.
uint64_t field(std::string_view b, uint64_t at, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(b[at + static_cast<uint64_t>(i)]);
  return v;
}

}  // namespace

std::vector<ZipEntry> check_zip_bounds(std::string_view b, const std::string& what, const std::string& format) {
  std::vector<ZipEntry> members;
  const uint64_t size = b.size();
  const auto fail = [&](const std::string& why) {
    return Error(ErrorKind::kIo,
                 "failed to read " + what + ": not a " + format + " (a damaged zip archive: " + why + ")");
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
    // miniz copies a stored entry's uncompressed size and allocates a deflated one's (found by fuzzing: a stored
    // entry of 224 bytes that claimed 3.7 GB was read past the buffer). Deflate expands at most 1032-fold.
    const uint64_t method = field(b, at + 10, 2);
    if ((method == 0 && uncompressed != compressed) || (method == 8 && uncompressed / 1032 > compressed))
      throw fail("entry " + std::to_string(i) + " claims " + std::to_string(uncompressed) + " bytes from " +
                 std::to_string(compressed));
    members.push_back({std::string(b.data() + at + 46, name), data, compressed, static_cast<uint32_t>(method),
                       static_cast<uint32_t>(field(b, at + 16, 4))});
    at += 46 + name + extra + comment;
  }
  return members;
}

void check_pickle_bounds(const char* p, uint64_t size, const std::string& what, const std::string& format) {
  const auto fail = [&](uint64_t at, const std::string& why) {
    return Error(ErrorKind::kIo, "failed to read " + what + ": not a " + format + " (a damaged pickle at byte " +
                                     std::to_string(at) + ": " + why + ")");
  };
  const auto u8 = [&](uint64_t at) { return static_cast<uint64_t>(static_cast<unsigned char>(p[at])); };
  // The unpickler's stack as libtorch 1.13 keeps it: a depth, and marks (depths) apart from it. Its opcodes pop
  // without checking the depth (BUILD on one value frees what it never allocated; found by fuzzing), so each
  // opcode's needs are checked here. Past an opcode whose effect is not modelled, only lengths are checked.
  uint64_t depth = 0;
  std::vector<uint64_t> marks;
  bool tracking = true;
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
    // The opcode takes `n` values and leaves `left` in their place.
    const auto takes = [&](uint64_t n, uint64_t left) {
      if (!tracking) return;
      if (depth < n)
        throw fail(op,
                   "an opcode that takes " + std::to_string(n) + " values from a stack of " + std::to_string(depth));
      depth = depth - n + left;
    };
    // The opcode takes every value above the top mark (and the mark), an even number where `pairs`, and needs
    // `below` values under the mark; it leaves `left`.
    const auto takes_to_mark = [&](bool pairs, uint64_t below, uint64_t left) {
      if (!tracking) return;
      if (marks.empty()) throw fail(op, "an opcode that needs a mark, with none set");
      const uint64_t mark = marks.back();
      marks.pop_back();
      if (mark > depth || mark < below)
        throw fail(op, "a mark at depth " + std::to_string(mark) + " of a stack of " + std::to_string(depth));
      if (pairs && (depth - mark) % 2 != 0) throw fail(op, "an odd number of keys and values");
      depth = mark + left;
    };
    switch (static_cast<unsigned char>(p[op])) {
      case 'X':  // BINUNICODE
        length(4);
        takes(0, 1);
        break;
      case 'T':
      case 'B':
        length(4);
        tracking = false;
        break;  // BINSTRING, BINBYTES
      case 'U':
      case 'C':
        length(1);
        tracking = false;
        break;    // SHORT_BINSTRING, SHORT_BINBYTES
      case 0x8a:  // LONG1
        length(1);
        takes(0, 1);
        break;
      case 0x8b:
        length(4);
        tracking = false;
        break;  // LONG4
      case 0x8c:
        length(1);
        tracking = false;
        break;  // SHORT_BINUNICODE
      case 0x8d:
      case 0x8e:
        length(8);
        tracking = false;
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
        takes(1, 1);
        break;
      }
      case 'q':  // BINPUT
        need(1);
        at += 1;
        takes(1, 1);
        break;
      case 'J':
      case 'j':
        need(4);
        at += 4;
        takes(0, 1);
        break;  // BININT, LONG_BINGET
      case 'K':
      case 'h':
        need(1);
        at += 1;
        takes(0, 1);
        break;  // BININT1, BINGET
      case 0x80:
        need(1);
        at += 1;
        break;  // PROTO
      case 'M':
        need(2);
        at += 2;
        takes(0, 1);
        break;  // BININT2
      case 'G':
        need(8);
        at += 8;
        takes(0, 1);
        break;   // BINFLOAT
      case 'c':  // GLOBAL: two lines; the unpickler pushes the index of what it names
        for (int line = 0; line < 2; ++line) {
          while (at < size && p[at] != '\n') ++at;
          need(1);
          ++at;
        }
        takes(0, 1);
        break;
      case '(':  // MARK
        if (tracking) marks.push_back(depth);
        break;
      case '}':
      case ']':
      case ')':
      case 0x88:
      case 0x89:
      case 'N':
        takes(0, 1);
        break;   // EMPTY_DICT, EMPTY_LIST, EMPTY_TUPLE, NEWTRUE, NEWFALSE, NONE
      case 't':  // TUPLE
        takes_to_mark(false, 0, 1);
        break;
      case 'l':  // LIST
        takes_to_mark(false, 0, 1);
        break;
      case 'e':  // APPENDS: onto the list under the mark
        takes_to_mark(false, 1, 0);
        break;
      case 'd':  // DICT
        takes_to_mark(true, 0, 1);
        break;
      case 'u':  // SETITEMS: into the dict under the mark
        takes_to_mark(true, 1, 0);
        break;
      case 0x85:
        takes(1, 1);
        break;  // TUPLE1
      case 0x86:
        takes(2, 1);
        break;  // TUPLE2
      case 0x87:
        takes(3, 1);
        break;  // TUPLE3
      case 's':
        takes(3, 1);
        break;  // SETITEM: the dict stays
      case 0x81:
        takes(1, 0);
        break;  // NEWOBJ
      case 'R':
      case 'b':
        takes(2, 1);
        break;  // REDUCE, BUILD: the index and its argument, replaced by what the call makes of them
      case 'Q':
        takes(1, 1);
        break;  // BINPERSID
      case 'a':
      case '0':
      case '1':
      case '2':
      case 0x8f:
      case 0x90:
      case 0x91:
      case 0x92:
      case 0x93:
      case 0x94:
        tracking = false;
        break;
      case '.':  // STOP
        return;
      default:  // an opcode the unpickler rejects as well: it reads no further
        return;
    }
  }
}

namespace {

bool same_name_ignoring_case(const std::string& a, const std::string& b) {
  return a.size() == b.size() && std::equal(a.begin(), a.end(), b.begin(), [](char x, char y) {
           return std::tolower(static_cast<unsigned char>(x)) == std::tolower(static_cast<unsigned char>(y));
         });
}

}  // namespace

void check_torch_save_records(std::string_view b, const std::vector<ZipEntry>& members, const std::string& what,
                              const std::string& format) {
  const auto fail = [&](const std::string& why) {
    return Error(ErrorKind::kIo, "failed to read " + what + ": not a " + format + " (" + why + ")");
  };
  if (members.empty()) throw fail("an archive without members");
  const std::string& first = members.front().name;
  if (first.find('/') == std::string::npos) throw fail("its first member '" + first + "' is in no folder");
  const std::string folder = first.substr(0, first.find('/') + 1);
  const ZipEntry* version = nullptr;
  for (const char* name : {".data/version", "version"}) {  // libtorch's order
    for (const ZipEntry& e : members)
      if (same_name_ignoring_case(e.name, folder + name)) {
        version = &e;
        break;
      }
    if (version) break;
  }
  if (!version) throw fail("no version record");
  if (version->method != 0) throw fail("a compressed version record");
  const uint32_t crc = static_cast<uint32_t>(
      crc32(0, reinterpret_cast<const Bytef*>(b.data() + version->offset), static_cast<uInt>(version->size)));
  if (crc != version->crc) throw fail("a damaged version record (its checksum does not match)");
  // As std::stoull reads it: blanks, an optional sign, then digits; what follows them is ignored.
  const std::string text(b.data() + version->offset, version->size);
  std::size_t at = 0;
  while (at < text.size() && std::isspace(static_cast<unsigned char>(text[at]))) ++at;
  const bool negative = at < text.size() && text[at] == '-';
  if (at < text.size() && (text[at] == '+' || text[at] == '-')) ++at;
  uint64_t number = 0;
  std::size_t digits = 0;
  for (; at < text.size() && std::isdigit(static_cast<unsigned char>(text[at])) && number <= 10; ++at, ++digits)
    number = number * 10 + static_cast<uint64_t>(text[at] - '0');
  if (digits == 0 || negative || number < 1 || number > 10) throw fail("a version record that is not 1 to 10");
}

void check_torch_save_bounds(std::string_view bytes, const std::string& what, const std::string& format) {
  const std::vector<ZipEntry> members = check_zip_bounds(bytes, what, format);
  check_torch_save_records(bytes, members, what, format);
  for (const ZipEntry& e : members)
    if (e.name.size() >= 4 && e.name.compare(e.name.size() - 4, 4, ".pkl") == 0)
      check_pickle_bounds(bytes.data() + e.offset, e.size, what, format);
}

void check_torch_save_file(const std::string& path, const std::string& what, const std::string& format) {
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  struct stat st {};
  if (fd < 0 || ::fstat(fd, &st) != 0) {
    if (fd >= 0) ::close(fd);
    throw Error(ErrorKind::kIo, "failed to read " + what + ": cannot open it");
  }
  const auto size = static_cast<std::size_t>(st.st_size);
  // Mapped, not read: the checks touch the archive's directory, its headers and its pickles, not its tensors.
  void* const map = size ? ::mmap(nullptr, size, PROT_READ, MAP_PRIVATE, fd, 0) : nullptr;
  ::close(fd);
  if (map == MAP_FAILED) throw Error(ErrorKind::kIo, "failed to read " + what + ": cannot map it");
  try {
    check_torch_save_bounds(std::string_view(static_cast<const char*>(map), size), what, format);
  } catch (...) {
    if (map) ::munmap(map, size);
    throw;
  }
  if (map) ::munmap(map, size);
}

}  // namespace adze
