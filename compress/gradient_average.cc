#include "compress/gradient_average.h"

#include <torch/csrc/autograd/function.h>
#include <torch/csrc/autograd/utils/lambda_post_hook.h>
#include <torch/csrc/autograd/variable.h>
#include <torch/torch.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <utility>

#include "core/error.h"

namespace adze {

struct GradientAverage::State {
  struct Bucket {
    std::vector<int> members;      // indices into params, in the order they lie in flat
    std::vector<int64_t> offsets;  // of each member in flat
    std::vector<at::Tensor> flat;  // one contiguous tensor
    int ready = 0;
    std::unique_ptr<PendingAverage> pending;
  };

  GradientSync* sync = nullptr;
  std::vector<at::Tensor> params;
  std::vector<Bucket> buckets;
  std::vector<int> bucket_of, slot_of;  // by parameter: its bucket and its place among the bucket's members
  std::vector<char> copied;             // by parameter: its gradient is in its bucket this step
  std::vector<int> fired_order;         // the parameters backward gave a gradient this step, in that order
  int64_t bucket_bytes = 0;
  int64_t steps = 0;
  std::size_t next_to_send = 0;
  bool armed = false;
  std::mutex mutex;  // backward may run hooks on another thread than finish()
  std::vector<std::pair<std::shared_ptr<torch::autograd::Node>, uintptr_t>> hooks;  // accumulator, post-hook key

  // Buckets over the parameters in `order`: each closes at bucket_bytes, or where the dtype changes (a bucket
  // is one tensor).
  void plan_buckets(const std::vector<int>& order) {
    buckets.clear();
    int64_t bytes = 0;
    for (int p : order) {
      const at::Tensor& param = params[static_cast<std::size_t>(p)];
      if (buckets.empty() || bytes >= bucket_bytes ||
          params[static_cast<std::size_t>(buckets.back().members[0])].scalar_type() != param.scalar_type()) {
        buckets.emplace_back();
        bytes = 0;
      }
      Bucket& b = buckets.back();
      bucket_of[static_cast<std::size_t>(p)] = static_cast<int>(buckets.size()) - 1;
      slot_of[static_cast<std::size_t>(p)] = static_cast<int>(b.members.size());
      b.offsets.push_back(
          b.members.empty() ? 0 : b.offsets.back() + params[static_cast<std::size_t>(b.members.back())].numel());
      b.members.push_back(p);
      bytes += param.numel() * static_cast<int64_t>(param.element_size());
    }
    for (auto& b : buckets) {
      const at::Tensor& last = params[static_cast<std::size_t>(b.members.back())];
      b.flat = {torch::empty({b.offsets.back() + last.numel()}, last.options().requires_grad(false))};
    }
  }

  // After the first step: the buckets follow the order in which backward gave the parameters their gradients,
  // as the reducer rebuilds its buckets (a module's parameter order need not be the order backward reaches
  // them), with the parameters it gave none (scales trained outside backward, unused branches) last, so that
  // they hold back no bucket. The ranks agree on one order through one average of each parameter's place.
  void replan_after_first_step() {
    torch::NoGradGuard no_grad;
    const int64_t n = static_cast<int64_t>(params.size());
    std::vector<at::Tensor> place = {torch::empty({n}, torch::kDouble)};
    double* place_of = place[0].data_ptr<double>();
    for (int64_t p = 0; p < n; ++p) place_of[p] = static_cast<double>(n + (n - 1 - p));  // no gradient: last
    for (std::size_t k = 0; k < fired_order.size(); ++k) place_of[fired_order[k]] = static_cast<double>(k);
    sync->average(place);
    std::vector<int> order(static_cast<std::size_t>(n));
    for (int p = 0; p < static_cast<int>(n); ++p) order[static_cast<std::size_t>(p)] = p;
    std::stable_sort(order.begin(), order.end(), [place_of](int a, int b) { return place_of[a] < place_of[b]; });
    plan_buckets(order);
  }

  void copy_in(int p) {
    torch::NoGradGuard no_grad;
    Bucket& b = buckets[static_cast<std::size_t>(bucket_of[p])];
    const at::Tensor& param = params[static_cast<std::size_t>(p)];
    const int64_t at = b.offsets[static_cast<std::size_t>(slot_of[p])];
    at::Tensor slice = b.flat[0].slice(0, at, at + param.numel());
    if (param.grad().defined())
      slice.copy_(param.grad().reshape({-1}));
    else
      slice.zero_();
    copied[static_cast<std::size_t>(p)] = 1;
    ++b.ready;
  }

  void send_completed() {
    while (next_to_send < buckets.size()) {
      Bucket& b = buckets[next_to_send];
      if (b.ready < static_cast<int>(b.members.size())) break;
      b.pending = sync->start_average(b.flat);
      ++next_to_send;
    }
  }

  void gradient_ready(int p) {
    std::lock_guard<std::mutex> lock(mutex);
    if (!armed || copied[static_cast<std::size_t>(p)]) return;
    if (steps == 0) fired_order.push_back(p);  // the first step's order plans the buckets
    copy_in(p);
    send_completed();
  }
};

GradientAverage::GradientAverage(std::vector<at::Tensor> params, GradientSync& sync, int64_t bucket_bytes)
    : state_(std::make_shared<State>()) {
  State& s = *state_;
  s.sync = &sync;
  std::set<const void*> seen;
  for (auto& p : params)
    if (p.requires_grad() && p.is_leaf() && seen.insert(p.unsafeGetTensorImpl()).second) s.params.push_back(p);
  const int n = static_cast<int>(s.params.size());
  s.bucket_of.assign(static_cast<std::size_t>(n), 0);
  s.slot_of.assign(static_cast<std::size_t>(n), 0);
  s.copied.assign(static_cast<std::size_t>(n), 0);
  s.bucket_bytes = bucket_bytes;
  std::vector<int> reverse(static_cast<std::size_t>(n));
  for (int p = 0; p < n; ++p) reverse[static_cast<std::size_t>(p)] = n - 1 - p;
  s.plan_buckets(reverse);
  // Each parameter's gradient accumulator runs once per backward pass, after the engine has summed every
  // contribution to it: its post-hook sees the final gradient. The accumulators are kept alive here, as
  // DistributedDataParallel's reducer keeps them, so that every backward pass reaches the same hooked nodes.
  std::weak_ptr<State> weak = state_;
  for (int p = 0; p < n; ++p) {
    std::shared_ptr<torch::autograd::Node> accumulator =
        torch::autograd::impl::grad_accumulator(s.params[static_cast<std::size_t>(p)]);
    if (!accumulator) throw Error(ErrorKind::kInternal, "GradientAverage: a parameter has no gradient accumulator");
    const uintptr_t key = accumulator->add_post_hook(std::make_unique<torch::autograd::utils::LambdaPostHook>(
        [weak, p](const torch::autograd::variable_list& outputs, const torch::autograd::variable_list&) {
          if (auto state = weak.lock()) state->gradient_ready(p);
          return outputs;
        }));
    s.hooks.emplace_back(std::move(accumulator), key);
  }
}

GradientAverage::~GradientAverage() {
  for (auto& [accumulator, key] : state_->hooks) accumulator->del_post_hook(key);
}

int GradientAverage::buckets() const { return static_cast<int>(state_->buckets.size()); }

void GradientAverage::begin() {
  std::lock_guard<std::mutex> lock(state_->mutex);
  State& s = *state_;
  for (auto& b : s.buckets) {
    if (b.pending) throw Error(ErrorKind::kInternal, "GradientAverage: begin() before finish()");
    b.ready = 0;
  }
  std::fill(s.copied.begin(), s.copied.end(), 0);
  s.fired_order.clear();
  s.next_to_send = 0;
  s.armed = true;
}

void GradientAverage::finish() {
  State& s = *state_;
  {
    std::lock_guard<std::mutex> lock(s.mutex);
    if (!s.armed) throw Error(ErrorKind::kInternal, "GradientAverage: finish() without begin()");
    s.armed = false;
    for (std::size_t p = 0; p < s.params.size(); ++p)
      if (!s.copied[p]) s.copy_in(static_cast<int>(p));
    s.send_completed();
  }
  torch::NoGradGuard no_grad;
  for (auto& b : s.buckets) {
    b.pending->wait();
    b.pending.reset();
    for (std::size_t m = 0; m < b.members.size(); ++m) {
      at::Tensor& param = s.params[static_cast<std::size_t>(b.members[m])];
      if (!param.grad().defined()) continue;
      param.mutable_grad().copy_(b.flat[0].slice(0, b.offsets[m], b.offsets[m] + param.numel()).view_as(param));
    }
  }
  if (++s.steps == 1 && !s.params.empty()) s.replan_after_first_step();
}

}  // namespace adze
