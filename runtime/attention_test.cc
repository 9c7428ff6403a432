// Attention as one op (attention.h) against the chain of ATen operators it replaces, on each instruction set:
// causal and other masks, fills that are and are not negligible, NaN, permuted views, one and two threads.
#include "runtime/attention.h"

#include <gtest/gtest.h>
#include <omp.h>
#include <torch/torch.h>

#include <limits>

namespace adze {
namespace packed {
namespace {

at::Tensor chain(const at::Tensor& q, const at::Tensor& kt, const at::Tensor& v, const at::Tensor& mask, float fill,
                 float alpha) {
  at::Tensor s = torch::matmul(q, kt) * alpha;
  if (mask.defined()) s = s.masked_fill(mask, fill);
  return torch::matmul(torch::softmax(s, -1), v);
}

bool same_bits(const at::Tensor& a, const at::Tensor& b) {
  return a.sizes() == b.sizes() && torch::equal(a.isnan(), b.isnan()) && torch::equal(a.nan_to_num(0), b.nan_to_num(0));
}

// q, kᵀ and v as a traced transformer block makes them: views of one [B, T, 3, H, d] tensor, permuted.
struct Heads {
  at::Tensor q, kt, v;
};
Heads heads_of(int64_t batch, int64_t tokens, int64_t heads, int64_t d) {
  const at::Tensor qkv = torch::randn({batch, tokens, 3, heads, d}).permute({2, 0, 3, 1, 4});
  return {qkv[0], qkv[1].transpose(-2, -1), qkv[2]};
}

const at::Tensor kNoMask;

TEST(Attention, MaskPrefixes) {
  const at::Tensor causal = torch::ones({4, 4}, torch::kBool).triu(1);
  EXPECT_EQ(mask_prefixes(causal), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(mask_prefixes(torch::ones({3, 5}, torch::kBool).triu(3)), (std::vector<int64_t>{3, 4, 5}));
  EXPECT_EQ(mask_prefixes(causal.view({1, 1, 4, 4})), (std::vector<int64_t>{1, 2, 3, 4}));
  EXPECT_EQ(mask_prefixes(torch::zeros({2, 3}, torch::kBool)), (std::vector<int64_t>{3, 3}));
  EXPECT_FALSE(mask_prefixes(torch::ones({4, 4}, torch::kBool).triu(0)));  // row 0 wholly masked
  EXPECT_FALSE(mask_prefixes(causal.logical_not()));                       // masked first, allowed after
  at::Tensor gap = torch::zeros({2, 4}, torch::kBool);
  gap[0][1] = true;
  EXPECT_FALSE(mask_prefixes(gap));
  EXPECT_FALSE(mask_prefixes(torch::ones({4, 4}).triu(1)));  // not bool
  EXPECT_FALSE(mask_prefixes(torch::zeros({4}, torch::kBool)));
}

// Against ATen's chain on every instruction set: within float rounding (the exponentials are approximations of
// our own); the output [B, H, T, dv] laid out so that transpose(1, 2) is contiguous.
TEST(Attention, IsTheChainOfAtensOperators) {
  torch::manual_seed(0);
  struct Case {
    int64_t batch, tokens, heads, d;
    bool causal;
    float fill;
  };
  for (const Case& c : std::vector<Case>{{1, 64, 4, 32, true, -1e9f},  // fortune-gpt
                                         {1, 17, 4, 16, false, 0},     // fmnist-vit
                                         {2, 37, 3, 8, true, -std::numeric_limits<float>::infinity()},
                                         {1, 20, 2, 24, true, 0.0f},  // a fill that is not negligible
                                         {3, 5, 1, 4, true, -1e4f}}) {
    SCOPED_TRACE(testing::Message() << c.batch << "x" << c.tokens << " heads " << c.heads << " d " << c.d
                                    << (c.causal ? " causal" : "") << " fill " << c.fill);
    const Heads h = heads_of(c.batch, c.tokens, c.heads, c.d);
    const at::Tensor mask = c.causal ? torch::ones({c.tokens, c.tokens}, torch::kBool).triu(1) : at::Tensor();
    const float alpha = 1.0f / std::sqrt(static_cast<float>(c.d));
    const at::Tensor want = chain(h.q, h.kt, h.v, mask, c.fill, alpha);
    for (Isa isa : runnable_isas()) {
      SCOPED_TRACE(to_string(isa));
      const at::Tensor got = attention(h.q, h.kt, h.v, {mask, c.fill}, alpha, isa);
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_TRUE(torch::allclose(got, want, 1e-5, 1e-6)) << (got - want).abs().max().item<float>();
      EXPECT_TRUE(got.transpose(1, 2).is_contiguous());
      // Three dimensions (heads first, no batch) and contiguous operands: the same values.
      const at::Tensor flat =
          attention(h.q[0].contiguous(), h.kt[0].contiguous(), h.v[0].contiguous(), {mask, c.fill}, alpha, isa);
      EXPECT_TRUE(torch::allclose(flat, want[0], 1e-5, 1e-6));
    }
  }
}

// A causal mask's blocks skip the keys it hides, and give the bits of the full products with the mask applied
// (what a mask of no prefix form takes): the hidden keys add exact zeros. Where the fill is not negligible
// against a block's scores, that block takes the full products.
TEST(Attention, SkippingHiddenKeysGivesTheBitsOfTheFullProducts) {
  torch::manual_seed(1);
  const Heads h = heads_of(1, 64, 4, 32);
  const at::Tensor causal = torch::ones({64, 64}, torch::kBool).triu(1);
  const std::optional<std::vector<int64_t>> no_prefixes, prefixes = mask_prefixes(causal);
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(to_string(isa));
    for (float fill : {-1e9f, -std::numeric_limits<float>::infinity(), -60.0f}) {
      const at::Tensor skipped = attention(h.q, h.kt, h.v, {causal, fill, &prefixes}, 0.125f, isa);
      const at::Tensor full = attention(h.q, h.kt, h.v, {causal, fill, &no_prefixes}, 0.125f, isa);
      EXPECT_TRUE(same_bits(skipped, full)) << fill;
    }
    // A fill of −60 is negligible only in the second block, whose queries are scaled up: that block skips, the
    // others take the full products; the chain's values either way.
    at::Tensor q = h.q.clone();
    q.slice(2, 16, 32).mul_(1e3);
    const at::Tensor mixed = attention(q, h.kt, h.v, {causal, -60.0f, &prefixes}, 0.125f, isa);
    EXPECT_TRUE(same_bits(mixed, attention(q, h.kt, h.v, {causal, -60.0f, &no_prefixes}, 0.125f, isa)));
    const at::Tensor want = chain(q, h.kt, h.v, causal, -60.0f, 0.125f);
    // Scores near 700 carry a rounding of about 1e-4 in their exponent (the dot products' sum order differs).
    EXPECT_TRUE(torch::allclose(mixed, want, 1e-4, 1e-4)) << (mixed - want).abs().max().item<float>();
  }
}

// Masks of other forms (a random one, one with a wholly masked row), NaN in a query, and shapes the op does not
// take (double, broadcast batch dimensions): ATen's chain's values.
TEST(Attention, OtherMasksNaNAndShapesItDoesNotTake) {
  torch::manual_seed(2);
  const Heads h = heads_of(2, 12, 2, 8);
  at::Tensor random = torch::rand({12, 12}) < 0.3;
  random.select(1, 0).fill_(false);
  at::Tensor masked_row = torch::ones({12, 12}, torch::kBool).triu(1);
  masked_row[5].fill_(true);  // softmax of a row of fills: uniform
  at::Tensor q = h.q.clone();
  q[1][0][3][2] = std::numeric_limits<float>::quiet_NaN();
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(to_string(isa));
    for (const at::Tensor& mask : {random, masked_row}) {
      const at::Tensor want = chain(q, h.kt, h.v, mask, -1e9f, 0.5f);
      const at::Tensor got = attention(q, h.kt, h.v, {mask, -1e9f}, 0.5f, isa);
      EXPECT_TRUE(torch::equal(got.isnan(), want.isnan()));
      EXPECT_TRUE(torch::allclose(got.nan_to_num(0), want.nan_to_num(0), 1e-5, 1e-6));
    }
  }
  const at::Tensor d = torch::randn({2, 5, 4}, torch::kDouble);
  EXPECT_TRUE(torch::allclose(attention(d, d.transpose(1, 2), d, {kNoMask, 0}, 1, Isa::kScalar),
                              chain(d, d.transpose(1, 2), d, kNoMask, 0, 1)));
  const at::Tensor one_head = torch::randn({1, 5, 8});  // broadcast over the batch and the heads
  const at::Tensor broadcast = attention(h.q.slice(2, 0, 5), one_head.transpose(1, 2).unsqueeze(0),
                                         one_head.unsqueeze(0), {kNoMask, 0}, 1, active_isa());
  EXPECT_TRUE(torch::allclose(
      broadcast, chain(h.q.slice(2, 0, 5), one_head.transpose(1, 2).unsqueeze(0), one_head.unsqueeze(0), kNoMask, 0, 1),
      1e-5, 1e-6));
}

// Heads split over two threads: each head computed as on one.
TEST(Attention, TwoThreadsGiveTheBitsOfOne) {
  torch::manual_seed(3);
  const Heads h = heads_of(1, 64, 4, 32);
  const at::Tensor causal = torch::ones({64, 64}, torch::kBool).triu(1);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  const at::Tensor one = attention(h.q, h.kt, h.v, {causal, -1e9f}, 0.125f, active_isa());
  omp_set_num_threads(2);
  const at::Tensor two = attention(h.q, h.kt, h.v, {causal, -1e9f}, 0.125f, active_isa());
  omp_set_num_threads(threads);
  EXPECT_TRUE(same_bits(one, two));
}

}  // namespace
}  // namespace packed
}  // namespace adze
