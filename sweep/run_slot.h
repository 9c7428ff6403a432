// Where a sweep executes its runs, one at a time: in a worker process kept from run to run (the adze binary's
// `sweep serve DIR`), or in a fresh process per run (`sweep run-one DIR ID`, --fresh-processes).
//
// Starting adze costs about 0.8 s on a 2-core virtual machine (loading libtorch and registering its operators),
// as much as a post-training run of a small model itself; a worker pays it once. The worker reads run ids on a
// socket (its fd 3) and answers each with the run's exit code; the run's output goes to the run's log.txt, as
// a fresh process's does. A crash or a timeout costs the worker (it is killed and started again for the next
// run), and so does any failed run: a run that threw may leave the process in a state the next run must not
// inherit. A worker dies with the process that started it (PR_SET_PDEATHSIG), as a fresh process does.
#pragma once

#include <sys/types.h>

#include <optional>
#include <string>

#include "sweep/local_executor.h"

namespace adze {

class RunSlot {
 public:
  /// Runs in a worker of `options.worker_command` (id lines on fd 3), or in a process of
  /// `options.child_command` each where that is empty.
  explicit RunSlot(const ExecutorOptions& options);
  ~RunSlot();  // the worker told to stop (it exits at the end of its input), then killed if it lingers
  RunSlot(const RunSlot&) = delete;
  RunSlot& operator=(const RunSlot&) = delete;

  /// Starts run `id` of the sweep in `dir` (its output appended to DIR/runs/ID/log.txt).
  void start(const std::string& dir, const std::string& id);
  /// Whether the run has ended (killed past the timeout); attempt() is then complete. Waits up to `wait_s`
  /// for it to end first, and returns as soon as it does.
  bool poll(double wait_s = 0.02);
  /// Waits for the run, calling `tick` every 20 ms while it runs.
  template <typename Tick>
  Attempt wait(Tick tick) {
    while (!poll()) tick();
    return attempt_;
  }
  const Attempt& attempt() const { return attempt_; }

 private:
  void spawn();                // a new worker
  int stop_worker(bool kill);  // closes its socket, kills it (or waits for it) and reaps it: its wait status
  bool send(const std::string& line);
  void end_attempt();  // the run over (answered, crashed or timed out): its wall time taken

  ExecutorOptions options_;
  std::optional<ChildRun> child_;  // fresh-process mode
  pid_t pid_ = -1;                 // the worker
  int socket_ = -1;                // its end of the socket pair is its fd 3
  std::string answer_;             // what the worker has answered of the current run so far
  bool running_ = false;
  double start_ = 0;
  Attempt attempt_;
};

}  // namespace adze
