#include "sparsity/nm.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

#include <algorithm>
#include <numeric>

#include "tests/test_util.h"

namespace adze {
namespace {

// The plain reference: sort each group's indices by (|w| descending, index ascending), keep the first N.
at::Tensor reference_mask(const at::Tensor& rows, NMPattern p) {
  at::Tensor w = rows.contiguous();
  at::Tensor mask = torch::zeros(w.sizes(), torch::kBool);
  auto acc = w.accessor<float, 2>();
  auto out = mask.accessor<bool, 2>();
  for (int64_t r = 0; r < w.size(0); ++r)
    for (int64_t g = 0; g < w.size(1); g += p.m) {
      std::vector<int> idx(static_cast<std::size_t>(p.m));
      std::iota(idx.begin(), idx.end(), 0);
      std::stable_sort(idx.begin(), idx.end(),
                       [&](int a, int b) { return std::fabs(acc[r][g + a]) > std::fabs(acc[r][g + b]); });
      for (int k = 0; k < p.n; ++k) out[r][g + idx[static_cast<std::size_t>(k)]] = true;
    }
  return mask;
}

class NMMask : public ::testing::TestWithParam<std::pair<int, int>> {};

TEST_P(NMMask, KeepsExactlyTheNLargestOfEachGroup) {
  const NMPattern p{GetParam().first, GetParam().second};
  torch::manual_seed(p.n * 100 + p.m);
  at::Tensor w = torch::randn({37, p.m * 11});
  w.index_put_({0, torch::indexing::Slice(0, p.m)}, 0.5);  // ties: the lower index wins
  at::Tensor mask = nm_mask_rows(w, p);
  EXPECT_TRUE(torch::equal(mask, reference_mask(w, p)));
  EXPECT_TRUE(torch::equal(mask.reshape({-1, p.m}).sum(1), torch::full({37 * 11}, p.n, torch::kLong)));
  EXPECT_TRUE(satisfies_nm(w * mask, p));
}
INSTANTIATE_TEST_SUITE_P(Patterns, NMMask,
                         ::testing::Values(std::pair{1, 2}, std::pair{2, 4}, std::pair{1, 4}, std::pair{4, 8},
                                           std::pair{3, 16}, std::pair{15, 16}));

TEST(NMPattern, ParsesAndRejectsWithTheWhere) {
  EXPECT_EQ(NMPattern::parse("2:4"), (NMPattern{2, 4}));
  EXPECT_FALSE(NMPattern::parse("none").enabled());
  EXPECT_EQ((NMPattern{2, 4}).to_string(), "2:4");
  for (const char* bad : {"4:4", "0:4", "2:17", "2-4", "a:4", "2:4x", ":"})
    testing::expect_error([&] { NMPattern::parse(bad, "layer 'fc1' field nm"); }, ErrorKind::kInvalidConfig,
                          {"layer 'fc1' field nm", bad});
}

}  // namespace
}  // namespace adze
