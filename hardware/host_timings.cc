#include "hardware/host_timings.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/files.h"
#include "core/isa.h"

namespace adze {
namespace {

constexpr const char* kFormat = "adze.host-timings.v1";

std::string timings_path() { return cache_dir("targets") + "/host-timings.json"; }

// The entries on disk, or none when the file is missing, unreadable or not of this format.
nlohmann::json read_entries() {
  try {
    const nlohmann::json j = nlohmann::json::parse(read_file_text(timings_path()));
    if (j.at("format") == kFormat && j.at("entries").is_object()) return j.at("entries");
  } catch (const std::exception&) {
    // Missing or malformed: measured again, and the file written anew.
  }
  return nlohmann::json::object();
}

// The entries of the cache file as last read or written here; read again only when the file is another one
// (ADZE_CACHE_DIR changed) or was changed since (its time or size), not on every lookup.
struct Loaded {
  std::mutex mutex;
  std::string path, stamp;
  nlohmann::json entries;
};

std::string stamp_of(const std::string& path) {
  std::error_code ec, ec2;
  const auto time = std::filesystem::last_write_time(path, ec);
  const auto size = std::filesystem::file_size(path, ec2);
  if (ec || ec2) return "";
  return std::to_string(time.time_since_epoch().count()) + " " + std::to_string(size);
}

Loaded& loaded() {
  static Loaded l;
  return l;
}

}  // namespace

double cached_host_seconds(const std::string& key, const std::function<double()>& measure) {
  const std::string full =
      std::string(to_string(active_isa())) + " t" + std::to_string(at::get_num_threads()) + " " + key;
  Loaded& l = loaded();
  const std::lock_guard<std::mutex> lock(l.mutex);
  const std::string path = timings_path();
  if (l.path != path || l.stamp != stamp_of(path)) l.path = path, l.entries = read_entries(), l.stamp = stamp_of(path);
  if (const auto it = l.entries.find(full); it != l.entries.end() && it->is_number()) {
    const double v = it->get<double>();
    if (v > 0 && std::isfinite(v)) return v;
  }
  const double seconds = measure();
  l.entries[full] = seconds;
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  write_file_atomically(path, nlohmann::json{{"format", kFormat}, {"entries", l.entries}}.dump(1) + "\n");
  l.stamp = stamp_of(path);
  return seconds;
}

void clear_host_timings() {
  Loaded& l = loaded();
  const std::lock_guard<std::mutex> lock(l.mutex);
  l.path.clear(), l.stamp.clear();
  std::error_code ec;
  std::filesystem::remove(timings_path(), ec);
}

}  // namespace adze
