#include "runtime/machine_probe.h"

#include <omp.h>

#include <chrono>

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

}  // namespace runtime
}  // namespace adze
