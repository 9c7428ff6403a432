// The integer matmul (runtime/kernels/qgemm.h) against the memory it has to read and against libtorch. Batch 1: for a
// 4096 x 4096 weight, qgemm of one activation row (GEMV) on the active instruction set (active_isa();
// ADZE_ISA=avx2 or scalar forces a lower one) for 2:4 + INT4, dense INT4 and dense INT8 weights, each followed by
// a streaming read of a buffer of the packed weights' size; libtorch's fp32 GEMV of the same layer (at::addmv on
// the system BLAS, with as many threads); and last a streaming read of 256 MB (beyond most last-level caches).
//
//   build/bench/qgemm_bench
//   ADZE_BENCH_THREADS=2 ADZE_ISA=avx2 build/bench/qgemm_bench
//
// ADZE_BENCH_THREADS threads (default 1) for OpenMP, ATen and the BLAS (OpenBLAS or MKL, whose own thread pools
// ignore the other two). Every benchmark reports the counter `read`: bytes read per wall-clock second (packed
// weights and their masks or positions for qgemm, the buffer for the streams), so that a GEMV's figure over the
// same-size stream's is the share of the reachable bandwidth it gets. The streams are one thread's sequential
// reads with the widest vector loads the CPU has (their label says which), into independent accumulators: the
// loads are the limit, not the adds.
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>
#include <immintrin.h>

#include <algorithm>
#include <cstdint>
#include <cstdlib>
#include <iterator>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "bench/bench_threads.h"
#include "core/isa.h"
#include "runtime/kernels/qgemm.h"

namespace {

using adze::runtime::PackedQWeights;
using adze::runtime::QActivations;

constexpr int64_t kRows = 4096, kK = 4096;

const int kThreads = adze::bench::set_bench_threads();

struct Case {
  const char* name;
  int bits;
  bool two_of_four;  // else dense
};

const Case kCases[] = {{"int4_2of4", 4, true}, {"int4_dense", 4, false}, {"int8_dense", 8, false}};

// A random symmetric weight of the case, packed, with one quantized activation row.
struct Gemv {
  PackedQWeights w;
  std::vector<uint8_t> q;
  float scale = 0.0f;
  int32_t zero = 0;
  std::vector<float> bias, y;

  explicit Gemv(const Case& c) {
    std::mt19937 rng(7);
    std::vector<uint8_t> u(static_cast<std::size_t>(kRows * kK));
    for (auto& v : u) v = static_cast<uint8_t>(rng() % (1u << c.bits));
    std::vector<char> keep;
    if (c.two_of_four) {  // two distinct positions of every four
      keep.assign(u.size(), 0);
      for (std::size_t g = 0; g < u.size(); g += 4) {
        const std::size_t first = rng() % 4;
        keep[g + first] = keep[g + (first + 1 + rng() % 3) % 4] = 1;
      }
    }
    const std::vector<int32_t> offset(kRows, 1 << (c.bits - 1));
    const std::vector<float> scales(kRows, 0.01f);
    w = adze::runtime::pack_qweights(kRows, kK, c.bits, u.data(),
                                     keep.empty() ? nullptr : reinterpret_cast<const bool*>(keep.data()), offset.data(),
                                     scales.data(), kK);
    std::vector<float> x(kK);
    std::normal_distribution<float> nd(0.0f, 1.0f);
    for (auto& v : x) v = nd(rng);
    q.resize(static_cast<std::size_t>(w.layout.k_pad));
    adze::runtime::quantize_rows_dynamic(x.data(), 1, kK, kK, nullptr, w.layout.k_pad, q.data(), &scale, &zero);
    bias.assign(kRows, 0.5f);
    y.resize(kRows);
  }
  int64_t bytes() const { return static_cast<int64_t>(w.planes.size() + w.mask.size() * sizeof(uint64_t)); }
};

Gemv& gemv(const Case& c) {  // packed once, on first use
  static std::vector<std::unique_ptr<Gemv>> built(std::size(kCases));
  std::unique_ptr<Gemv>& g = built[static_cast<std::size_t>(&c - kCases)];
  if (!g) g = std::make_unique<Gemv>(c);
  return *g;
}

void set_read(benchmark::State& state, int64_t bytes) {
  const double total = static_cast<double>(bytes) * static_cast<double>(state.iterations());
  state.counters["read"] = benchmark::Counter(total, benchmark::Counter::kIsRate);
  state.counters["threads"] = kThreads;
}

void qgemv(benchmark::State& state, const Case& c) {
  Gemv& g = gemv(c);
  const adze::Isa isa = adze::active_isa();
  const QActivations a{g.q.data(), 1, g.w.layout.k_pad, &g.scale, &g.zero};
  for (auto _ : state) {
    adze::runtime::qgemm(g.w.view(), a, g.bias.data(), g.y.data(), kRows, isa);
    benchmark::ClobberMemory();
  }
  state.SetLabel(adze::to_string(isa));
  set_read(state, g.bytes());
}

// Streaming reads: the sum of a buffer's 64-bit words, in eight independent accumulators of the widest vectors
// the CPU has. The bench is built for baseline x86-64, so each width is its own function compiled for its
// instruction set, chosen at run time.
__attribute__((target("avx512f"))) uint64_t sum_avx512(const uint8_t* p, int64_t bytes) {
  __m512i acc[8];
  for (__m512i& a : acc) a = _mm512_setzero_si512();
  for (int64_t i = 0; i < bytes; i += 8 * 64)
    for (int j = 0; j < 8; ++j) acc[j] = _mm512_add_epi64(acc[j], _mm512_load_si512(p + i + 64 * j));
  for (int j = 1; j < 8; ++j) acc[0] = _mm512_add_epi64(acc[0], acc[j]);
  alignas(64) uint64_t lanes[8];
  _mm512_store_si512(lanes, acc[0]);
  uint64_t s = 0;
  for (const uint64_t v : lanes) s += v;
  return s;
}

__attribute__((target("avx2"))) uint64_t sum_avx2(const uint8_t* p, int64_t bytes) {
  __m256i acc[8];
  for (__m256i& a : acc) a = _mm256_setzero_si256();
  for (int64_t i = 0; i < bytes; i += 8 * 32)
    for (int j = 0; j < 8; ++j)
      acc[j] = _mm256_add_epi64(acc[j], _mm256_load_si256(reinterpret_cast<const __m256i*>(p + i + 32 * j)));
  for (int j = 1; j < 8; ++j) acc[0] = _mm256_add_epi64(acc[0], acc[j]);
  alignas(32) uint64_t lanes[4];
  _mm256_store_si256(reinterpret_cast<__m256i*>(lanes), acc[0]);
  return lanes[0] + lanes[1] + lanes[2] + lanes[3];
}

uint64_t sum_sse2(const uint8_t* p, int64_t bytes) {
  __m128i acc[8];
  for (__m128i& a : acc) a = _mm_setzero_si128();
  for (int64_t i = 0; i < bytes; i += 8 * 16)
    for (int j = 0; j < 8; ++j)
      acc[j] = _mm_add_epi64(acc[j], _mm_load_si128(reinterpret_cast<const __m128i*>(p + i + 16 * j)));
  for (int j = 1; j < 8; ++j) acc[0] = _mm_add_epi64(acc[0], acc[j]);
  alignas(16) uint64_t lanes[2];
  _mm_store_si128(reinterpret_cast<__m128i*>(lanes), acc[0]);
  return lanes[0] + lanes[1];
}

struct StreamRead {
  const char* label;
  uint64_t (*sum)(const uint8_t* p, int64_t bytes);  // bytes: a multiple of 512, p 64-byte aligned
};

StreamRead widest_stream_read() {
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx512f")) return {"avx512 loads", sum_avx512};
  if (__builtin_cpu_supports("avx2")) return {"avx2 loads", sum_avx2};
  return {"sse2 loads", sum_sse2};
}

// Reads `bytes` (rounded up to 512; the counter counts `bytes`) from a buffer written once beforehand.
void stream_read(benchmark::State& state, int64_t bytes) {
  static const StreamRead read = widest_stream_read();
  const int64_t padded = (bytes + 511) / 512 * 512;
  const std::unique_ptr<uint8_t, decltype(&std::free)> buf(
      static_cast<uint8_t*>(std::aligned_alloc(64, static_cast<std::size_t>(padded))), &std::free);
  std::fill_n(buf.get(), padded, uint8_t{1});
  for (auto _ : state) benchmark::DoNotOptimize(read.sum(buf.get(), padded));
  state.SetLabel(read.label);
  set_read(state, bytes);
}

// The compute roof: vpdpbusd on registers alone (eight independent accumulators, no loads), on every thread at
// once, as multiply-adds per second in all. Run with ADZE_BENCH_THREADS=1 and 2, it shows what a second core
// adds where nothing else is shared: on some CPUs a core running 512-bit instructions slows down when another
// does too, which bounds every compute-bound kernel's gain from threads.
__attribute__((target("avx512f,avx512bw,avx512vnni"), noinline)) int64_t vnni_registers(int64_t steps) {
  __m512i a0 = _mm512_set1_epi32(0), a1 = a0, a2 = a0, a3 = a0, a4 = a0, a5 = a0, a6 = a0, a7 = a0;
  const __m512i x = _mm512_set1_epi8(3), w = _mm512_set1_epi8(5);
  for (int64_t i = 0; i < steps; ++i) {
    a0 = _mm512_dpbusd_epi32(a0, x, w);
    a1 = _mm512_dpbusd_epi32(a1, x, w);
    a2 = _mm512_dpbusd_epi32(a2, x, w);
    a3 = _mm512_dpbusd_epi32(a3, x, w);
    a4 = _mm512_dpbusd_epi32(a4, x, w);
    a5 = _mm512_dpbusd_epi32(a5, x, w);
    a6 = _mm512_dpbusd_epi32(a6, x, w);
    a7 = _mm512_dpbusd_epi32(a7, x, w);
    // Each accumulator kept in its register: the compiler may not merge the eight chains.
    __asm__ volatile("" : "+v"(a0), "+v"(a1), "+v"(a2), "+v"(a3), "+v"(a4), "+v"(a5), "+v"(a6), "+v"(a7));
  }
  const __m512i s = _mm512_add_epi32(_mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3)),
                                     _mm512_add_epi32(_mm512_add_epi32(a4, a5), _mm512_add_epi32(a6, a7)));
  alignas(64) int32_t lanes[16];
  _mm512_store_si512(lanes, s);
  int64_t sum = 0;
  for (const int32_t v : lanes) sum += v;
  return sum;
}

void vnni_peak(benchmark::State& state) {
  __builtin_cpu_init();
  if (!__builtin_cpu_supports("avx512vnni")) return state.SkipWithError("no AVX-512 VNNI on this CPU");
  constexpr int64_t kSteps = int64_t{1} << 16;
  int64_t sum = 0;
  for (auto _ : state) {
#pragma omp parallel num_threads(kThreads) reduction(+ : sum)
    sum += vnni_registers(kSteps);
  }
  benchmark::DoNotOptimize(sum);
  // 8 accumulators x 64 byte products per step.
  const double macs = static_cast<double>(kSteps * 8 * 64 * kThreads) * static_cast<double>(state.iterations());
  state.counters["mac"] = benchmark::Counter(macs, benchmark::Counter::kIsRate);
  state.counters["threads"] = kThreads;
}

// libtorch's fp32 GEMV of the same layer: the uncompressed baseline.
void fp32_gemv(benchmark::State& state) {
  at::manual_seed(7);
  const at::Tensor w = at::randn({kRows, kK}), x = at::randn({kK}), bias = at::randn({kRows});
  for (auto _ : state) benchmark::DoNotOptimize(at::addmv(bias, w, x));
  set_read(state, kRows * kK * static_cast<int64_t>(sizeof(float)));
}

struct GemmCase {
  const char* name;
  int64_t m, k, rows;
  int bits;
  bool two_of_four;
};

// Shapes of the models in docs/results: ResNet-18 at 64x64 (a layer1 conv, the stem, layer3's and layer4's
// 3x3 convs with 16 and 4 output positions, and 7: the most that take row_dot), a small transformer's qkv
// projection of 17 tokens, GPT's MLP.
const GemmCase kGemmCases[] = {{"conv_m256_k576_c64/int4_2of4", 256, 576, 64, 4, true},
                               {"linear_m64_k128_c384/int4_2of4", 64, 128, 384, 4, true},
                               {"stem_m1024_k147_c64/int8_dense", 1024, 147, 64, 8, false},
                               {"conv_m16_k2304_c256/int4_2of4", 16, 2304, 256, 4, true},
                               {"conv_m4_k4608_c512/int4_2of4", 4, 4608, 512, 4, true},
                               {"conv_m7_k4608_c512/int4_2of4", 7, 4608, 512, 4, true},
                               {"linear_m17_k64_c192/int4_2of4", 17, 64, 192, 4, true}};

void set_macs(benchmark::State& state, const GemmCase& c) {
  const double total = static_cast<double>(c.m * c.k * c.rows) * static_cast<double>(state.iterations());
  state.counters["mac"] = benchmark::Counter(total, benchmark::Counter::kIsRate);
  state.counters["threads"] = kThreads;
}

// `prepacked`: with the matrix's panels built beforehand (QPanels, as the runtime keeps them per layer);
// otherwise qgemm builds them per call where it uses them.
void qgemm_many(benchmark::State& state, const GemmCase& c, bool prepacked) {
  std::mt19937 rng(11);
  std::vector<uint8_t> u(static_cast<std::size_t>(c.rows * c.k));
  for (auto& v : u) v = static_cast<uint8_t>(rng() % (1u << c.bits));
  std::vector<char> keep;
  if (c.two_of_four) {
    keep.assign(u.size(), 0);
    for (std::size_t g = 0; g + 4 <= u.size(); g += 4) {
      const std::size_t first = rng() % 4;
      keep[g + first] = keep[g + (first + 1 + rng() % 3) % 4] = 1;
    }
  }
  const std::vector<int32_t> offset(static_cast<std::size_t>(c.rows), 1 << (c.bits - 1));
  const std::vector<float> scales(static_cast<std::size_t>(c.rows), 0.01f);
  const PackedQWeights w = adze::runtime::pack_qweights(
      c.rows, c.k, c.bits, u.data(), keep.empty() ? nullptr : reinterpret_cast<const bool*>(keep.data()), offset.data(),
      scales.data(), c.k);
  std::vector<float> x(static_cast<std::size_t>(c.m * c.k));
  std::normal_distribution<float> nd(0.0f, 1.0f);
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> q(static_cast<std::size_t>(c.m * w.layout.k_pad));
  std::vector<float> scale(static_cast<std::size_t>(c.m));
  std::vector<int32_t> zero(static_cast<std::size_t>(c.m));
  adze::runtime::quantize_rows_dynamic(x.data(), c.m, c.k, c.k, nullptr, w.layout.k_pad, q.data(), scale.data(),
                                       zero.data());
  const std::vector<float> bias(static_cast<std::size_t>(c.rows), 0.5f);
  std::vector<float> y(static_cast<std::size_t>(c.m * c.rows));
  const adze::Isa isa = adze::active_isa();
  const QActivations a{q.data(), c.m, w.layout.k_pad, scale.data(), zero.data()};
  const adze::runtime::QPanels panels = prepacked ? adze::runtime::QPanels(w.view(), isa) : adze::runtime::QPanels();
  for (auto _ : state) {
    adze::runtime::qgemm(w.view(), a, bias.data(), y.data(), c.rows, isa, {&panels});
    benchmark::ClobberMemory();
  }
  state.SetLabel(adze::to_string(isa));
  set_macs(state, c);
}

void fp32_mm(benchmark::State& state, const GemmCase& c) {
  at::manual_seed(7);
  const at::Tensor x = at::randn({c.m, c.k}), w = at::randn({c.rows, c.k});
  const at::Tensor wt = w.t();
  for (auto _ : state) benchmark::DoNotOptimize(at::mm(x, wt));
  set_macs(state, c);
}

// Quantizing activations, static (a calibrated range) and dynamic (each row's own): m rows of k values. 256x576:
// the conv case's im2col; 1024x16 and 1024x32: MobileNet-V2's 1x1 convolutions at 32x32 (a row per position);
// 64x128: fortune-gpt's tokens.
void quantize(benchmark::State& state, bool dynamic, int64_t m, int64_t k) {
  std::mt19937 rng(5);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(m * k));
  for (auto& v : x) v = nd(rng);
  std::vector<uint8_t> q(static_cast<std::size_t>(m * k));
  std::vector<float> scale(m);
  std::vector<int32_t> zero(m);
  for (auto _ : state) {
    if (dynamic)
      adze::runtime::quantize_rows_dynamic(x.data(), m, k, k, nullptr, k, q.data(), scale.data(), zero.data());
    else
      adze::runtime::quantize_rows_static(x.data(), m, k, k, nullptr, k, 0.03f, 128, q.data(), scale.data(),
                                          zero.data());
    benchmark::ClobberMemory();
  }
  state.counters["elements"] = benchmark::Counter(static_cast<double>(m * k) * static_cast<double>(state.iterations()),
                                                  benchmark::Counter::kIsRate);
}

const bool kRegistered = [] {
  for (const Case& c : kCases) {
    const std::string name = c.name;
    benchmark::RegisterBenchmark(("qgemv_4096x4096/" + name).c_str(), [&c](benchmark::State& s) { qgemv(s, c); })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("stream/same_size_as_" + name).c_str(),
                                 [&c](benchmark::State& s) { stream_read(s, gemv(c).bytes()); })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
  benchmark::RegisterBenchmark("fp32_gemv_4096x4096/libtorch", fp32_gemv)->Unit(benchmark::kMicrosecond)->UseRealTime();
  benchmark::RegisterBenchmark("vnni_peak/registers", vnni_peak)->Unit(benchmark::kMicrosecond)->UseRealTime();
  for (const GemmCase& c : kGemmCases) {
    const std::string name = c.name;
    benchmark::RegisterBenchmark(("qgemm_" + name).c_str(), [&c](benchmark::State& s) { qgemm_many(s, c, false); })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("qgemm_prepacked_" + name).c_str(),
                                 [&c](benchmark::State& s) { qgemm_many(s, c, true); })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
    benchmark::RegisterBenchmark(("fp32_mm_" + name.substr(0, name.find('/')) + "/libtorch").c_str(),
                                 [&c](benchmark::State& s) { fp32_mm(s, c); })
        ->Unit(benchmark::kMicrosecond)
        ->UseRealTime();
  }
  for (const bool dynamic : {false, true})
    for (const auto& [m, k] : {std::pair<int64_t, int64_t>{256, 576}, {1024, 16}, {1024, 32}, {64, 128}})
      benchmark::RegisterBenchmark(
          ((dynamic ? "quantize_rows_dynamic/" : "quantize_rows_static/") + std::to_string(m) + "x" + std::to_string(k))
              .c_str(),
          [dynamic = dynamic, m = m, k = k](benchmark::State& s) { quantize(s, dynamic, m, k); })
          ->Unit(benchmark::kMicrosecond)
          ->UseRealTime();
  benchmark::RegisterBenchmark("stream/256MB", [](benchmark::State& s) { stream_read(s, int64_t{256} << 20); })
      ->Unit(benchmark::kMicrosecond)
      ->UseRealTime();
  return true;
}();

}  // namespace
