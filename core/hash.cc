#include "core/hash.h"

#include <cstdio>

#include "core/files.h"

namespace adze {

void ContentHash::mix(const unsigned char* p, std::size_t n) {
  for (std::size_t i = 0; i < n; ++i) {
    state_ ^= p[i];
    state_ *= 1099511628211ull;
  }
}

ContentHash& ContentHash::add(const void* data, std::size_t size) {
  const uint64_t length = size;
  mix(reinterpret_cast<const unsigned char*>(&length), sizeof length);
  mix(static_cast<const unsigned char*>(data), size);
  return *this;
}

ContentHash& ContentHash::add_file(const std::string& path) {
  const std::vector<char> bytes = read_file_bytes(path);
  return add(bytes.data(), bytes.size());
}

std::string ContentHash::hex() const {
  char out[17];
  std::snprintf(out, sizeof out, "%016llx", static_cast<unsigned long long>(state_));
  return out;
}

}  // namespace adze
