// An op's output tensor made and freed, three ways, side by side: the runtime's pool (runtime/buffer_pool.h: a
// tensor made directly over a recycled block), the pool as it was until 2026-12-02 (at::from_blob over a
// recycled block with a std::function deleter), and ATen's own allocator. A packed model makes one per own op and
// run (ResNet-18: 23 of its 24 ops; fortune-gpt: 32 of 64), on the thread that runs the model, between the ops'
// parallel regions.
//
//   build/bench/buffer_pool_bench
#include <ATen/ATen.h>
#include <benchmark/benchmark.h>

#include <cstdlib>
#include <map>
#include <memory>
#include <mutex>
#include <new>
#include <vector>

#include "runtime/buffer_pool.h"

namespace {

using namespace adze;

// A convolution's output as the runtime leaves it: [1, 128, 8, 8] channels last (ResNet-18's layer2 at 64x64).
const std::vector<int64_t> kSizes = {1, 128, 8, 8}, kStrides = {8192, 1, 1024, 128};

void BM_Pool(benchmark::State& state) {
  const auto pool = runtime::BufferPool::make();
  const runtime::PoolScope scope(pool.get());
  for (auto _ : state) {
    at::Tensor y = runtime::empty_output(kSizes, at::kFloat, kStrides);
    benchmark::DoNotOptimize(y.data_ptr());
  }
}

// The pool as it was until 2026-12-02: free buffers in a std::multimap under a mutex, each tensor made by
// at::from_blob with a std::function deleter that holds the pool and the size.
struct OldPool : std::enable_shared_from_this<OldPool> {
  std::mutex mutex;
  std::multimap<std::size_t, void*> free;
  ~OldPool() {
    for (auto& [bytes, p] : free) std::free(p);
  }
  at::Tensor empty(std::size_t bytes) {
    void* p = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex);
      if (const auto it = free.find(bytes); it != free.end()) {
        p = it->second;
        free.erase(it);
      }
    }
    if (!p && posix_memalign(&p, 64, bytes) != 0) throw std::bad_alloc();
    std::shared_ptr<OldPool> self = shared_from_this();
    return at::from_blob(
        p, kSizes, kStrides,
        [self, bytes](void* q) {
          std::lock_guard<std::mutex> lock(self->mutex);
          self->free.emplace(bytes, q);
        },
        at::TensorOptions().dtype(at::kFloat));
  }
};

void BM_OldPoolFromBlob(benchmark::State& state) {
  const auto pool = std::make_shared<OldPool>();
  for (auto _ : state) {
    at::Tensor y = pool->empty(8192 * sizeof(float));
    benchmark::DoNotOptimize(y.data_ptr());
  }
}

void BM_AtenEmptyStrided(benchmark::State& state) {
  for (auto _ : state) {
    at::Tensor y = at::empty_strided(kSizes, kStrides, at::TensorOptions().dtype(at::kFloat));
    benchmark::DoNotOptimize(y.data_ptr());
  }
}

BENCHMARK(BM_Pool)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_OldPoolFromBlob)->Unit(benchmark::kNanosecond);
BENCHMARK(BM_AtenEmptyStrided)->Unit(benchmark::kNanosecond);

}  // namespace
