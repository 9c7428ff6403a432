#include "hardware/host_timings.h"

#include <ATen/Parallel.h>

#include <cmath>
#include <filesystem>
#include <mutex>
#include <nlohmann/json.hpp>

#include "core/files.h"
#include "runtime/isa.h"

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

std::mutex& cache_mutex() {
  static std::mutex m;
  return m;
}

}  // namespace

double cached_host_seconds(const std::string& key, const std::function<double()>& measure) {
  const std::string full =
      std::string(runtime::to_string(runtime::active_isa())) + " t" + std::to_string(at::get_num_threads()) + " " + key;
  const std::lock_guard<std::mutex> lock(cache_mutex());
  nlohmann::json entries = read_entries();
  if (const auto it = entries.find(full); it != entries.end() && it->is_number()) {
    const double v = it->get<double>();
    if (v > 0 && std::isfinite(v)) return v;
  }
  const double seconds = measure();
  entries[full] = seconds;
  const std::string path = timings_path();
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  write_file_atomically(path, nlohmann::json{{"format", kFormat}, {"entries", entries}}.dump(1) + "\n");
  return seconds;
}

void clear_host_timings() {
  std::error_code ec;
  std::filesystem::remove(timings_path(), ec);
}

}  // namespace adze
