// Content hashes that key caches (sensitivity tables, measured cost tables): FNV-1a 64 over the parts, each
// part length-prefixed so that ("ab", "c") and ("a", "bc") differ. Not cryptographic.
#pragma once

#include <cstdint>
#include <string>
#include <vector>

namespace adze {

class ContentHash {
 public:
  ContentHash& add(const void* data, std::size_t size);
  ContentHash& add(const std::string& text) { return add(text.data(), text.size()); }
  /// Adds a file's bytes (Error(kIo) when unreadable).
  ContentHash& add_file(const std::string& path);
  /// 16 lowercase hex digits.
  std::string hex() const;

 private:
  uint64_t state_ = 1469598103934665603ull;
  void mix(const unsigned char* p, std::size_t n);
};

}  // namespace adze
