#include "runtime/machine_probe.h"

#include <omp.h>

#include <atomic>
#include <chrono>
#include <cstdint>

#include "runtime/parallel.h"

namespace adze {
namespace runtime {
namespace {

// Twenty-four independent chains of x = x * m + c (m just below 1, so the values stay normal floats): enough
// that one thread keeps its core's floating-point units busy, rather than waiting on a chain's latency, so that
// two virtual CPUs on one physical core's hyperthreads share those units and the probe sees it.
constexpr int kChains = 24;
constexpr int kSteps = 1 << 17;

double probe_chains(double m, double c) {
  double x[kChains];
  for (int i = 0; i < kChains; ++i) x[i] = 1.0 + 0.01 * i;
  for (int step = 0; step < kSteps; ++step)
    for (double& v : x) v = v * m + c;
  double sum = 0;
  for (double v : x) sum += v;
  return sum;
}

}  // namespace

double machine_probe_seconds() {
  // Read through volatiles, so that the compiler can neither fold the chains nor drop a thread's result.
  volatile double m = 0.999999, c = 1e-7, sink = 0;
  const double mm = m, cc = c;
  const auto start = std::chrono::steady_clock::now();
#pragma omp parallel
  {
    const double s = probe_chains(mm, cc);
#pragma omp critical(adze_machine_probe)
    sink = sink + s;
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

double handoff_probe_seconds() {
  if (omp_get_max_threads() < 2) return 0;
  // 2,000 round trips, or as many as fit in 2 ms where the two threads share one CPU (each wait then spins and
  // yields: spin_until).
  constexpr int64_t kRoundTrips = 2000;
  constexpr double kBudgetSeconds = 2e-3;
  alignas(64) std::atomic<int64_t> turn{0};
  double seconds = 0;
#pragma omp parallel
  {
    // Thread 0 writes each odd value and waits for the next even one, which thread 1 writes on seeing it; -1
    // ends thread 1's loop.
    const int me = omp_get_thread_num();
    if (omp_get_num_threads() < 2) {
      // A team of one (inside another region, or OpenMP gave fewer threads): no round trip to time.
    } else if (me == 0) {
      const auto start = std::chrono::steady_clock::now();
      int64_t trips = 0;
      double elapsed = 0;
      while (trips < kRoundTrips && elapsed < kBudgetSeconds) {
        const int64_t odd = 2 * trips + 1;
        turn.store(odd, std::memory_order_release);
        spin_until([&] { return turn.load(std::memory_order_acquire) == odd + 1; });
        ++trips;
        elapsed = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      }
      turn.store(-1, std::memory_order_release);
      seconds = elapsed / static_cast<double>(trips);
    } else if (me == 1) {
      for (int64_t odd = 1;; odd += 2) {
        int64_t seen = 0;
        spin_until([&] {
          seen = turn.load(std::memory_order_acquire);
          return seen == odd || seen < 0;
        });
        if (seen < 0) break;
        turn.store(odd + 1, std::memory_order_release);
      }
    }
  }
  return seconds;
}

}  // namespace runtime
}  // namespace adze
