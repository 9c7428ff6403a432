// Throughput of the weight projections on a 4096x4096 fp32 matrix (64 MiB), one thread, side by side with a
// plain ATen formulation (topk for N:M, torch::fake_quantize_per_channel_affine for INT4) as the peer.
//
//   build/bench/projection_bench
//
// bytes_per_second is input bytes (the fp32 weight) per second; the bar for 2:4 + INT4 is >= 1 GB/s.
#include <benchmark/benchmark.h>
#include <torch/torch.h>

#include "compress/encoding.h"
#include "model/layer_table.h"

namespace {

constexpr int64_t kRows = 4096, kCols = 4096;

const at::Tensor& weight() {
  static const at::Tensor w = [] {
    torch::manual_seed(0);
    return torch::randn({kRows, kCols});
  }();
  return w;
}

adze::Layer linear_layer() {
  adze::Layer l;
  l.name = "bench";
  l.kind = adze::LayerKind::kLinear;
  l.weight_shape = {kRows, kCols};
  l.reduction_dim = 1;
  l.reduction_size = kCols;
  return l;
}

void set_bytes(benchmark::State& state) {
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * kRows * kCols * 4);
}

void BM_Adze_NM24(benchmark::State& state) {
  adze::LayerConfig c;
  c.nm = {2, 4};
  const adze::Layer layer = linear_layer();
  for (auto _ : state) benchmark::DoNotOptimize(adze::project(weight(), layer, c));
  set_bytes(state);
}
BENCHMARK(BM_Adze_NM24)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Adze_NM24_Int4(benchmark::State& state) {
  adze::LayerConfig c;
  c.nm = {2, 4};
  c.weight_bits = 4;
  const adze::Layer layer = linear_layer();
  for (auto _ : state) benchmark::DoNotOptimize(adze::project(weight(), layer, c));
  set_bytes(state);
}
BENCHMARK(BM_Adze_NM24_Int4)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Adze_Int4_Mse(benchmark::State& state) {
  adze::LayerConfig c;
  c.weight_bits = 4;
  c.scale_method = adze::ScaleMethod::kMse;
  const adze::Layer layer = linear_layer();
  for (auto _ : state) benchmark::DoNotOptimize(adze::project(weight(), layer, c));
  set_bytes(state);
}
BENCHMARK(BM_Adze_Int4_Mse)->Unit(benchmark::kMillisecond)->UseRealTime();

// The peer: the same 2:4 + INT4 per-channel projection written with stock ATen ops.
void BM_Aten_NM24_Int4(benchmark::State& state) {
  for (auto _ : state) {
    const at::Tensor& w = weight();
    at::Tensor groups = w.reshape({-1, 4});
    at::Tensor idx = std::get<1>(groups.abs().topk(2, 1));
    at::Tensor mask = torch::zeros_like(groups, torch::kBool).scatter_(1, idx, true).view_as(w);
    at::Tensor kept = w * mask;
    at::Tensor scale = (std::get<0>(kept.abs().max(1)) / 7.0).clamp_min(1e-12);
    benchmark::DoNotOptimize(
        torch::fake_quantize_per_channel_affine(kept, scale, torch::zeros({kRows}, torch::kInt), 0, -8, 7));
  }
  set_bytes(state);
}
BENCHMARK(BM_Aten_NM24_Int4)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace

int main(int argc, char** argv) {
  torch::set_num_threads(1);
  benchmark::Initialize(&argc, argv);
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}

namespace {

// The stages of 2:4 + INT4 on their own, to see where the time goes.
void BM_Stage_NMMask(benchmark::State& state) {
  for (auto _ : state) benchmark::DoNotOptimize(adze::nm_mask_rows(weight(), {2, 4}));
  set_bytes(state);
}
BENCHMARK(BM_Stage_NMMask)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Stage_RowParams(benchmark::State& state) {
  const at::Tensor keep = adze::nm_mask_rows(weight(), {2, 4});
  adze::UniformSpec spec;
  spec.bits = 4;
  for (auto _ : state) benchmark::DoNotOptimize(adze::choose_row_params(weight(), spec, keep));
  set_bytes(state);
}
BENCHMARK(BM_Stage_RowParams)->Unit(benchmark::kMillisecond)->UseRealTime();

void BM_Stage_Codes(benchmark::State& state) {
  const at::Tensor keep = adze::nm_mask_rows(weight(), {2, 4});
  adze::UniformSpec spec;
  spec.bits = 4;
  const adze::RowQuantParams p = adze::choose_row_params(weight(), spec, keep);
  for (auto _ : state) benchmark::DoNotOptimize(adze::quantize_rows(weight(), p, spec, keep));
  set_bytes(state);
}
BENCHMARK(BM_Stage_Codes)->Unit(benchmark::kMillisecond)->UseRealTime();

}  // namespace
