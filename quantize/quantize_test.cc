#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <random>
#include <vector>

#include "quantize/pow2.h"
#include "quantize/squared_error.h"
#include "quantize/uniform.h"

namespace adze {
namespace {

struct Case {
  int bits;
  bool symmetric;
  ScaleMethod method;
};

class Uniform : public ::testing::TestWithParam<Case> {};

TEST_P(Uniform, AgreesWithTorchFakeQuantizeAndStaysInRange) {
  const Case c = GetParam();
  UniformSpec spec;
  spec.bits = c.bits;
  spec.symmetric = c.symmetric;
  spec.method = c.method;
  torch::manual_seed(c.bits);
  at::Tensor rows = torch::randn({16, 96}) * torch::rand({16, 1}) + (c.symmetric ? 0.0 : 0.3);
  RowQuantParams p = choose_row_params(rows, spec);
  EXPECT_TRUE((p.scale > 0).all().item<bool>());
  at::Tensor codes = quantize_rows(rows, p, spec);
  EXPECT_GE(codes.min().item<int64_t>(), spec.qmin());
  EXPECT_LE(codes.max().item<int64_t>(), spec.qmax());
  at::Tensor ours = dequantize_rows(codes, p);
  at::Tensor torch_fq =
      torch::fake_quantize_per_channel_affine(rows, p.scale, p.zero_point, 0, spec.qmin(), spec.qmax());
  EXPECT_TRUE(torch::equal(ours, torch_fq)) << (ours - torch_fq).abs().max().item<double>();
  // Decoding the codes again gives the same floats, bit for bit.
  EXPECT_TRUE(torch::equal(dequantize_rows(quantize_rows(ours, p, spec), p), ours));
}

INSTANTIATE_TEST_SUITE_P(Specs, Uniform,
                         ::testing::Values(Case{8, true, ScaleMethod::kMinMax}, Case{8, false, ScaleMethod::kMinMax},
                                           Case{4, true, ScaleMethod::kMinMax}, Case{4, false, ScaleMethod::kMse},
                                           Case{3, true, ScaleMethod::kMse}, Case{2, true, ScaleMethod::kPercentile},
                                           Case{6, false, ScaleMethod::kPercentile}));

TEST(Uniform, MinMaxScaleIsTheRangeOverTheLevels) {
  at::Tensor rows = torch::tensor({{-2.0f, 1.0f, 0.5f}, {0.0f, 0.0f, 0.0f}});
  UniformSpec spec;
  spec.bits = 4;
  RowQuantParams p = choose_row_params(rows, spec);
  EXPECT_FLOAT_EQ(p.scale[0].item<float>(), 2.0f / 7.0f);
  EXPECT_FLOAT_EQ(p.scale[1].item<float>(), 1.0f);  // an all-zero row
  spec.symmetric = false;
  p = choose_row_params(rows, spec);
  EXPECT_FLOAT_EQ(p.scale[0].item<float>(), 3.0f / 15.0f);
  EXPECT_EQ(p.zero_point[0].item<int>(), 10);  // round(2 / 0.2)
}

TEST(Uniform, MseNeverLosesToMinMax) {
  torch::manual_seed(5);
  at::Tensor rows = torch::randn({32, 256});
  rows.index_put_({torch::indexing::Slice(), 0}, 8.0);  // an outlier per row
  UniformSpec spec;
  spec.bits = 3;
  auto error = [&](ScaleMethod m) {
    spec.method = m;
    RowQuantParams p = choose_row_params(rows, spec);
    return (dequantize_rows(quantize_rows(rows, p, spec), p) - rows).pow(2).sum(1);
  };
  at::Tensor minmax = error(ScaleMethod::kMinMax), mse = error(ScaleMethod::kMse);
  EXPECT_TRUE((mse <= minmax).all().item<bool>());
  EXPECT_LT(mse.sum().item<double>(), 0.7 * minmax.sum().item<double>());
}

TEST(Uniform, Pow2ScalesArePowersOfTwoAndMaskedElementsDoNotWidenTheRange) {
  at::Tensor rows = torch::tensor({{0.3f, -0.1f, 100.0f}});
  at::Tensor keep = torch::tensor({{true, true, false}});
  UniformSpec spec;
  spec.bits = 8;
  spec.pow2_scale = true;
  RowQuantParams p = choose_row_params(rows, spec, keep);
  const double s = p.scale[0].item<float>();
  EXPECT_EQ(std::exp2(std::round(std::log2(s))), s);
  EXPECT_GE(s * 127, 0.3);
  EXPECT_LT(s * 127, 0.6);  // 100.0 was ignored
}

// The MSE search's squared error: the same bits on every instruction set this CPU runs, and the sum of
// squares a double reference computes, masked or not, on lengths around the sixteen lanes and the blocks.
TEST(SquaredError, SameBitsOnEveryIsaAndTheSumOfSquares) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  const RowQuantization q{0.07f, 1.0f / 0.07f, -8.0f, 7.0f};
  for (const int64_t n : {1, 15, 16, 17, 255, 256, 257, 1000, 4099}) {
    std::vector<float> x(static_cast<std::size_t>(n));
    std::vector<uint8_t> keep(x.size());
    for (auto& v : x) v = nd(rng);
    for (auto& k : keep) k = static_cast<uint8_t>(rng() % 2);
    for (const uint8_t* mask : {static_cast<const uint8_t*>(nullptr), static_cast<const uint8_t*>(keep.data())}) {
      SCOPED_TRACE("n " + std::to_string(n) + (mask ? ", masked" : ""));
      double want = 0;
      for (int64_t k = 0; k < n; ++k) {
        const float v = mask && !mask[k] ? 0.0f : x[static_cast<std::size_t>(k)];
        const float code = std::nearbyint(std::min(std::max(v * q.inv, q.lo), q.hi));
        const double d = static_cast<double>(code * q.scale) - static_cast<double>(v);
        want += d * d;
      }
      const double scalar = row_squared_error(x.data(), mask, n, q, Isa::kScalar);
      EXPECT_NEAR(scalar, want, 1e-5 * want + 1e-12);
      for (const Isa isa : runnable_isas())
        EXPECT_EQ(row_squared_error(x.data(), mask, n, q, isa), scalar) << to_string(isa);
      // Several quantizations in one pass (1 to 6: one and two passes of up to four): each the same bits as
      // alone.
      std::vector<RowQuantization> several;
      for (int c = 0; c < 6; ++c) {
        const float s = 0.05f + 0.013f * static_cast<float>(c);
        several.push_back({s, 1.0f / s, -8.0f + static_cast<float>(c % 2), 7.0f});
      }
      for (const Isa isa : runnable_isas())
        for (int count = 1; count <= 6; ++count) {
          std::vector<double> errors(static_cast<std::size_t>(count), -1);
          row_squared_errors(x.data(), mask, n, several.data(), count, errors.data(), isa);
          for (int c = 0; c < count; ++c)
            EXPECT_EQ(errors[static_cast<std::size_t>(c)],
                      row_squared_error(x.data(), mask, n, several[static_cast<std::size_t>(c)], Isa::kScalar))
                << to_string(isa) << ", " << c << " of " << count;
        }
    }
  }
}

TEST(Pow2, EveryValueIsZeroOrAPowerOfTwoNearestInLogScale) {
  torch::manual_seed(9);
  at::Tensor rows = torch::randn({8, 64});
  Pow2Rows q = quantize_pow2_rows(rows, 4);
  at::Tensor values = dequantize_pow2_rows(q.codes, q.scale, 4);
  at::Tensor nonzero = values.masked_select(values != 0).abs();
  EXPECT_TRUE(torch::equal(torch::exp2(torch::round(torch::log2(nonzero))), nonzero));
  EXPECT_LE(q.codes.abs().max().item<int>(), 7);
  // The largest magnitude of each row maps within a factor sqrt(2) of itself.
  at::Tensor peak = std::get<0>(rows.abs().max(1)), got = std::get<0>(values.abs().max(1));
  EXPECT_TRUE(((got / peak) <= std::sqrt(2.0) + 1e-6).all().item<bool>());
  EXPECT_TRUE(((got / peak) >= 1 / std::sqrt(2.0) - 1e-6).all().item<bool>());
}

}  // namespace
}  // namespace adze
