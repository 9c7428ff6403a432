#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>

#include "quantize/pow2.h"
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
