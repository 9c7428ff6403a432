#include "runtime/split_choice.h"

#include <algorithm>

namespace adze {
namespace runtime {
namespace {

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

void SplitChoice::restart(std::size_t ops, int threads) {
  ops_ = ops;
  threads_ = threads;
  started_ = 0;
  split_times_.assign(ops, {});
  alone_times_.assign(ops, {});
  split_body_.assign(ops, true);
  choice_.reset();
}

SplitChoice::Run SplitChoice::next_run(std::size_t ops, int threads) {
  const std::lock_guard<std::mutex> lock(mutex_);
  if (ops != ops_ || threads != threads_) restart(ops, threads);
  if (choice_) return {Mode::kChosen, choice_};
  // Timed runs alternate, so that a change in the machine's load falls on both kinds; past the planned number
  // (runs still in flight on other threads), the kinds go on alternating until the choice is made.
  return {started_++ % 2 == 0 ? Mode::kTimeSplit : Mode::kTimeAlone, nullptr};
}

void SplitChoice::record(Mode mode, int threads, const std::vector<double>& seconds,
                         const std::vector<bool>& split_body) {
  const std::lock_guard<std::mutex> lock(mutex_);
  if (mode == Mode::kChosen || choice_ || threads != threads_ || seconds.size() != ops_) return;
  auto& times = mode == Mode::kTimeSplit ? split_times_ : alone_times_;
  for (std::size_t i = 0; i < ops_; ++i) {
    times[i].push_back(seconds[i]);
    if (mode == Mode::kTimeSplit && (i >= split_body.size() || !split_body[i])) split_body_[i] = false;
  }
  if (ops_ == 0 || split_times_[0].size() < kTimedRuns || alone_times_[0].size() < kTimedRuns) return;
  auto choice = std::make_shared<Choice>();
  choice->split.assign(ops_, false);
  for (std::size_t i = 0; i < ops_; ++i) {
    choice->split[i] = split_body_[i] && median(split_times_[i]) < median(alone_times_[i]);
    choice->any = choice->any || choice->split[i];
  }
  choice_ = std::move(choice);
  split_times_.clear();
  alone_times_.clear();
}

}  // namespace runtime
}  // namespace adze
