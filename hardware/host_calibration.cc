#include "hardware/host_calibration.h"

#include <torch/torch.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <functional>

#include "core/error.h"
#include "core/files.h"
#include "core/progress.h"

namespace adze {

namespace {

// The largest CPU cache this kernel reports, in bytes (0 when it says nothing).
double last_level_cache_bytes() {
  double best = 0;
  for (int i = 0; i < 8; ++i) {
    std::ifstream f("/sys/devices/system/cpu/cpu0/cache/index" + std::to_string(i) + "/size");
    std::string size;
    if (!(f >> size) || size.empty()) continue;
    double v = std::atof(size.c_str());
    if (size.back() == 'K') v *= 1024;
    if (size.back() == 'M') v *= 1024 * 1024;
    best = std::max(best, v);
  }
  return best;
}

double total_memory_bytes() {
  std::ifstream f("/proc/meminfo");
  std::string key;
  double kib = 0;
  while (f >> key >> kib)
    if (key == "MemTotal:") return kib * 1024;
  return 0;
}

}  // namespace

double best_seconds(const std::function<void()>& fn, int runs) {
  double best = 1e300;
  for (int i = 0; i < runs; ++i) {
    const auto start = std::chrono::steady_clock::now();
    fn();
    best = std::min(best, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  return best;
}

std::string host_target_path() { return cache_dir("targets") + "/host.json"; }

Target calibrate_host(bool progress) {
  torch::NoGradGuard no_grad;
  ProgressBar bar("calibrate host", 4, progress);
  const int threads = at::get_num_threads();
  const std::string how = " (adze target calibrate host, " + std::to_string(threads) + " thread" +
                          (threads == 1 ? "" : "s") + ", best of several runs)";
  torch::manual_seed(0);
  const at::Tensor a = torch::randn({1024, 1024}), b = torch::randn({1024, 1024});
  const double gemm_s = best_seconds([&] { (void)torch::mm(a, b); }, 5);
  const double gemm_macs = 1024.0 * 1024.0 * 1024.0 / gemm_s;
  bar.update(1);
  const at::Tensor w = torch::randn({4096, 8192}), x = torch::randn({8192});
  const double gemv_s = best_seconds([&] { (void)torch::mv(w, x); }, 5);
  const double stream_bytes = 4096.0 * 8192.0 * 4.0 / gemv_s;
  bar.update(2);
  const at::Tensor s = torch::randn({1, 1});
  const double op_s = best_seconds(
                          [&] {
                            for (int i = 0; i < 1000; ++i) (void)torch::mm(s, s);
                          },
                          5) /
                      1000;
  bar.update(3);
  const at::Tensor small_a = torch::randn({256, 1024}), small_x = torch::randn({1024});
  const double cached_s = best_seconds(
                              [&] {
                                for (int i = 0; i < 100; ++i) (void)torch::mv(small_a, small_x);
                              },
                              5) /
                          100;
  const double cache_bytes_per_s = 256.0 * 1024.0 * 4.0 / cached_s;
  bar.finish();

  const double llc = last_level_cache_bytes(), ram = total_memory_bytes();
  nlohmann::json j = {
      {"schema", "adze.target.v1"},
      {"name", "host"},
      {"description", "this machine, measured by adze with " + std::to_string(threads) + " libtorch thread(s)"},
      {"kind", "cpu"},
      {"float_precision", "fp32"},
      {"weight_bits", {2, 3, 4, 5, 6, 7, 8, 16, 32}},
      {"act_bits", {0}},
      {"macs_per_s", {{"fp32", {{"value", gemm_macs}, {"source", "measured: fp32 1024x1024x1024 torch::mm" + how}}}}},
      {"nm_speedup", nlohmann::json::object()},
      {"layer_overhead_s", {{"value", op_s}, {"source", "measured: one 1x1 torch::mm call" + how}}},
      {"memory",
       {{{"name", "dram"},
         {"bytes",
          {{"value", ram > 0 ? ram : 1e9},
           {"source", ram > 0 ? "measured: MemTotal of /proc/meminfo" : "assumption: /proc/meminfo unreadable"}}},
         {"bytes_per_s",
          {{"value", stream_bytes}, {"source", "measured: fp32 torch::mv streaming a 128 MiB weight" + how}}},
         {"pj_per_byte", {{"value", 40.0}, {"source", "assumption: not measurable here; DDR4 about 5 pJ/bit"}}}},
        {{"name", "cache"},
         {"bytes",
          {{"value", llc > 0 ? llc : 1048576.0},
           {"source", llc > 0 ? "measured: the largest cache under /sys/devices/system/cpu/cpu0/cache"
                              : "assumption: the kernel reports no cache size"}}},
         {"bytes_per_s",
          {{"value", cache_bytes_per_s}, {"source", "measured: fp32 torch::mv over a 1 MiB weight" + how}}},
         {"pj_per_byte",
          {{"value", 12.5}, {"source", "assumption: not measurable here; Horowitz, ISSCC 2014 (45 nm) 1 MB SRAM"}}}}}},
      {"pj_per_mac",
       {{"fp32",
         {{"value", 4.6}, {"source", "assumption: not measurable here; Horowitz, ISSCC 2014 (45 nm) fp32 FMA"}}}}},
      {"measured", true}};
  return parse_target(j, "host (measured)");
}

Target host_target() {
  const std::string path = host_target_path();
  if (std::filesystem::exists(path)) {
    try {
      return parse_target(nlohmann::json::parse(read_file_text(path)), path);
    } catch (const std::exception&) {
      // An unreadable or outdated cache is measured again below.
    }
  }
  return calibrate_and_cache_host(false);
}

Target calibrate_and_cache_host(bool progress) {
  Target t = calibrate_host(progress);
  const std::string path = host_target_path();
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  write_file_atomically(path, to_json(t).dump(2) + "\n");
  t.origin = path;
  return t;
}

}  // namespace adze
