// Work split over threads only where it pays (internal to runtime/): a body run by every thread of a team, the
// items of its loops shared out by work_for and StealingShares, and its threads meeting at work_barrier.
//
// Two kinds of team run a body. Outside a run, an OpenMP parallel region of omp_get_max_threads() threads
// (`--threads`). Inside a packed model's run (StandingTeam), the same OpenMP threads kept for the whole run:
// each op's body is handed to them through one cache line and ends at a barrier of spinning threads, instead
// of a parallel region per op. On the AMD EPYC KVM guest (two vCPUs, libgomp), a short C++ program timed
// 200,000 of each: an empty `omp parallel` region 3.0-3.4 us, an `omp barrier` 1.4-1.7 us, a barrier of two
// spinning threads on one counter 0.37-0.49 us. ResNet-18 runs about twenty such regions at two threads.
//
// Inside a body, loops are shared with work_for, never with `omp for`: its implicit barrier is libgomp's, and a
// standing team's threads are in no worksharing construct of their own between bodies.
#pragma once

#include <omp.h>

#include <algorithm>
#include <atomic>
#include <cstdint>

namespace adze {
namespace runtime {

/// Threads waiting on one another: spin, then yield the CPU (where there are more threads than CPUs, a
/// spinning thread would hold the CPU that the thread it waits for needs).
class Barrier {
 public:
  /// Returns once `threads` threads (all of them calling with the same number) have arrived.
  void wait(int threads);

 private:
  alignas(64) std::atomic<int> arrived_{0};
  alignas(64) std::atomic<uint32_t> generation_{0};
};

/// Gives this thread's CPU to another thread that is ready to run.
void yield_cpu();

/// Spins, then yields, until `done()`.
template <class Done>
void spin_until(const Done& done) {
  for (int spins = 0; !done(); ++spins) {
    if (spins >= (1 << 12)) {
      yield_cpu();
    } else {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();  // the spin loop hint: frees the core's pipeline, and the other hyperthread's
#endif
    }
  }
}

/// The work this thread runs: its number, how many threads run it, and the barrier they share (none outside
/// any body: thread 0 of 1).
struct WorkContext {
  Barrier* barrier = nullptr;
  int thread = 0;
  int threads = 1;
  bool in_body = false;  ///< inside a body that maybe_parallel runs (on a team or alone)
  bool alone = false;    ///< bodies run alone here (AloneScope)
  uint64_t bodies = 0;   ///< bodies this thread has handed to a team (run_on_team), ever
};
WorkContext& work_context();

/// The threads a body that this thread starts would run on: 1 inside a body or an AloneScope, else
/// omp_get_max_threads() (`--threads`). What the kernels plan their split for.
inline int team_threads() {
  const WorkContext& c = work_context();
  return c.in_body || c.alone ? 1 : omp_get_max_threads();
}

/// While one lives, the bodies this thread starts run on it alone where `alone` (a packed run's ops from its
/// schedule's cut on: split_choice.h).
class AloneScope {
 public:
  explicit AloneScope(bool alone) : saved_(work_context().alone) { work_context().alone = saved_ || alone; }
  ~AloneScope() { work_context().alone = saved_; }
  AloneScope(const AloneScope&) = delete;
  AloneScope& operator=(const AloneScope&) = delete;

 private:
  bool saved_;
};

inline int work_thread() { return work_context().thread; }
inline int work_threads() { return work_context().threads; }
/// Inside a body of maybe_parallel's: a parallel loop here runs on this thread alone.
inline bool in_parallel_work() { return work_context().in_body; }
/// Every thread of this body's team waits for the others (nothing for a body on one thread).
inline void work_barrier() {
  const WorkContext& c = work_context();
  if (c.threads > 1) c.barrier->wait(c.threads);
}

/// Items [0, n) shared out in contiguous blocks, as `omp for schedule(static) nowait` does: thread i of T takes
/// [n·i/T, n·(i+1)/T), the share StealingShares starts each thread from.
template <class F>
void work_share(int64_t n, const F& f) {
  const WorkContext& c = work_context();
  for (int64_t i = n * c.thread / c.threads, end = n * (c.thread + 1) / c.threads; i < end; ++i) f(i);
}

/// work_share, then work_barrier, as at the end of an `omp for`.
template <class F>
void work_for(int64_t n, const F& f) {
  work_share(n, f);
  work_barrier();
}

/// f() on thread 0 of the team, then work_barrier (as `omp single`).
template <class F>
void work_single(const F& f) {
  if (work_thread() == 0) f();
  work_barrier();
}

namespace detail {
using BodyFn = void (*)(const void*);
// noexcept: a body that throws ends the process, as one throwing out of an OpenMP region does (its team's
// threads would wait at the next barrier for a thread that never comes).
template <class Body>
void call_body(const void* body) noexcept {
  (*static_cast<const Body*>(body))();
}
/// `body` on every thread of the standing team where this thread leads one, else of an OpenMP region.
void run_on_team(BodyFn fn, const void* body);
/// `body` on this thread alone, as a body (its loops not shared).
void run_alone(BodyFn fn, const void* body);
/// with_standing_team's work; a leader may throw.
template <class Leader>
void call_leader(const void* leader) {
  (*static_cast<const Leader*>(leader))();
}
void lead_standing_team(BodyFn leader_fn, const void* leader);
}  // namespace detail

/// Runs `body`, whose loops are shared with work_for and StealingShares, on every thread of a team where
/// `parallel` and team_threads() is more than one; else on this thread alone. Inside another body, always
/// alone: the team is busy with the outer one. Not parallel, no OpenMP region is entered (an `omp parallel if (false)`
/// region of one thread still costs libgomp a team allocation and a futex wake per call: perf on
/// decompose_bench, about a tenth of a batch-1 rank-128 layer's time, 3.6 -> 3.2 us across builds).
template <typename Body>
void maybe_parallel(bool parallel, const Body& body) {
  if (parallel && team_threads() > 1) return detail::run_on_team(&detail::call_body<Body>, &body);
  if (in_parallel_work()) return detail::run_alone(&detail::call_body<Body>, &body);
  body();
}

/// For its lifetime on the constructing thread (which must be in no parallel region or body), the bodies this
/// thread passes to maybe_parallel run on one team of omp_get_max_threads() threads, kept waiting between them,
/// instead of a parallel region each. `leader` runs on this thread; whatever it throws is thrown after the
/// team has ended. Anything else that opens an OpenMP region (ATen's parallel loops, OpenBLAS) runs on one
/// thread meanwhile: keep such work out of `leader` where it is long.
template <class Leader>
void with_standing_team(const Leader& leader) {
  detail::lead_standing_team(&detail::call_leader<Leader>, &leader);
}
/// Items [0, n) shared out over a body's threads as work_for shares them (thread i owns [n·i/T, n·(i+1)/T)),
/// each thread taking its own in order; a thread that has finished its own then takes
/// the others' last items, one at a time from the back. The cores of a shared or virtual machine run at
/// different speeds from moment to moment, and a static split makes every region as slow as its slower thread
/// (ResNet-18 at 64x64 on two threads, timestamps around each region's body: the two threads' bodies ended
/// 5-10 us apart on average, in either order, in regions of 26-45 us). Here each thread still works on its own
/// share, whose data stays in its cache from call to call, and only the slower thread's tail moves.
///
/// Constructed outside the body (shared by its threads, on the stack: nothing is allocated) for team_threads()
/// threads; run() inside it. Where the body has another number of threads (or runs
/// alone), or more than kMaxThreads, each thread takes the static share of its own number only, as work_for
/// would, with no barrier after.
class StealingShares {
 public:
  static constexpr int kMaxThreads = 64;

  /// `ready`: a thread prepares something its items need (marking it with ready()) before another may take them.
  explicit StealingShares(int64_t items, bool ready = false)
      : threads_(std::min(team_threads(), kMaxThreads)), items_(items) {
    for (int i = 0; i < threads_; ++i) {
      shares_[i].range.store(pack(begin(i, threads_), begin(i + 1, threads_)), std::memory_order_relaxed);
      shares_[i].ready.store(!ready, std::memory_order_relaxed);
    }
  }

  /// Thread `thread`'s own items, [first, last), of `threads` threads.
  int64_t begin(int thread, int threads) const { return items_ * thread / threads; }
  /// The thread of `threads` whose own items hold `item`.
  int owner(int64_t item, int threads) const {
    int t = static_cast<int>(item * threads / std::max<int64_t>(items_, 1));
    while (t > 0 && begin(t, threads) > item) --t;
    while (t + 1 < threads && begin(t + 1, threads) <= item) ++t;
    return t;
  }

  /// This thread's share is ready for others to take from.
  void ready() { shares_[work_thread()].ready.store(true, std::memory_order_release); }

  /// f(item) for each item this thread takes: its own, then the others' where its team is the one planned for.
  template <class F>
  void run(F f) {
    const int t = work_thread(), n = work_threads();
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
