// A low-rank layer in the packed runtime against the same layer dense, batch 1: a 1024 x 1024 linear
// layer with INT8 weights, dense, and as a rank-128 (K/8) product of two INT8 factors run one after the other
// (runtime/FORMAT.md, "Decomposed layers") in one call as the runtime runs them (packed_factored_matmul) and in
// two packed_matmul calls, all on the integer kernels of the active
// instruction set with activations quantized per row, as the runtime runs weight-only layers; and libtorch's
// fp32 matrix-vector product of the dense layer. Compare the rows' times: the ratio is the speed-up.
//
// ADZE_BENCH_THREADS threads (default 1) for OpenMP (the runtime's kernels) and ATen.
//
//   build/bench/decompose_bench
//   ADZE_ISA=avx2 ADZE_BENCH_THREADS=2 build/bench/decompose_bench
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <vector>

#include "bench/bench_threads.h"
#include "compress/encoding.h"
#include "core/isa.h"
#include "model/layer_table.h"
#include "runtime/packed_layer.h"
#include "runtime/packed_ops.h"

namespace {

constexpr int64_t kSize = 1024, kRank = kSize / 8, kBlocks = 4;

const int kThreads = adze::bench::set_bench_threads();

// One packed layer and its view, as the runtime holds it after opening a file.
struct Stored {
  adze::packed::PackedLayer packed;
  std::unique_ptr<adze::packed::LayerView> view;
  explicit Stored(const adze::Encoding& e, const std::string& name) : packed(adze::packed::pack_layer(name, e)) {
    std::map<std::string, adze::packed::TensorSpan> spans;
    for (const auto& t : packed.tensors)
      spans[t.name] = {t.dtype, t.shape, reinterpret_cast<const uint8_t*>(t.bytes.data()),
                       static_cast<int64_t>(t.bytes.size())};
    view = std::make_unique<adze::packed::LayerView>(nlohmann::json::parse(packed.header.dump()), spans, name);
  }
};

struct Layers {
  at::Tensor weight, x;
  std::unique_ptr<Stored> dense, first, second, monarch_first, monarch_second;
  Layers() {
    torch::manual_seed(0);
    weight = torch::randn({kSize, kSize}) * 0.03;
    x = torch::randn({1, kSize});
    adze::Layer layer;
    layer.name = layer.weight = "fc";
    layer.weight_shape = {kSize, kSize};
    layer.params = kSize * kSize;
    layer.in_channels = layer.out_channels = layer.reduction_size = kSize;
    adze::LayerConfig int8;
    int8.weight_bits = 8;
    dense = std::make_unique<Stored>(adze::project(weight, layer, int8), "fc");
    // The layer decomposed with INT8 factors, each factor stored as the runtime holds it.
    const auto factors = [&](adze::Decomposition d, std::unique_ptr<Stored>* a, std::unique_ptr<Stored>* b) {
      adze::LayerConfig c = int8;
      c.decompose = d;
      c.rank = kRank;
      c.blocks = kBlocks;
      const adze::Encoding e = adze::project(weight, layer, c);
      *a = std::make_unique<Stored>(e.factors[0], "fc#first");
      *b = std::make_unique<Stored>(e.factors[1], "fc#second");
    };
    factors(adze::Decomposition::kLowRank, &first, &second);
    factors(adze::Decomposition::kMonarch, &monarch_first, &monarch_second);
  }
};

Layers& layers() {
  static Layers l;
  return l;
}

void label(benchmark::State& state, int64_t weights) {
  state.SetLabel(adze::to_string(adze::active_isa()));
  state.counters["weights"] = static_cast<double>(weights);
  state.counters["threads"] = kThreads;
}

void dense_int8(benchmark::State& state) {
  Layers& l = layers();
  for (auto _ : state) benchmark::DoNotOptimize(adze::packed::packed_matmul(*l.dense->view, l.x, {}, nullptr, true));
  label(state, kSize * kSize);
}

// The factors in one call, as the runtime runs them (runtime/fusion.h) ...
void lowrank_int8(benchmark::State& state) {
  Layers& l = layers();
  for (auto _ : state)
    benchmark::DoNotOptimize(adze::packed::packed_factored_matmul(*l.first->view, *l.second->view, l.x, {}));
  label(state, 2 * kRank * kSize);
}

// ... and in two calls, the first's product a tensor.
void lowrank_two_calls(benchmark::State& state) {
  Layers& l = layers();
  for (auto _ : state) {
    const at::Tensor mid = adze::packed::packed_matmul(*l.first->view, l.x, {}, nullptr, true);
    benchmark::DoNotOptimize(adze::packed::packed_matmul(*l.second->view, mid, {}, nullptr, true));
  }
  label(state, 2 * kRank * kSize);
}

// Each factor alone: where the factored layer's time goes.
void factor_alone(benchmark::State& state, bool first) {
  Layers& l = layers();
  const at::Tensor in = first ? l.x : torch::randn({1, kRank});
  const Stored& f = first ? *l.first : *l.second;
  for (auto _ : state) benchmark::DoNotOptimize(adze::packed::packed_matmul(*f.view, in, {}, nullptr, true));
  label(state, kRank * kSize);
}

// Monarch with 4 blocks (b·K + C·b weights), as the runtime runs it.
void monarch_int8(benchmark::State& state) {
  Layers& l = layers();
  for (auto _ : state)
    benchmark::DoNotOptimize(
        adze::packed::packed_monarch_matmul(*l.monarch_first->view, *l.monarch_second->view, l.x, {}, true));
  label(state, 2 * kBlocks * kSize);
}

void fp32_libtorch(benchmark::State& state) {
  Layers& l = layers();
  for (auto _ : state) benchmark::DoNotOptimize(at::mm(l.x, l.weight.t()));
  state.counters["weights"] = static_cast<double>(kSize * kSize);
}

BENCHMARK(dense_int8)->Name("linear_1024x1024/dense_int8")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(lowrank_int8)->Name("linear_1024x1024/rank128_int8")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(lowrank_two_calls)
    ->Name("linear_1024x1024/rank128_int8/two_calls")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(factor_alone, first, true)
    ->Name("linear_1024x1024/rank128_int8/first_factor_128x1024")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK_CAPTURE(factor_alone, second, false)
    ->Name("linear_1024x1024/rank128_int8/second_factor_1024x128")
    ->Unit(benchmark::kMicrosecond)
    ->UseRealTime();
BENCHMARK(monarch_int8)->Name("linear_1024x1024/monarch4_int8")->Unit(benchmark::kMicrosecond)->UseRealTime();
BENCHMARK(fp32_libtorch)->Name("linear_1024x1024/fp32_libtorch")->Unit(benchmark::kMicrosecond)->UseRealTime();

}  // namespace
