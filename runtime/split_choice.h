// Which ops of a schedule run split over the threads and which alone, chosen from the schedule's own first runs
// (internal to runtime/). An op split over two cores costs a hand-off, a barrier and the rows that cross between
// the cores' caches; on a virtual machine those can outweigh the half of the arithmetic saved (MobileNet-V2 at
// 64x64 ran slower on two threads than on one: docs/results/standing-team-2026-12-02.md). Each op gives the same
// bits split or alone, so the choice changes only the time.
//
// What an op costs depends on where its input lies: an op alone after a split one reads half its input from the
// other core's cache. So the choice is one cut: the ops before it may split, the ops from it on run alone (a
// convolutional network's large early layers split, its small late ones not; a cut of 0 opens no team at all).
// After a few settling runs, the first runs time whole runs of each kind in blocks, the first run of each block
// untimed while the caches settle: all split, all alone, all alone, all split (the order cancels a steady drift
// of the machine's load), then the cut that the per-op times of those runs favour. The kind whose median run
// was fastest is kept.
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
  /// Untimed runs (all split) before the first block: a process's first runs fault in pages, grow buffer pools
  /// and wait for the CPUs' clocks (MobileNet-V2 at 64x64 on one thread: 489, 385, 349, 322, 411 us, then about
  /// 230 us, on the AMD EPYC KVM guest).
  static constexpr int kSettlingRuns = 8;
  /// Runs of one kind in a row, the first of them untimed.
  static constexpr int kBlock = 6;
  /// Runs before the choice is made: the settling runs, four blocks of whole kinds and one of the cut.
  static constexpr int kChoosingRuns = kSettlingRuns + 5 * kBlock;

  SplitChoice() = default;
  /// A copy starts afresh: a schedule copied to be changed (fused) runs other ops.
  SplitChoice(const SplitChoice&) {}
  SplitChoice& operator=(const SplitChoice&) {
    const std::lock_guard<std::mutex> lock(mutex_);
    restart(0, 0);
    return *this;
  }

  /// One run: ops [0, cut) may split, the others run alone; `timed` runs report their times to record().
  struct Run {
    std::size_t cut = SIZE_MAX;
    bool timed = false;
    int step = 0;
  };

  /// The next run of a schedule of `ops` ops on `threads` threads (more than one). The choice is made again
  /// where the thread count or the schedule's size changed since. Safe to call from several threads at once.
  Run next_run(std::size_t ops, int threads);

  /// A timed run's times (seconds): each op's and the whole run's, and which ops handed out a parallel body.
  /// Ignored where the choice restarted since (another thread count or size) or is made.
  void record(const Run& run, int threads, const std::vector<double>& op_seconds, const std::vector<bool>& split_body,
              double run_seconds);

 private:
  enum Kind { kSplit = 0, kAlone = 1, kCut = 2 };
  static Kind kind_of(int step);
  static bool timed(int step);
  void restart(std::size_t ops, int threads);
  std::size_t best_cut() const;  // from the per-op medians of the whole kinds
  void choose();                 // the kind whose median run was fastest

  std::mutex mutex_;
  std::size_t ops_ = 0;
  int threads_ = 0;
  int steps_ = 0;  // runs handed out while choosing
  bool chosen_ = false;
  std::size_t cut_ = 0;  // the candidate cut (before choosing), then the choice
  std::vector<double> runs_[3];
  std::vector<std::vector<double>> split_op_, alone_op_;
  std::vector<bool> body_;
};

}  // namespace runtime
}  // namespace adze
