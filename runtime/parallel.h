// Work split over OpenMP threads only where it pays (internal to runtime/).
#pragma once

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace adze {
namespace runtime {

/// Runs `body`, whose loops are shared with `omp for`, on the OpenMP team where `parallel` and there is more than
/// one thread, else on this thread without entering a parallel region: an `omp parallel if (false)` region of
/// one thread still costs libgomp a team allocation and a futex wake per call (perf on decompose_bench: about a
/// tenth of a batch-1 rank-128 layer's time, 3.6 -> 3.2 us across builds). An `omp for` outside a region runs its whole
/// loop on the calling thread.
template <typename Body>
void maybe_parallel(bool parallel, const Body& body) {
  if (!parallel || omp_get_max_threads() < 2) return body();
#pragma omp parallel
  body();
}

/// Items [0, n) shared out over a parallel region's threads as `omp for schedule(static)` shares them (thread i
/// owns [n·i/T, n·(i+1)/T)), each thread taking its own in order; a thread that has finished its own then takes
/// the others' last items, one at a time from the back. The cores of a shared or virtual machine run at
/// different speeds from moment to moment, and a static split makes every region as slow as its slower thread
/// (ResNet-18 at 64x64 on two threads, timestamps around each region's body: the two threads' bodies ended
/// 5-10 us apart on average, in either order, in regions of 26-45 us). Here each thread still works on its own
/// share, whose data stays in its cache from call to call, and only the slower thread's tail moves.
///
/// Constructed outside the region (shared by its threads, on the stack: nothing is allocated) for
/// omp_get_max_threads() threads; run() inside it. Where the region has another number of threads (or none), or
/// more than kMaxThreads, each thread takes the static share of its own number only, as `omp for
/// schedule(static)` would.
class StealingShares {
 public:
  static constexpr int kMaxThreads = 64;

  /// `ready`: a thread prepares something its items need (marking it with ready()) before another may take them.
  explicit StealingShares(int64_t items, bool ready = false)
      : threads_(std::min(omp_get_max_threads(), kMaxThreads)), items_(items) {
    for (int i = 0; i < threads_; ++i) {
      shares_[i].range.store(pack(begin(i, threads_), begin(i + 1, threads_)), std::memory_order_relaxed);
      shares_[i].ready.store(!ready, std::memory_order_relaxed);
    }
  }

  /// Thread `thread`'s own items, [first, last), of `threads` threads.
  int64_t begin(int thread, int threads) const { return items_ * thread / threads; }

  /// This thread's share is ready for others to take from.
  void ready() { shares_[omp_get_thread_num()].ready.store(true, std::memory_order_release); }

  /// f(item) for each item this thread takes: its own, then the others' where its team is the one planned for.
  template <class F>
  void run(F f) {
    const int t = omp_get_thread_num(), n = omp_get_num_threads();
    if (n != threads_ || items_ > INT32_MAX) {
      for (int64_t i = begin(t, n); i < begin(t + 1, n); ++i) f(i);
      return;
    }
    int64_t item;
    while (take(shares_[t], false, &item)) f(item);
    for (int k = 1; k < n; ++k) {
      Share& other = shares_[(t + k) % n];
      while (!other.ready.load(std::memory_order_acquire)) {
        if (empty(other)) break;
      }
      while (take(other, true, &item)) f(item);
    }
  }

 private:
  // Left uninitialized (std::atomic's default) but for the first threads_, which the constructor sets: the
  // object is made on every call of a parallel GEMM.
  struct alignas(64) Share {
    std::atomic<uint64_t> range;  // the items left: the front in the low 32 bits, the end in the high 32
    std::atomic<bool> ready;
  };
  static uint64_t pack(int64_t front, int64_t end) {
    return static_cast<uint64_t>(front) | static_cast<uint64_t>(end) << 32;
  }
  static bool empty(const Share& s) {
    const uint64_t r = s.range.load(std::memory_order_relaxed);
    return static_cast<uint32_t>(r) >= static_cast<uint32_t>(r >> 32);
  }
  // The share's first item (its owner) or last (another thread), or false where none is left.
  static bool take(Share& s, bool from_back, int64_t* item) {
    uint64_t r = s.range.load(std::memory_order_relaxed);
    for (;;) {
      const uint32_t front = static_cast<uint32_t>(r), end = static_cast<uint32_t>(r >> 32);
      if (front >= end) return false;
      const uint64_t next = from_back ? pack(front, end - 1) : pack(front + 1, end);
      if (s.range.compare_exchange_weak(r, next, std::memory_order_acq_rel, std::memory_order_relaxed)) {
        *item = from_back ? end - 1 : front;
        return true;
      }
    }
  }

  int threads_;
  int64_t items_;
  Share shares_[kMaxThreads];
};

}  // namespace runtime
}  // namespace adze
