#include "core/files.h"

#include <signal.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <sstream>

#include "core/error.h"

namespace adze {
namespace fs = std::filesystem;

void require_readable_file(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (!fs::exists(path, ec)) throw Error(ErrorKind::kIo, "failed to open " + what + " '" + path + "': no such file");
  if (fs::is_directory(path, ec))
    throw Error(ErrorKind::kIo, "failed to open " + what + " '" + path + "': it is a directory, expected a file");
  if (::access(path.c_str(), R_OK) != 0)
    throw Error(ErrorKind::kIo, "failed to open " + what + " '" + path + "': " + std::strerror(errno));
}

std::vector<char> read_file_bytes(const std::string& path) {
  require_readable_file(path, "file");
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorKind::kIo, "failed to open file '" + path + "': " + std::strerror(errno));
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  if (end < 0) {  // not seekable (a pipe: /dev/stdin, <(...)): read to its end
    in.clear();
    std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    if (in.bad()) throw Error(ErrorKind::kIo, "failed to read file '" + path + "'");
    return bytes;
  }
  const auto size = static_cast<std::size_t>(end);
  in.seekg(0);
  std::vector<char> bytes(size);
  if (size > 0 && !in.read(bytes.data(), static_cast<std::streamsize>(size)))
    throw Error(ErrorKind::kIo, "failed to read file '" + path + "'");
  return bytes;
}

std::string read_file_text(const std::string& path) {
  auto bytes = read_file_bytes(path);
  return std::string(bytes.begin(), bytes.end());
}

namespace {

// Whether process `pid` still runs: it exists and is not a zombie (dead, not yet reaped). A sweep run's child
// killed with its parent is reparented and reaped whenever the init process gets to it; until then kill(pid, 0)
// still finds it (found by the kill-at-random-points test: a resumed sweep kept the killed child's temporary).
bool process_runs(pid_t pid) {
  if (::kill(pid, 0) != 0 && errno == ESRCH) return false;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(stat, line)) return true;  // no /proc: kill's answer stands
  const auto close = line.rfind(')');          // "pid (comm) state ...", comm may hold spaces and parentheses
  if (close == std::string::npos || close + 2 >= line.size()) return true;
  const char state = line[close + 2];
  return state != 'Z' && state != 'X';
}

// Removes what a killed adze process left beside `target`: ".NAME.tmp-PID" files or directories whose
// process no longer runs. They are never read as output, but they are litter.
void remove_stale_temporaries(const fs::path& dir, const fs::path& target) {
  const std::string prefix = "." + target.filename().string() + ".tmp-";
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(dir, ec)) {
    const std::string name = entry.path().filename().string();
    if (name.rfind(prefix, 0) != 0) continue;
    const std::string pid = name.substr(prefix.size());
    if (pid.empty() || pid.find_first_not_of("0123456789") != std::string::npos) continue;
    if (!process_runs(static_cast<pid_t>(std::stol(pid)))) fs::remove_all(entry.path(), ec);
  }
}

}  // namespace

void write_atomically(const std::string& path, const std::function<void(const std::string&)>& write) {
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  std::error_code ec;
  if (!fs::is_directory(dir, ec))
    throw Error(ErrorKind::kIo, "failed to write '" + path + "': directory '" + dir.string() + "' does not exist");
  if (::access(dir.c_str(), W_OK) != 0)
    throw Error(ErrorKind::kIo, "failed to write '" + path + "': directory '" + dir.string() + "' is not writable");
  remove_stale_temporaries(dir, target);
  const std::string tmp = (dir / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()))).string();
  try {
    write(tmp);
  } catch (...) {
    fs::remove(tmp, ec);
    throw;
  }
  fs::rename(tmp, target, ec);
  if (ec) {
    fs::remove(tmp, ec);
    throw Error(ErrorKind::kIo, "failed to write '" + path + "': " + ec.message());
  }
}

void require_new_output(const std::string& path, const std::string& what) {
  std::error_code ec;
  if (fs::exists(path, ec))
    throw Error(ErrorKind::kIo,
                "failed to write " + what + " '" + path + "': it already exists (choose a new path or remove it)");
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  if (!fs::is_directory(dir, ec))
    throw Error(ErrorKind::kIo,
                "failed to write " + what + " '" + path + "': directory '" + dir.string() + "' does not exist");
  if (::access(dir.c_str(), W_OK) != 0)
    throw Error(ErrorKind::kIo,
                "failed to write " + what + " '" + path + "': directory '" + dir.string() + "' is not writable");
}

void write_directory_atomically(const std::string& path, const std::function<void(const std::string&)>& fill) {
  require_new_output(path, "directory");
  fs::path target(path);
  fs::path dir = target.has_parent_path() ? target.parent_path() : fs::path(".");
  remove_stale_temporaries(dir, target);
  const fs::path tmp = dir / ("." + target.filename().string() + ".tmp-" + std::to_string(::getpid()));
  std::error_code ec;
  fs::remove_all(tmp, ec);
  fs::create_directory(tmp, ec);
  if (ec) throw Error(ErrorKind::kIo, "failed to create '" + tmp.string() + "': " + ec.message());
  try {
    fill(tmp.string());
    fs::rename(tmp, target);
  } catch (const fs::filesystem_error& e) {
    fs::remove_all(tmp, ec);
    throw Error(ErrorKind::kIo, "failed to write '" + path + "': " + e.what());
  } catch (const Error& e) {
    fs::remove_all(tmp, ec);
    // A file inside is named as the user will find it: under `path`, not the temporary directory.
    std::string message = e.what();
    const std::string inside = tmp.string() + "/";
    for (auto at = message.find(inside); at != std::string::npos; at = message.find(inside, at))
      message.replace(at, inside.size(), (target / "").string());
    throw Error(e.kind(), message);
  } catch (...) {
    fs::remove_all(tmp, ec);
    throw;
  }
}

void write_file_atomically(const std::string& path, const std::string& contents) {
  write_atomically(path, [&](const std::string& tmp) {
    std::ofstream out(tmp, std::ios::binary);
    out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
    out.close();
    if (!out) throw Error(ErrorKind::kIo, "failed to write '" + path + "': " + std::strerror(errno));
  });
}

std::string cache_dir(const std::string& kind) {
  std::string base;
  if (const char* dir = std::getenv("ADZE_CACHE_DIR"); dir && *dir) {
    base = dir;
  } else if (const char* xdg = std::getenv("XDG_CACHE_HOME"); xdg && *xdg) {
    base = std::string(xdg) + "/adze";
  } else {
    const char* home = std::getenv("HOME");
    base = std::string(home && *home ? home : ".") + "/.cache/adze";
  }
  return base + "/" + kind;
}

std::string shell_quoted(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

ScratchDir::ScratchDir(const std::string& prefix) {
  static std::atomic<int> calls{0};
  path_ = std::filesystem::temp_directory_path() /
          (prefix + "-" + std::to_string(::getpid()) + "-" + std::to_string(calls++));
  std::filesystem::create_directories(path_);
}

ScratchDir::~ScratchDir() {
  std::error_code ec;
  std::filesystem::remove_all(path_, ec);
}

}  // namespace adze
