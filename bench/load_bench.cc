// Loading and inspecting a 100M-parameter TorchScript model with adze, side by side with torch::jit::load.
//
//   build/bench/load_bench [--model PATH]   (default: build/bench-data/mlp-100m.pt, made on first run)
//
// Time: BM_TorchJitLoad and BM_AdzeLoadAndInspect run in this process; the ratio counter is theirs.
// Memory: BM_PeakMemory runs a bare libtorch process, torch::jit::load, and adze's load + inspect, each in a
// child process of its own that reports its peak RSS (VmHWM), so none sees another's allocations; it reports the
// peaks and their ratio to the weights' size.
#include <benchmark/benchmark.h>
#include <torch/script.h>
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iostream>

#include "model/frontend.h"
#include "model/layer_table.h"

namespace {

constexpr int kLayers = 10;
constexpr int kWidth = 3162;  // 10 x 3162^2 + biases = 100.0M parameters
std::string g_model_path;
std::string g_self;
double g_torch_seconds = 0;

void make_model(const std::string& path) {
  torch::jit::Module m("Mlp100M");
  torch::manual_seed(0);
  std::string src = "def forward(self, x):\n";
  for (int i = 0; i < kLayers; ++i) {
    m.register_parameter("w" + std::to_string(i), torch::randn({kWidth, kWidth}) * 0.01, false);
    m.register_parameter("b" + std::to_string(i), torch::zeros({kWidth}), false);
    src +=
        "    x = torch.relu(torch.matmul(x, self.w" + std::to_string(i) + ".t()) + self.b" + std::to_string(i) + ")\n";
  }
  src += "    return x\n";
  m.define(src);
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  m.save(path);
}

void adze_load_and_inspect(const std::string& path) {
  adze::Model model = adze::load_torchscript(path, {{1, kWidth}, "float32"});
  adze::LayerTable table = adze::build_layer_table(model);
  if (table.layers.size() != kLayers) std::abort();
}

void torch_load(const std::string& path) {
  torch::jit::Module m = torch::jit::load(path);
  benchmark::DoNotOptimize(m);
}

// Both timings include freeing what was loaded, so the ratio compares like with like.
double time_once(const std::function<void()>& fn) {
  const auto start = std::chrono::steady_clock::now();
  fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void BM_TorchJitLoad(benchmark::State& state) {
  double total = 0;
  for (auto _ : state) total += time_once([] { torch_load(g_model_path); });
  g_torch_seconds = total / static_cast<double>(state.iterations());
}
BENCHMARK(BM_TorchJitLoad)->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();

void BM_AdzeLoadAndInspect(benchmark::State& state) {
  double total = 0;
  for (auto _ : state) total += time_once([] { adze_load_and_inspect(g_model_path); });
  const double seconds = total / static_cast<double>(state.iterations());
  if (g_torch_seconds > 0) state.counters["x_torch_load"] = seconds / g_torch_seconds;
}
BENCHMARK(BM_AdzeLoadAndInspect)->Unit(benchmark::kMillisecond)->Iterations(5)->UseRealTime();

// Peak resident memory (bytes) of a child running `--child=<what>`, as the child reads it from VmHWM. (The
// parent's wait4 ru_maxrss would not do: Linux carries the high-water mark across execve, so a spawned child
// reports at least the parent's size.)
double child_peak_bytes(const std::string& what) {
  const std::string cmd = "'" + g_self + "' --child=" + what + " '" + g_model_path + "'";
  FILE* pipe = popen(cmd.c_str(), "r");
  if (!pipe) return -1;
  double kib = -1;
  if (std::fscanf(pipe, "%lf", &kib) != 1) kib = -1;
  return pclose(pipe) == 0 ? kib * 1024.0 : -1;
}

// VmHWM of this process in KiB.
long own_peak_kib() {
  std::ifstream status("/proc/self/status");
  std::string line;
  while (std::getline(status, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::stol(line.substr(6));
  return -1;
}

void BM_PeakMemory(benchmark::State& state) {
  double bare = 0, torch_peak = 0, adze_peak = 0;
  for (auto _ : state) {
    bare = child_peak_bytes("bare");
    torch_peak = child_peak_bytes("torch");
    adze_peak = child_peak_bytes("adze");
  }
  const double weights = 4.0 * (static_cast<double>(kLayers) * kWidth * (kWidth + 1));
  state.counters["weights_MiB"] = weights / (1 << 20);
  state.counters["bare_process_MiB"] = bare / (1 << 20);
  state.counters["torch_load_peak_MiB"] = torch_peak / (1 << 20);
  state.counters["adze_peak_MiB"] = adze_peak / (1 << 20);
  state.counters["adze_peak_x_weights"] = adze_peak / weights;
  state.counters["adze_extra_x_weights"] = (adze_peak - bare) / weights;
  state.counters["adze_peak_x_torch_peak"] = adze_peak / torch_peak;
}
BENCHMARK(BM_PeakMemory)->Unit(benchmark::kMillisecond)->Iterations(1)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  g_self = std::filesystem::canonical("/proc/self/exe").string();
  if (argc == 3 && std::strncmp(argv[1], "--child=", 8) == 0) {
    const std::string what = argv[1] + 8;
    torch::set_num_threads(1);
    if (what == "torch") torch_load(argv[2]);
    if (what == "adze") adze_load_and_inspect(argv[2]);
    std::printf("%ld\n", own_peak_kib());
    return 0;
  }
  g_model_path = std::string(ADZE_BINARY_DIR) + "/bench-data/mlp-100m.pt";
  for (int i = 1; i + 1 < argc; ++i)
    if (std::string(argv[i]) == "--model") g_model_path = argv[i + 1];
  if (!std::filesystem::exists(g_model_path)) {
    std::cerr << "making " << g_model_path << " (100M parameters)...\n";
    make_model(g_model_path);
  }
  torch::set_num_threads(1);
  torch_load(g_model_path);  // warm the page cache so that neither timed benchmark pays for the disk
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
