#include "runtime/parallel.h"

#include <sched.h>

#include <exception>

namespace adze {
namespace runtime {
namespace {

thread_local WorkContext t_work;

// The standing team this thread leads (with_standing_team), or none.
class StandingTeam;
thread_local StandingTeam* t_leading = nullptr;

// This thread runs a body as thread `thread` of `threads` (sharing `barrier`), its context restored after.
class AsThread {
 public:
  AsThread(Barrier* barrier, int thread, int threads) : saved_(t_work) {
    t_work.barrier = barrier;
    t_work.thread = thread;
    t_work.threads = threads;
    t_work.in_body = true;
  }
  ~AsThread() {
    const uint64_t bodies = t_work.bodies;
    t_work = saved_;
    t_work.bodies = bodies;
  }
  AsThread(const AsThread&) = delete;
  AsThread& operator=(const AsThread&) = delete;

 private:
  WorkContext saved_;
};

// The threads of one OpenMP region, kept for a whole run: thread 0 (the leader) posts each body in one cache
// line, every thread runs it, and all meet at the barrier after it; the others then spin for the next post.
class StandingTeam {
 public:
  // The team's size, set by the leader before its first post (the others read it after a post only).
  void open(int threads) { threads_ = threads; }

  void run(detail::BodyFn fn, const void* body) {
    post_.fn = fn;
    post_.body = body;
    post_.count.fetch_add(1, std::memory_order_release);
    {
      const AsThread as(&barrier_, 0, threads_);
      fn(body);
    }
    barrier_.wait(threads_);
  }

  // Thread `thread`'s bodies, until the leader closes the team.
  void serve(int thread) {
    uint32_t seen = 0;
    for (;;) {
      spin_until([&] { return post_.count.load(std::memory_order_acquire) != seen; });
      seen = post_.count.load(std::memory_order_relaxed);
      if (!post_.fn) return;
      {
        const AsThread as(&barrier_, thread, threads_);
        post_.fn(post_.body);
      }
      barrier_.wait(threads_);
    }
  }

  void close() {
    post_.fn = nullptr;
    post_.count.fetch_add(1, std::memory_order_release);
  }

 private:
  struct alignas(64) Post {
    std::atomic<uint32_t> count{0};  // bodies posted, and one more at close
    detail::BodyFn fn = nullptr;     // null: closed
    const void* body = nullptr;
  };
  Post post_;
  Barrier barrier_;
  int threads_ = 1;
};

}  // namespace

void yield_cpu() { sched_yield(); }

void Barrier::wait(int threads) {
  const uint32_t generation = generation_.load(std::memory_order_acquire);
  if (arrived_.fetch_add(1, std::memory_order_acq_rel) == threads - 1) {
    arrived_.store(0, std::memory_order_relaxed);
    generation_.store(generation + 1, std::memory_order_release);
    return;
  }
  spin_until([&] { return generation_.load(std::memory_order_acquire) != generation; });
}

WorkContext& work_context() { return t_work; }

namespace detail {

void run_on_team(BodyFn fn, const void* body) {
  ++t_work.bodies;
  if (t_leading) return t_leading->run(fn, body);
  Barrier barrier;
#pragma omp parallel
  {
    const AsThread as(&barrier, omp_get_thread_num(), omp_get_num_threads());
    fn(body);
  }
}

void run_alone(BodyFn fn, const void* body) {
  const AsThread as(nullptr, 0, 1);
  fn(body);
}

}  // namespace detail

namespace detail {

void lead_standing_team(BodyFn leader_fn, const void* leader) {
  if (t_leading || in_parallel_work() || omp_in_parallel() || omp_get_max_threads() < 2) return leader_fn(leader);
  std::exception_ptr error;
  StandingTeam team;
#pragma omp parallel
  {
    if (omp_get_thread_num() == 0) {
      team.open(omp_get_num_threads());  // before the first post, which the others wait for
      t_leading = &team;
      try {
        leader_fn(leader);
      } catch (...) {
        error = std::current_exception();
      }
      t_leading = nullptr;
      team.close();
    } else {
      team.serve(omp_get_thread_num());
    }
  }
  if (error) std::rethrow_exception(error);
}

}  // namespace detail

}  // namespace runtime
}  // namespace adze
