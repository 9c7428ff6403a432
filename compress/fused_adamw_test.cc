#include "compress/fused_adamw.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace adze {
namespace {

// Parameters in two groups (different lr and weight decay), one without a gradient, the same gradients each
// step: the fused optimizer ends where libtorch's AdamW does, to float rounding, with the same state. With a
// parameter that is not contiguous, or amsgrad, the step is libtorch's own.
std::vector<torch::Tensor> trained(bool fused, bool amsgrad, bool contiguous = true) {
  auto gen = at::detail::createCPUGenerator(11);
  std::vector<torch::Tensor> a = {torch::randn({64, 33}, gen), torch::randn({7}, gen)};
  std::vector<torch::Tensor> b = {contiguous ? torch::randn({6, 5}, gen) : torch::randn({5, 6}, gen).t(),
                                  torch::randn({3}, gen)};
  for (auto* group : {&a, &b})
    for (auto& p : *group) p.requires_grad_(true);
  std::vector<torch::optim::OptimizerParamGroup> groups;
  groups.emplace_back(a, std::make_unique<torch::optim::AdamWOptions>(
                             torch::optim::AdamWOptions(3e-2).weight_decay(0.1).amsgrad(amsgrad)));
  groups.emplace_back(b, std::make_unique<torch::optim::AdamWOptions>(
                             torch::optim::AdamWOptions(1e-2).weight_decay(0).amsgrad(amsgrad)));
  std::unique_ptr<torch::optim::Optimizer> optimizer;
  if (fused)
    optimizer = std::make_unique<FusedAdamW>(std::move(groups));
  else
    optimizer = std::make_unique<torch::optim::AdamW>(std::move(groups));
  for (int step = 0; step < 20; ++step) {
    optimizer->zero_grad();
    torch::Tensor loss = (a[0].sin() * (step + 1)).sum() + a[1].pow(3).sum() + b[0].exp().sum();
    loss.backward();  // b[1] gets no gradient
    optimizer->step();
  }
  std::vector<torch::Tensor> out;
  for (auto* group : {&a, &b})
    for (auto& p : *group) out.push_back(p.detach().clone());
  for (auto* group : {&a, &b})
    for (auto& p : *group) {
      auto it = optimizer->state().find(c10::guts::to_string(p.unsafeGetTensorImpl()));
      if (it == optimizer->state().end()) continue;
      auto& s = static_cast<torch::optim::AdamWParamState&>(*it->second);
      out.push_back(torch::tensor({static_cast<double>(s.step())}));
      out.push_back(s.exp_avg().clone());
      out.push_back(s.exp_avg_sq().clone());
    }
  return out;
}

TEST(FusedAdamW, EndsWhereLibtorchsAdamWDoes) {
  for (const auto& [amsgrad, contiguous] : {std::pair{false, true}, std::pair{false, false}, std::pair{true, true}}) {
    const std::vector<torch::Tensor> ours = trained(true, amsgrad, contiguous),
                                     theirs = trained(false, amsgrad, contiguous);
    ASSERT_EQ(ours.size(), theirs.size());
    ASSERT_EQ(ours.size(), 4u + 3u * 3u);  // four parameters; three with state (b[1] never had a gradient)
    for (std::size_t i = 0; i < ours.size(); ++i)
      EXPECT_TRUE(torch::allclose(ours[i], theirs[i], 1e-5, 1e-6))
          << "amsgrad " << amsgrad << ", contiguous " << contiguous << ", tensor " << i << ": "
          << (ours[i] - theirs[i]).abs().max().item<double>();
  }
}

TEST(FusedAdamW, SameInputsSameBytes) {
  const std::vector<torch::Tensor> first = trained(true, false), second = trained(true, false);
  for (std::size_t i = 0; i < first.size(); ++i) EXPECT_TRUE(torch::equal(first[i], second[i])) << i;
}

}  // namespace
}  // namespace adze
