// The packed runtime (runtime/) against the uncompressed fp32 model, side by side: the same network
// (reference architectures, random weights), compressed 2:4 + INT4 weights (the layers that cannot take 2:4 dense),
// exported as .adze and run by PackedModel::forward; fp32 is adze's own Model::forward of the uncompressed graph
// (libtorch's kernels).
//
//   build/bench/packed_runtime_bench
//
// One thread. Each benchmark reports ms per batch; the counter `vs_fp32` is packed time / fp32 time of the
// same model and batch, measured in this process (>1: the packed runtime is slower).
#include <benchmark/benchmark.h>
#include <torch/torch.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <memory>

#include "compress/compressed_model.h"
#include "compress/pass.h"
#include "compress/report.h"
#include "examples/reference/models.h"
#include "exporters/exporter.h"
#include "model/frontend.h"
#include "runtime/packed_model.h"

namespace {

// Where the compressed models and packed files go; removed at exit.
struct ScratchDir {
  std::filesystem::path path =
      std::filesystem::temp_directory_path() / ("adze-packed-runtime-bench-" + std::to_string(getpid()));
  ScratchDir() { std::filesystem::create_directories(path); }
  ~ScratchDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

// configs/plans/2of4-int4.json and a 2:4 + INT4 version of gpt-2of4-int8.json (the tied embedding stays dense).
constexpr const char* kCnnPlan =
    R"({"defaults": {"weight_bits": 4, "nm": "2:4"}, "layers": {"features.0": {"weight_bits": 8, "nm": "none"}}})";
constexpr const char* kGptPlan =
    R"({"defaults": {"weight_bits": 4, "nm": "2:4"}, "layers": {"tokens": {"nm": "none"}}})";

struct Case {
  adze::Model fp32;
  std::unique_ptr<adze::packed::PackedModel> packed;
  at::Tensor input;
};

adze::Model trace(const std::string& name, int64_t batch) {
  torch::manual_seed(0);
  if (name == "fmnist-cnn") {
    adze::reference::FmnistCnn net;
    net->eval();
    return adze::trace_module(
        *net, [&](const at::Tensor& x) { return net->forward(x); }, {{batch, 1, 28, 28}, "float32"}, name);
  }
  adze::reference::FortuneGpt net;
  net->eval();
  return adze::trace_module(
      *net, [&](const at::Tensor& x) { return net->forward(x); }, {{batch, 64}, "int64"}, name);
}

// fp32 model and its 2:4 + INT4 packed export, traced at `batch`; made once per (model, batch).
Case& setup(const std::string& name, int64_t batch) {
  static std::map<std::pair<std::string, int64_t>, std::unique_ptr<Case>> cases;
  auto& slot = cases[{name, batch}];
  if (slot) return *slot;
  static const ScratchDir scratch;
  const std::string dir = (scratch.path / (name + "-" + std::to_string(batch))).string(), file = dir + ".adze";
  {
    adze::Model model = trace(name, batch);
    adze::CompressionContext c;
    c.model = &model;
    c.table = adze::build_layer_table(model);
    c.plan = adze::resolve_plan(
        adze::parse_plan(nlohmann::ordered_json::parse(name == "fmnist-cnn" ? kCnnPlan : kGptPlan), "plan"), c.table,
        "plan");
    const auto records = adze::run_pipeline(
        adze::parse_pipeline(nlohmann::ordered_json::parse(R"({"passes": ["sparsity.nm", "quantize.weights"]})"), "p"),
        c);
    adze::save_compressed(model, c.plan, c.encodings, adze::make_report(c, records), name, dir);
  }
  adze::export_model(adze::load_compressed(dir, batch), "packed", nlohmann::json::object(), file);
  slot = std::make_unique<Case>(
      Case{trace(name, batch), std::make_unique<adze::packed::PackedModel>(adze::packed::PackedModel::open(file)),
           name == "fmnist-cnn" ? torch::randn({batch, 1, 28, 28}) : torch::randint(256, {batch, 64}, torch::kLong)});
  return *slot;
}

double seconds_per_run(const std::function<void()>& fn, int runs) {
  const auto start = std::chrono::steady_clock::now();
  for (int i = 0; i < runs; ++i) fn();
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / runs;
}

void run(benchmark::State& state, const std::string& name, bool packed) {
  at::set_num_threads(1);
  torch::NoGradGuard no_grad;
  Case& c = setup(name, state.range(0));
  auto fp32 = [&] { benchmark::DoNotOptimize(c.fp32.forward(c.input)); };
  auto pk = [&] { benchmark::DoNotOptimize(c.packed->forward(c.input)); };
  for (auto _ : state) packed ? pk() : fp32();
  if (packed) {  // the ratio from runs of both, interleaved here so that they see the same machine state
    double a = 0, b = 0;
    for (int i = 0; i < 3; ++i) {
      a += seconds_per_run(pk, 5);
      b += seconds_per_run(fp32, 5);
    }
    state.counters["vs_fp32"] = a / b;
    state.counters["file_bytes"] = static_cast<double>(c.packed->file_bytes());
  }
}

void BM_Fp32_FmnistCnn(benchmark::State& s) { run(s, "fmnist-cnn", false); }
void BM_Packed_FmnistCnn(benchmark::State& s) { run(s, "fmnist-cnn", true); }
void BM_Fp32_FortuneGpt(benchmark::State& s) { run(s, "fortune-gpt", false); }
void BM_Packed_FortuneGpt(benchmark::State& s) { run(s, "fortune-gpt", true); }
BENCHMARK(BM_Fp32_FmnistCnn)->Arg(1)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Packed_FmnistCnn)->Arg(1)->Arg(64)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Fp32_FortuneGpt)->Arg(1)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();
BENCHMARK(BM_Packed_FortuneGpt)->Arg(1)->Arg(16)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

BENCHMARK_MAIN();
