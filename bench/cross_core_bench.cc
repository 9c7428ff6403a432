// What data crossing from one core to another costs on this machine: the ceiling on a layer-by-layer split of a
// model over two threads, whose every op reads rows the other thread wrote (a halo, a residual, the input of a
// layer split another way).
//
// - HandOff: a cache line passed to the other core and back (runtime::handoff_probe_seconds on two OpenMP
//   threads, as `adze bench`'s hand-off column); the time of a round trip. A barrier of two threads costs about
//   this.
// - ReadLines/self and /other: a buffer's cache lines read by this core (one word of each), written just before
//   by this core or by the other one; bytes per second. The ratio of the two is what an op loses on the rows
//   another core made.
//
// ReadLines pins its two threads to the first two CPUs this process may run on (both skipped with fewer). Usage:
//   build/bench/cross_core_bench [--benchmark_repetitions=5]
#include <benchmark/benchmark.h>
#include <omp.h>
#include <pthread.h>
#include <sched.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <cstring>
#include <thread>
#include <vector>

#include "runtime/machine_probe.h"

namespace {

// The first two CPUs of this process's affinity mask, or {-1, -1}.
std::pair<int, int> two_cpus() {
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) != 0) return {-1, -1};
  int found[2] = {-1, -1}, n = 0;
  for (int cpu = 0; cpu < CPU_SETSIZE && n < 2; ++cpu)
    if (CPU_ISSET(cpu, &set)) found[n++] = cpu;
  return n == 2 ? std::make_pair(found[0], found[1]) : std::make_pair(-1, -1);
}

void pin_to(int cpu) {
  cpu_set_t set;
  CPU_ZERO(&set);
  CPU_SET(cpu, &set);
  pthread_setaffinity_np(pthread_self(), sizeof set, &set);
}

// Restores the benchmark thread's affinity when a benchmark ends.
class PinnedHere {
 public:
  explicit PinnedHere(int cpu) {
    sched_getaffinity(0, sizeof saved_, &saved_);
    pin_to(cpu);
  }
  ~PinnedHere() { pthread_setaffinity_np(pthread_self(), sizeof saved_, &saved_); }
  PinnedHere(const PinnedHere&) = delete;
  PinnedHere& operator=(const PinnedHere&) = delete;

 private:
  cpu_set_t saved_;
};

// runtime::handoff_probe_seconds() on two OpenMP threads: what `adze bench` reports in its hand-off column.
void BM_HandOff(benchmark::State& state) {
  if (two_cpus().first < 0) return state.SkipWithError("needs two CPUs");
  const int threads = omp_get_max_threads();
  omp_set_num_threads(2);
  double seconds = 0;  // each iteration is one probe of up to 2,000 round trips: its figure is one round trip's
  for (auto _ : state) seconds += adze::runtime::handoff_probe_seconds();
  omp_set_num_threads(threads);
  state.counters["round_trip_ns"] = seconds / static_cast<double>(state.iterations()) * 1e9;
  state.SetLabel("round_trip_ns: one round trip of a cache line");
}
BENCHMARK(BM_HandOff)->UseRealTime();

// Arg 0: the bytes read; arg 1: 1 where the other core wrote them, 0 where this one did.
void BM_ReadLines(benchmark::State& state) {
  const auto [here, there] = two_cpus();
  if (here < 0) return state.SkipWithError("needs two CPUs");
  const auto bytes = static_cast<std::size_t>(state.range(0));
  const bool by_other = state.range(1) != 0;
  PinnedHere pinned(here);
  std::vector<uint64_t> buffer(bytes / sizeof(uint64_t), 1);
  alignas(64) std::atomic<int> request{0};  // 1: write the buffer; 2: written; -1: end
  std::thread other([&, there = there] {
    pin_to(there);
    for (uint64_t value = 2;; ++value) {
      int r;
      while ((r = request.load(std::memory_order_acquire)) != 1)
        if (r < 0) return;
      std::fill(buffer.begin(), buffer.end(), value);
      request.store(2, std::memory_order_release);
    }
  });
  uint64_t value = 1, sum = 0;
  for (auto _ : state) {
    if (by_other) {
      request.store(1, std::memory_order_release);
      while (request.load(std::memory_order_acquire) != 2) {
      }
    } else {
      std::fill(buffer.begin(), buffer.end(), ++value);
    }
    const auto start = std::chrono::steady_clock::now();
    // One word of each 64-byte line: the lines' movement is timed, not this core's adds.
    for (std::size_t w = 0; w < buffer.size(); w += 8) sum += buffer[w];
    benchmark::DoNotOptimize(sum);
    state.SetIterationTime(std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
  request.store(-1, std::memory_order_release);
  other.join();
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations()) * static_cast<int64_t>(bytes));
  state.SetLabel(by_other ? "written by the other core" : "written by this core");
}
// 64 KiB: a ResNet-18 layer1 activation at 64x64 (16x16x64 floats); 1 MiB: a larger one.
BENCHMARK(BM_ReadLines)->UseManualTime()->ArgsProduct({{64 << 10, 1 << 20}, {0, 1}});

}  // namespace
