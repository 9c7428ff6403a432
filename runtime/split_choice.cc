#include "runtime/split_choice.h"

#include <algorithm>

namespace adze {
namespace runtime {
namespace {

double median(std::vector<double> v) {
  if (v.empty()) return 0.0;
  std::sort(v.begin(), v.end());
  const std::size_t n = v.size();
  return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

}  // namespace

SplitChoice::Kind SplitChoice::kind_of(int step) {
  static constexpr Kind kBlocks[] = {kSplit, kAlone, kAlone, kSplit, kCut};
  if (step < kSettlingRuns) return kSplit;
  const int block = (step - kSettlingRuns) / kBlock;
  return block < 5 ? kBlocks[block] : kAlone;  // past the plan: runs of other threads still in flight
}

bool SplitChoice::timed(int step) {
  return step >= kSettlingRuns && step < kChoosingRuns && (step - kSettlingRuns) % kBlock != 0;
}

void SplitChoice::restart(std::size_t ops, int threads) {
  ops_ = ops;
  threads_ = threads;
  steps_ = 0;
  chosen_ = false;
  cut_ = 0;
  for (auto& r : runs_) r.clear();
  split_op_.assign(ops, {});
  alone_op_.assign(ops, {});
  body_.assign(ops, true);
}

std::size_t SplitChoice::best_cut() const {
  // cost(c): ops before c split (where they handed out a body in every split run), the rest alone.
  double cost = 0.0;
  std::vector<double> split(ops_), alone(ops_);
  for (std::size_t i = 0; i < ops_; ++i) {
    alone[i] = median(alone_op_[i]);
    split[i] = body_[i] && !split_op_[i].empty() ? median(split_op_[i]) : alone[i];
    cost += alone[i];
  }
  double best = cost;
  std::size_t at = 0;
  for (std::size_t c = 0; c < ops_; ++c) {
    cost += split[c] - alone[c];
    if (cost < best) best = cost, at = c + 1;
  }
  return at;
}

void SplitChoice::choose() {
  int best = -1;
  for (int k = 0; k < 3; ++k)
    if (!runs_[k].empty() && (best < 0 || median(runs_[k]) < median(runs_[best]))) best = k;
  cut_ = best == kSplit ? ops_ : best == kCut ? cut_ : 0;
  chosen_ = true;
  for (auto& r : runs_) r.clear();
  split_op_.clear();
  alone_op_.clear();
}

SplitChoice::Run SplitChoice::next_run(std::size_t ops, int threads) {
  const std::lock_guard<std::mutex> lock(mutex_);
  if (ops != ops_ || threads != threads_) restart(ops, threads);
  if (chosen_) return {cut_, false, 0};
  const int step = steps_++;
  if (step == kSettlingRuns +
                  4 * kBlock) {  // the whole kinds are timed: the cut their op times favour, unless it is one of them
    cut_ = best_cut();
    if (cut_ == 0 || cut_ == ops_) choose();
  }
  if (chosen_) return {cut_, false, 0};
  const Kind kind = kind_of(step);
  return {kind == kSplit ? ops_ : kind == kAlone ? 0 : cut_, timed(step), step};
}

void SplitChoice::record(const Run& run, int threads, const std::vector<double>& op_seconds,
                         const std::vector<bool>& split_body, double run_seconds) {
  const std::lock_guard<std::mutex> lock(mutex_);
  if (!run.timed || chosen_ || threads != threads_ || op_seconds.size() != ops_) return;
  const Kind kind = kind_of(run.step);
  runs_[kind].push_back(run_seconds);
  for (std::size_t i = 0; i < ops_ && kind != kCut; ++i) {
    (kind == kSplit ? split_op_ : alone_op_)[i].push_back(op_seconds[i]);
    if (kind == kSplit && (i >= split_body.size() || !split_body[i])) body_[i] = false;
  }
  if (kind == kCut && runs_[kCut].size() >= kBlock - 1) choose();
}

}  // namespace runtime
}  // namespace adze
