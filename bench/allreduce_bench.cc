// What one data-parallel gradient average costs on this machine: GradientSync::average (an all-reduce of one
// float tensor, then the division) over Gloo or MPI, timed on every rank of one mpirun, by size. Rank 0 prints a line
// per size: the median and the 10th/90th percentiles of the wall time of one average, and the bytes averaged per second
// at the median. scripts/ddp-bench.sh runs it at the size of fmnist-cnn's gradients, beside the fine-tuning's speed-up,
// because that all-reduce is what two ranks add to a step.
//
// Usage: mpirun --bind-to none -n 2 -x ADZE_STORE=PATH build/bench/allreduce_bench gloo|mpi [ITERATIONS [BYTES...]]
// (ITERATIONS default 200; BYTES default 4 KiB to 4 MiB by fours). Gloo meets through ADZE_STORE (or
// ADZE_MASTER=host:port), as `adze compress --data-parallel` does; MPI needs neither.
#include <ATen/ATen.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <memory>
#include <string>
#include <vector>

#include "distributed/gloo_sync.h"
#include "distributed/mpi_sync.h"

namespace {

int64_t positive(const char* text, const char* what) {
  char* end = nullptr;
  const long long v = std::strtoll(text, &end, 10);
  if (*text == '\0' || *end != '\0' || v < 1 || v > (int64_t{1} << 32)) {
    std::fprintf(stderr, "allreduce_bench: %s '%s' is not a whole number from 1 to 2^32\n", what, text);
    std::exit(2);
  }
  return v;
}

}  // namespace

int main(int argc, char** argv) try {
  const std::string backend = argc > 1 ? argv[1] : "";
  if (backend != "gloo" && backend != "mpi") {
    std::fprintf(stderr, "usage: mpirun -n 2 allreduce_bench gloo|mpi [ITERATIONS [BYTES...]]\n");
    return 2;
  }
  const int iterations = argc > 2 ? static_cast<int>(positive(argv[2], "ITERATIONS")) : 200;
  std::vector<int64_t> sizes;
  for (int i = 3; i < argc; ++i) sizes.push_back(positive(argv[i], "BYTES"));
  if (sizes.empty())
    for (int64_t bytes = int64_t{4} << 10; bytes <= int64_t{4} << 20; bytes *= 4) sizes.push_back(bytes);
  std::shared_ptr<adze::GradientSync> sync;
  if (backend == "mpi") {
    sync = adze::mpi_gradient_sync();
  } else {
    const auto rendezvous = adze::rendezvous_from_environment();
    if (!rendezvous) {
      std::fprintf(stderr, "allreduce_bench: run it under mpirun, with ADZE_STORE or ADZE_MASTER set\n");
      return 2;
    }
    sync = adze::gloo_gradient_sync(*rendezvous);
  }
  constexpr int kWarmUp = 5;
  for (const int64_t bytes : sizes) {
    std::vector<at::Tensor> t = {at::ones({std::max<int64_t>(1, bytes / 4)})};
    std::vector<double> us;
    for (int i = 0; i < iterations + kWarmUp; ++i) {
      const auto start = std::chrono::steady_clock::now();
      sync->average(t);
      const std::chrono::duration<double, std::micro> took = std::chrono::steady_clock::now() - start;
      if (i >= kWarmUp) us.push_back(took.count());
    }
    std::sort(us.begin(), us.end());
    const double median = us[us.size() / 2];
    if (sync->rank() == 0)
      std::printf("| %s | %d | %.1f | %.0f | %.0f | %.0f | %.2f |\n", backend.c_str(), sync->size(),
                  static_cast<double>(bytes) / 1024, median, us[us.size() / 10], us[us.size() * 9 / 10],
                  static_cast<double>(bytes) / median / 1e3);
  }
  return 0;
} catch (const std::exception& e) {
  std::fprintf(stderr, "allreduce_bench: %s\n", e.what());
  return 2;
}
