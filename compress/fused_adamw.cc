#include "compress/fused_adamw.h"

#include <torch/torch.h>

#include <cmath>
#include <string>

namespace adze {
namespace {

// One parameter's update, elementwise; the constants are rounded to float once, as libtorch's kernels round
// their scalars.
struct Update {
  float decay, beta1, one_minus_beta1, beta2, one_minus_beta2, root_bias_correction2, eps, minus_step_size;
};

void update_range(float* __restrict p, const float* __restrict g, float* __restrict m, float* __restrict v, int64_t n,
                  const Update u) {
  for (int64_t i = 0; i < n; ++i) {
    const float grad = g[i];
    const float first = m[i] * u.beta1 + u.one_minus_beta1 * grad;
    const float second = v[i] * u.beta2 + (grad * grad) * u.one_minus_beta2;
    const float denom = std::sqrt(second) / u.root_bias_correction2 + u.eps;
    m[i] = first;
    v[i] = second;
    p[i] = p[i] * u.decay + u.minus_step_size * (first / denom);
  }
}

void fused_update(float* p, const float* g, float* m, float* v, int64_t n, const Update& u) {
  at::parallel_for(0, n, int64_t{1} << 14, [&](int64_t begin, int64_t end) {
    update_range(p + begin, g + begin, m + begin, v + begin, end - begin, u);
  });
}

}  // namespace

bool FusedAdamW::fusable() const {
  for (const auto& group : param_groups()) {
    if (static_cast<const torch::optim::AdamWOptions&>(group.options()).amsgrad()) return false;
    for (const auto& p : group.params()) {
      const torch::Tensor& grad = p.grad();
      if (!grad.defined()) continue;
      if (p.scalar_type() != torch::kFloat || grad.scalar_type() != torch::kFloat || grad.is_sparse() ||
          !p.is_contiguous() || !grad.is_contiguous())
        return false;
      auto it = state_.find(c10::guts::to_string(p.unsafeGetTensorImpl()));  // moments from a loaded state_dict
      if (it != state_.end()) {
        const auto& state = static_cast<const torch::optim::AdamWParamState&>(*it->second);
        if (!state.exp_avg().is_contiguous() || !state.exp_avg_sq().is_contiguous()) return false;
      }
    }
  }
  return true;
}

torch::Tensor FusedAdamW::step(LossClosure closure) {
  torch::Tensor loss;
  if (closure != nullptr) {
    at::AutoGradMode enable_grad(true);
    loss = closure();
  }
  if (!fusable()) {
    torch::optim::AdamW::step();
    return loss;
  }
  torch::NoGradGuard no_grad;
  for (auto& group : param_groups()) {
    auto& options = static_cast<torch::optim::AdamWOptions&>(group.options());
    const double lr = options.lr(), beta1 = std::get<0>(options.betas()), beta2 = std::get<1>(options.betas());
    for (auto& p : group.params()) {
      if (!p.grad().defined()) continue;
      const std::string key = c10::guts::to_string(p.unsafeGetTensorImpl());  // libtorch's key and state
      if (state_.find(key) == state_.end()) {
        auto fresh = std::make_unique<torch::optim::AdamWParamState>();
        fresh->step(0);
        fresh->exp_avg(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        fresh->exp_avg_sq(torch::zeros_like(p, torch::MemoryFormat::Preserve));
        state_[key] = std::move(fresh);
      }
      auto& state = static_cast<torch::optim::AdamWParamState&>(*state_[key]);
      state.step(state.step() + 1);
      const double bias_correction1 = 1 - std::pow(beta1, state.step());
      const double bias_correction2 = 1 - std::pow(beta2, state.step());
      const Update u{static_cast<float>(1 - lr * options.weight_decay()),
                     static_cast<float>(beta1),
                     static_cast<float>(1 - beta1),
                     static_cast<float>(beta2),
                     static_cast<float>(1 - beta2),
                     static_cast<float>(std::sqrt(bias_correction2)),
                     static_cast<float>(options.eps()),
                     static_cast<float>(-lr / bias_correction1)};
      torch::Tensor &exp_avg = state.exp_avg(), &exp_avg_sq = state.exp_avg_sq();
      fused_update(p.data_ptr<float>(), p.grad().data_ptr<float>(), exp_avg.data_ptr<float>(),
                   exp_avg_sq.data_ptr<float>(), p.numel(), u);
    }
  }
  return loss;
}

}  // namespace adze
