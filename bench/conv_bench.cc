// A whole convolution in the packed runtime (packed_conv2d: input quantized, patches gathered, the integer
// kernels, output channels last) against ATen's fp32 conv2d of the same shape, on ResNet-18's convolutions and
// MobileNet-V2's stem and early 1x1 ones at a 64x64 input: how each scales with threads, where the GEMM alone
// (qgemm_bench) is not the whole story.
//
//   ADZE_BENCH_THREADS=1 build/bench/conv_bench
//   ADZE_BENCH_THREADS=2 build/bench/conv_bench
//
// ADZE_BENCH_THREADS threads (default 1) for OpenMP and ATen. W8A8 runs the calibrated (static) path, 2:4 + INT4
// quantizes its input at run time (dynamic), as the runtime runs each plan. Inputs are channels last, as one
// convolution leaves them for the next; the stem also takes its input in planes (w8a8_planar_input), as a
// model's input arrives: the difference is the transpose to channels last (6.5 us at one thread, the fastest
// of 15 repetitions; quantizing each plane's row and interleaving the codes in the parallel pass was no faster,
// its byte stores as slow as ATen's copy).
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <memory>
#include <string>

#include "bench/bench_threads.h"
#include "hardware/host_lut.h"
#include "model/layer_table.h"
#include "runtime/buffer_pool.h"
#include "runtime/packed_ops.h"

namespace {

using namespace adze;

const int kThreads = adze::bench::set_bench_threads();

struct ConvCase {
  const char* name;
  int64_t cin, cout, k, side, stride, padding;
};

// ResNet-18 at 64x64 (after the stem and pooling: 16x16, 8x8, 4x4, 2x2).
const ConvCase kCases[] = {{"stem_7x7s2_3to64_64px", 3, 64, 7, 64, 2, 3},
                           {"layer1_3x3_64_16px", 64, 64, 3, 16, 1, 1},
                           {"layer2_3x3s2_64to128_16px", 64, 128, 3, 16, 2, 1},
                           {"layer2_downsample_1x1s2_64to128_16px", 64, 128, 1, 16, 2, 0},
                           {"layer2_3x3_128_8px", 128, 128, 3, 8, 1, 1},
                           {"layer3_3x3_256_4px", 256, 256, 3, 4, 1, 1},
                           {"layer4_3x3_512_2px", 512, 512, 3, 2, 1, 1},
                           // MobileNet-V2 at 64x64: its stem, and its 1x1 convolutions at 32x32, where few input
                           // channels meet many positions.
                           {"mnv2_stem_3x3s2_3to32_64px", 3, 32, 3, 64, 2, 1},
                           {"mnv2_project_1x1_32to16_32px", 32, 16, 1, 32, 1, 0},
                           {"mnv2_expand_1x1_16to96_32px", 16, 96, 1, 32, 1, 0},
                           {"mnv2_project_1x1_96to24_32px", 96, 24, 1, 32, 1, 0}};

Layer layer_of(const ConvCase& c) {
  Layer l;
  l.name = l.weight = "conv";
  l.kind = LayerKind::kConv2d;
  l.weight_shape = {c.cout, c.cin, c.k, c.k};
  l.params = c.cout * c.cin * c.k * c.k;
  l.in_channels = c.cin, l.out_channels = c.cout, l.reduction_size = c.cin * c.k * c.k;
  return l;
}

void packed(benchmark::State& state, const ConvCase& c, bool w8a8, bool planar = false) {
  at::manual_seed(0);
  LayerConfig config;
  config.weight_bits = w8a8 ? 8 : 4;
  if (!w8a8) config.nm = NMPattern::parse("2:4");
  packed::PackedLayer stored;
  const auto view = packed_layer_view(at::randn({c.cout, c.cin, c.k, c.k}), layer_of(c), config, stored);
  const at::Tensor x = at::randn({1, c.cin, c.side, c.side})
                           .contiguous(planar ? at::MemoryFormat::Contiguous : at::MemoryFormat::ChannelsLast);
  const packed::ActivationQuant act{0.05f, 128};
  const std::vector<int64_t> stride{c.stride, c.stride}, padding{c.padding, c.padding}, dilation{1, 1};
  const auto pool = runtime::BufferPool::make();
  const runtime::PoolScope scope(pool.get());
  for (auto _ : state) {
    at::Tensor y = packed::packed_conv2d(*view, x, at::Tensor(), stride, padding, dilation, w8a8 ? &act : nullptr, true,
                                         {}, false);
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.SetLabel(std::to_string(kThreads) + " thread(s)");
}

void fp32(benchmark::State& state, const ConvCase& c) {
  const at::Tensor w = at::randn({c.cout, c.cin, c.k, c.k});
  const at::Tensor x = at::randn({1, c.cin, c.side, c.side});
  for (auto _ : state) {
    at::Tensor y = at::conv2d(x, w, {}, {c.stride, c.stride}, {c.padding, c.padding});
    benchmark::DoNotOptimize(y.data_ptr());
  }
  state.SetLabel(std::to_string(kThreads) + " thread(s)");
}

const bool kRegistered = [] {
  for (const ConvCase& c : kCases) {
    const std::string name = c.name;
    benchmark::RegisterBenchmark((name + "/w8a8").c_str(), [&c](benchmark::State& s) { packed(s, c, true); })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    if (c.cin < 4)  // a model's first convolution
      benchmark::RegisterBenchmark((name + "/w8a8_planar_input").c_str(),
                                   [&c](benchmark::State& s) { packed(s, c, true, true); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    if (c.cin % 4 == 0)  // 2:4 groups run along the input channels
      benchmark::RegisterBenchmark((name + "/int4_2of4").c_str(), [&c](benchmark::State& s) { packed(s, c, false); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
    benchmark::RegisterBenchmark((name + "/aten_fp32").c_str(), [&c](benchmark::State& s) { fp32(s, c); })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
  return true;
}();

}  // namespace
