// What every fuzz target shares: the parsers read files, so the input becomes a file in a directory of this
// process's own; and a parser answers bad bytes with adze::Error, nothing else. Any other exception aborts,
// so that libFuzzer keeps the input that caused it (as it does for a crash or a sanitizer report).
#pragma once

#include <stdlib.h>
#include <unistd.h>

#include <cstdint>
#include <cstdio>
#include <exception>
#include <filesystem>
#include <string>

#include "core/error.h"

namespace adze::fuzz {

/// /tmp/adze-fuzz-XXXXXX, made at the first call and removed when the process exits.
inline const std::string& scratch_dir() {
  // Never destroyed: the exit handler that removes the directory runs after static destructors would have.
  static const std::string& dir = *[] {
    char pattern[] = "/tmp/adze-fuzz-XXXXXX";
    if (!mkdtemp(pattern)) std::abort();
    return new std::string(pattern);
  }();
  static const bool cleanup = [] {
    std::atexit([] {
      std::error_code ec;
      std::filesystem::remove_all(scratch_dir(), ec);
    });
    return true;
  }();
  (void)cleanup;
  return dir;
}

/// The input, written whole to scratch_dir()/name; returns the path.
inline std::string write_input(const uint8_t* data, size_t size, const std::string& name) {
  const std::string path = scratch_dir() + "/" + name;
  FILE* f = std::fopen(path.c_str(), "wb");
  if (!f) std::abort();
  if (size && std::fwrite(data, 1, size, f) != size) std::abort();
  std::fclose(f);
  return path;
}

/// Runs `parse`: returns normally, or throws adze::Error (the parser's answer to bad bytes). Any other
/// exception is a bug: its message goes to stderr and the process aborts.
template <typename Parse>
void expect_adze_errors_only(Parse&& parse) {
  try {
    parse();
  } catch (const Error&) {
  } catch (const std::exception& e) {
    std::fprintf(stderr, "fuzz: an exception that is not an adze::Error escaped the parser: %s\n", e.what());
    std::abort();
  }
}

}  // namespace adze::fuzz
