// Which ops of a schedule run split over the threads and which alone, chosen from the schedule's own first runs
// (internal to runtime/). An op split over two cores costs a hand-off, a barrier and the rows that cross between
// the cores' caches; on a virtual machine those can outweigh the half of the arithmetic saved (MobileNet-V2 at
// 64x64 ran slower on two threads than on one: docs/results/standing-team-2026-12-02.md). Each op gives the same
// bits split or alone, so the choice changes only the time.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <vector>

namespace adze {
namespace runtime {

class SplitChoice {
 public:
  /// Runs of each kind timed before choosing.
  static constexpr int kTimedRuns = 5;

  SplitChoice() = default;
  /// A copy starts afresh: a schedule copied to be changed (fused) runs other ops.
  SplitChoice(const SplitChoice&) {}
  SplitChoice& operator=(const SplitChoice&) {
    const std::lock_guard<std::mutex> lock(mutex_);
    restart(0, 0);
    return *this;
  }

  /// How one run goes: every op allowed to split (timed), every op alone (timed), or as chosen.
  enum class Mode { kTimeSplit, kTimeAlone, kChosen };

  /// What was chosen: whether each op runs split, and whether any does (none: a run needs no team at all).
  struct Choice {
    std::vector<bool> split;
    bool any = false;
  };

  /// The next run of a schedule: its mode and, for kChosen, the choice (kept alive by the run, whatever other
  /// runs choose meanwhile).
  struct Run {
    Mode mode = Mode::kChosen;
    std::shared_ptr<const Choice> choice;
  };

  /// The next run of a schedule of `ops` ops on `threads` threads (more than one). The choice is made again
  /// where the thread count or the schedule's size changed since. Safe to call from several threads at once.
  Run next_run(std::size_t ops, int threads);

  /// A timed run's op times (seconds, one per op) and, for kTimeSplit, which ops handed out a parallel body;
  /// ignored where the choice restarted since for another thread count or size. The choice is made once
  /// kTimedRuns of each kind are in: an op runs split where it handed out a body in every split run and the
  /// median of its split times is below that of its alone times.
  void record(Mode mode, int threads, const std::vector<double>& seconds, const std::vector<bool>& split_body);

 private:
  void restart(std::size_t ops, int threads);
  std::mutex mutex_;
  std::size_t ops_ = 0;
  int threads_ = 0;
  int started_ = 0;  // timed runs handed out: even ones split, odd ones alone
  std::vector<std::vector<double>> split_times_, alone_times_;
  std::vector<bool> split_body_;
  std::shared_ptr<const Choice> choice_;
};

}  // namespace runtime
}  // namespace adze
