// Reading and writing files without leaving anything half-written.
#pragma once

#include <filesystem>
#include <functional>
#include <string>
#include <vector>

namespace adze {

/// Reads a whole file; throws Error(kIo) naming the path when it is missing or unreadable.
std::vector<char> read_file_bytes(const std::string& path);
std::string read_file_text(const std::string& path);

/// Writes `path` by calling `write(tmp_path)` and renaming tmp_path onto path only if `write` returned
/// normally; on any exception the temporary file is removed and the exception rethrown. The parent
/// directory must exist and be writable (checked first, with a clear Error(kIo)).
void write_atomically(const std::string& path, const std::function<void(const std::string& tmp_path)>& write);

/// Creates directory `path` by calling `fill(tmp_dir)` on a fresh sibling directory and renaming it onto
/// `path` at the end; on any exception the temporary directory is removed. `path` must not exist yet.
void write_directory_atomically(const std::string& path, const std::function<void(const std::string& tmp_dir)>& fill);

/// Throws Error(kIo) unless `path` does not exist and its parent is a writable directory (`what` names it:
/// "--out"). For checking outputs before any work.
void require_new_output(const std::string& path, const std::string& what);

/// Convenience: atomically writes `contents` to `path`.
void write_file_atomically(const std::string& path, const std::string& contents);

/// Where adze caches `kind` ("models", "targets", "sensitivity"):
/// ${ADZE_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/adze}/KIND (not created here).
std::string cache_dir(const std::string& kind);

/// Throws Error(kIo) unless `path` names a readable regular file ("what" names the role, e.g. "model").
void require_readable_file(const std::string& path, const std::string& what);

/// A fresh directory under the system's temporary directory ("PREFIX-PID-N"), removed with all it holds when
/// this goes out of scope: scratch files of one call.
class ScratchDir {
 public:
  explicit ScratchDir(const std::string& prefix);
  ~ScratchDir();
  ScratchDir(const ScratchDir&) = delete;
  ScratchDir& operator=(const ScratchDir&) = delete;
  const std::filesystem::path& path() const { return path_; }

 private:
  std::filesystem::path path_;
};

/// `s` as one word of a POSIX shell command line: in single quotes, each ' written as '\''.
std::string shell_quoted(const std::string& s);

}  // namespace adze
