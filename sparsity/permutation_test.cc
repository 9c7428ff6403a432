#include "sparsity/permutation.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace adze {
namespace {

TEST(ChannelPermutation, SeparatesLargeChannelsThatShareAGroup) {
  // Channels 0-3 are large, 4-7 small: unpermuted, 2:4 loses two large channels per row; the best
  // permutation puts two large and two small channels in each group and keeps all the large ones.
  at::Tensor m = torch::cat({torch::full({5, 4}, 10.0), torch::full({5, 4}, 1.0)}, 1);
  ChannelPermutation p = search_channel_permutation(m, {2, 4});
  EXPECT_DOUBLE_EQ(p.kept_before, 5 * (10 + 10 + 1 + 1));
  EXPECT_DOUBLE_EQ(p.kept_after, 5 * 4 * 10);
  EXPECT_DOUBLE_EQ(nm_kept_magnitude(m, {2, 4}, p.order), p.kept_after);
}

TEST(ChannelPermutation, IsAPermutationThatNeverKeepsLessAndIsDeterministic) {
  torch::manual_seed(0);
  for (NMPattern pattern : {NMPattern{2, 4}, NMPattern{1, 4}, NMPattern{2, 8}}) {
    at::Tensor m = torch::randn({64, 128}).abs() * torch::rand({1, 128});  // channels of different scale
    ChannelPermutation p = search_channel_permutation(m, pattern);
    EXPECT_TRUE(torch::equal(std::get<0>(p.order.sort()), torch::arange(128)));
    EXPECT_DOUBLE_EQ(p.kept_before, nm_kept_magnitude(m, pattern));
    EXPECT_GT(p.kept_after, p.kept_before * 1.01) << pattern.to_string();
    EXPECT_NEAR(nm_kept_magnitude(m, pattern, p.order), p.kept_after, 1e-6 * p.kept_after);
    EXPECT_TRUE(torch::equal(search_channel_permutation(m, pattern).order, p.order));
  }
}

}  // namespace
}  // namespace adze
