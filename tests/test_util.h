// Helpers shared by the tests: fixture paths, temporary directories, and checks on adze::Error.
#pragma once

#include <gtest/gtest.h>

#include <filesystem>
#include <functional>
#include <random>
#include <string>

#include "core/error.h"

namespace adze::testing {

/// The source tree (compiled into adze_test_paths by cmake/AdzeHelpers.cmake).
const char* source_dir();

/// A file under tests/data.
inline std::string fixture(const std::string& name) { return std::string(source_dir()) + "/tests/data/" + name; }

/// A file under configs/ ("plans/int8.json").
inline std::string config(const std::string& name) { return std::string(source_dir()) + "/configs/" + name; }

/// A fresh directory removed at the end of the scope.
class TempDir {
 public:
  TempDir() {
    std::mt19937_64 rng(std::random_device{}());
    path_ = std::filesystem::temp_directory_path() / ("adze-test-" + std::to_string(rng()));
    std::filesystem::create_directories(path_);
  }
  ~TempDir() {
    std::error_code ec;
    std::filesystem::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  std::string path() const { return path_.string(); }
  std::string file(const std::string& name) const { return (path_ / name).string(); }

 private:
  std::filesystem::path path_;
};

/// Expects `fn` to throw adze::Error of `kind` whose message contains every one of `parts`.
inline void expect_error(const std::function<void()>& fn, ErrorKind kind, const std::vector<std::string>& parts) {
  try {
    fn();
    ADD_FAILURE() << "expected adze::Error(" << to_string(kind) << ")";
  } catch (const Error& e) {
    EXPECT_EQ(e.kind(), kind) << e.what();
    for (const auto& p : parts)
      EXPECT_NE(std::string(e.what()).find(p), std::string::npos) << e.what() << "\n  lacks: " << p;
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected adze::Error, got another exception: " << e.what();
  }
}

}  // namespace adze::testing
