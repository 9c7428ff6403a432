// The runtime's depthwise convolution (runtime/kernels/depthwise.h) against ATen's, on MobileNet-V2's depthwise
// layers at a 64×64 input (3×3, padding 1, batch 1, fp32): ours on the active instruction set
// (active_isa(); ADZE_ISA=avx2 or scalar forces a lower one) with its fused ReLU6, and at::conv2d with
// groups = channels on an NCHW-contiguous input, as a model given to ATen holds it (the convolution alone, its
// ReLU6 not counted). ADZE_BENCH_THREADS threads for both (default 1).
//
//   build/bench/depthwise_bench
//   ADZE_ISA=avx2 build/bench/depthwise_bench --benchmark_filter=adze
//   ADZE_BENCH_THREADS=2 build/bench/depthwise_bench --benchmark_filter=adze
#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <benchmark/benchmark.h>

#include <string>

#include "bench/bench_threads.h"
#include "core/isa.h"
#include "runtime/kernels/depthwise.h"

namespace {

using adze::runtime::DepthwiseShape;

const int kThreads = adze::bench::set_bench_threads();

struct Layer {
  int64_t c, hw, stride;
};

const Layer kLayers[] = {{32, 32, 1}, {96, 32, 2}, {144, 16, 1}, {144, 16, 2}, {192, 8, 1},
                         {384, 4, 1}, {576, 4, 1}, {576, 4, 2},  {960, 2, 1}};

DepthwiseShape shape_of(const Layer& l) {
  DepthwiseShape s;
  s.h = s.w = l.hw;
  s.c = l.c;
  s.stride_y = s.stride_x = l.stride;
  s.pad_y = s.pad_x = 1;
  return s;
}

void adze_depthwise(benchmark::State& state, Layer l) {
  const DepthwiseShape s = shape_of(l);
  // ATen's buffers (64-byte aligned), as the runtime passes them (float_ops.cc).
  const at::Tensor x = at::randn({1, s.h, s.w, s.c}), w = at::randn({9, s.c}), bias = at::randn({s.c});
  at::Tensor y = at::empty({1, s.out_h(), s.out_w(), s.c});
  const adze::Isa isa = adze::active_isa();
  for (auto _ : state) {
    adze::runtime::depthwise_conv2d_nhwc(s, x.data_ptr<float>(), w.data_ptr<float>(), bias.data_ptr<float>(), 0.0f,
                                         6.0f, y.data_ptr<float>(), isa);
    benchmark::DoNotOptimize(y.data_ptr());
    benchmark::ClobberMemory();
  }
  state.SetLabel(std::string(adze::to_string(isa)) + ", " + std::to_string(kThreads) + " thread(s)");
}

void aten_depthwise(benchmark::State& state, Layer l) {
  const at::Tensor x = at::randn({1, l.c, l.hw, l.hw}), w = at::randn({l.c, 1, 3, 3}), bias = at::randn({l.c});
  for (auto _ : state) {
    at::Tensor y = at::conv2d(x, w, bias, {l.stride, l.stride}, {1, 1}, {1, 1}, l.c);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.SetLabel("aten nchw, " + std::to_string(kThreads) + " thread(s)");
}

const int kRegistered = [] {
  for (const Layer& l : kLayers) {
    const std::string name = "c" + std::to_string(l.c) + "_" + std::to_string(l.hw) + "x" + std::to_string(l.hw) +
                             "_s" + std::to_string(l.stride);
    benchmark::RegisterBenchmark(("adze/" + name).c_str(), adze_depthwise, l)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("aten/" + name).c_str(), aten_depthwise, l)
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
  return 0;
}();

}  // namespace
