// The runtime's own float ops against ATen's, on random shapes and every window option.
#include "runtime/float_ops.h"

#include <gtest/gtest.h>
#include <omp.h>
#include <torch/torch.h>

#include <limits>

#include "runtime/kernels/qgemm.h"

namespace adze {
namespace packed {
namespace {

// Global average pooling (adaptive_avg_pool2d to 1x1) against ATen's, NCHW and channels last: within float
// rounding of its sum order, and the same bits where the sums are exact orders apart (2x2, ResNet-18 at 64x64).
TEST(FloatOps, GlobalAvgPoolIsAtens) {
  torch::manual_seed(1);
  for (const auto& shape : std::vector<std::vector<int64_t>>{{1, 512, 2, 2}, {2, 24, 7, 7}, {1, 37, 3, 5}}) {
    const at::Tensor x = torch::randn(shape);
    for (const at::Tensor& in : {x, x.contiguous(at::MemoryFormat::ChannelsLast)}) {
      SCOPED_TRACE(c10::str(in.sizes(), in.strides()));
      ASSERT_TRUE(fits_global_avg_pool(in));
      const at::Tensor want = torch::adaptive_avg_pool2d(in, {1, 1});
      const at::Tensor got = global_avg_pool(in);
      ASSERT_EQ(got.sizes(), want.sizes());
      EXPECT_TRUE(torch::allclose(got, want, 1e-6, 1e-7)) << (got - want).abs().max().item<float>();
      if (shape[2] * shape[3] == 4) {
        EXPECT_TRUE(torch::equal(got.contiguous(), want.contiguous()));
      }
    }
  }
  EXPECT_FALSE(fits_global_avg_pool(torch::randn({2, 3, 4})));
  EXPECT_FALSE(fits_global_avg_pool(torch::randn({1, 3, 4, 4}, torch::kDouble)));
}

// A channels-last [N, C, H, W] flattened from dimension 1: ATen's values in ATen's order; other layouts and
// ranges are ATen's to do.
TEST(FloatOps, FlattenChannelsLastIsAtens) {
  torch::manual_seed(2);
  for (const auto& shape : std::vector<std::vector<int64_t>>{{1, 64, 7, 7}, {3, 13, 5, 2}, {2, 9, 1, 3}}) {
    const at::Tensor x = torch::randn(shape).contiguous(at::MemoryFormat::ChannelsLast);
    SCOPED_TRACE(c10::str(x.sizes()));
    ASSERT_TRUE(fits_flatten_channels_last(x, 1, -1));
    ASSERT_TRUE(fits_flatten_channels_last(x, -3, 3));
    const at::Tensor got = flatten_channels_last(x);
    EXPECT_TRUE(got.is_contiguous());
    EXPECT_TRUE(torch::equal(got, x.flatten(1, -1)));
  }
  const at::Tensor x = torch::randn({2, 8, 3, 3});
  EXPECT_FALSE(fits_flatten_channels_last(x, 1, -1));  // contiguous: a view
  const at::Tensor cl = x.contiguous(at::MemoryFormat::ChannelsLast);
  EXPECT_FALSE(fits_flatten_channels_last(cl, 2, -1));
  EXPECT_FALSE(fits_flatten_channels_last(cl, 0, -1));
  EXPECT_FALSE(fits_flatten_channels_last(cl.to(torch::kDouble), 1, -1));
  EXPECT_FALSE(fits_flatten_channels_last(torch::randn({1, 8, 1, 1}).contiguous(at::MemoryFormat::ChannelsLast), 1,
                                          -1));  // contiguous as well
}

TEST(FloatOps, MaxPool2dIsAtens) {
  torch::manual_seed(0);
  struct Window {
    std::vector<int64_t> kernel, stride, padding, dilation;
    bool ceil_mode;
  };
  for (const Window& w : std::vector<Window>{{{2, 2}, {2, 2}, {0, 0}, {1, 1}, false},
                                             {{3, 3}, {2, 2}, {1, 1}, {1, 1}, false},
                                             {{3, 3}, {2, 2}, {1, 1}, {1, 1}, true},
                                             {{2, 3}, {1, 2}, {1, 0}, {2, 1}, true},
                                             {{2, 2}, {}, {0, 0}, {1, 1}, false}}) {
    for (const auto& shape : std::vector<std::vector<int64_t>>{{1, 3, 9, 7}, {2, 4, 12, 12}, {1, 37, 8, 9}}) {
      at::Tensor x = torch::randn(shape);
      x.view({-1})[5] = std::numeric_limits<float>::quiet_NaN();  // NaN wins its windows, as in ATen
      const at::Tensor want = torch::max_pool2d(x, w.kernel, w.stride, w.padding, w.dilation, w.ceil_mode);
      // NCHW, and channels last as convolutions leave their outputs (pooled across the channels in vectors).
      for (const at::Tensor& in : {x, x.contiguous(at::MemoryFormat::ChannelsLast)}) {
        const at::Tensor got = max_pool2d(in, w.kernel, w.stride, w.padding, w.dilation, w.ceil_mode);
        ASSERT_EQ(got.sizes(), want.sizes());
        EXPECT_TRUE(torch::equal(got.isnan(), want.isnan()));
        EXPECT_TRUE(torch::equal(got.nan_to_num(0), want.nan_to_num(0)));
        // A fake quantization folded in: the pool's output, then fake_quantize's, bit for bit.
        const ActivationQuant q{0.07f, 100};
        const at::Tensor quantized = max_pool2d(in, w.kernel, w.stride, w.padding, w.dilation, w.ceil_mode, q);
        EXPECT_TRUE(torch::equal(quantized, fake_quantize(got, q)));
        // The outputs' range, asked for: value_range's of the output (NaN not taken).
        float range[2] = {0.0f, 0.0f}, want_lo = 0.0f, want_hi = 0.0f;
        max_pool2d(in, w.kernel, w.stride, w.padding, w.dilation, w.ceil_mode, std::nullopt, range);
        const at::Tensor flat = got.contiguous();
        runtime::value_range(flat.data_ptr<float>(), flat.numel(), &want_lo, &want_hi);
        EXPECT_EQ(range[0], want_lo);
        EXPECT_EQ(range[1], want_hi);
      }
    }
  }
}

// A pool large enough for two threads, channels last, the second image at three times the first's scale: each
// thread takes the range of the pixels it pooled, and the merged range is the whole output's.
TEST(FloatOps, MaxPool2dRangeOnTwoThreads) {
  torch::manual_seed(2);
  const int threads = omp_get_max_threads();
  omp_set_num_threads(2);
  const at::Tensor x = (torch::randn({2, 64, 32, 32}) * torch::tensor({1.0f, 3.0f}).view({2, 1, 1, 1}))
                           .contiguous(at::MemoryFormat::ChannelsLast);
  float range[2] = {0.0f, 0.0f}, want_lo = 0.0f, want_hi = 0.0f;
  const at::Tensor got = max_pool2d(x, {3, 3}, {2, 2}, {1, 1}, {1, 1}, false, std::nullopt, range).contiguous();
  omp_set_num_threads(threads);
  runtime::value_range(got.data_ptr<float>(), got.numel(), &want_lo, &want_hi);
  EXPECT_EQ(range[0], want_lo);
  EXPECT_EQ(range[1], want_hi);
}

// Bit for bit ATen's operator, on halves, the clamp's edges, NaN and -inf, contiguous and channels last.
TEST(FloatOps, FakeQuantizeIsAtens) {
  torch::manual_seed(1);
  for (const float scale : {0.05f, 0.3f, 1.0f})
    for (const int32_t zero : {0, 3, 128, 255}) {
      at::Tensor x = torch::randn({2, 5, 7, 6}) * 4;
      auto flat = x.view({-1});
      flat[0] = std::numeric_limits<float>::quiet_NaN();
      flat[1] = 1e6f;  // clamped to 255 (+inf is not: ATen's cast to int64 wraps it to code 0, ours clamps it)
      flat[2] = -std::numeric_limits<float>::infinity();
      flat[3] = 0.5f * scale;  // a tie, rounded to even
      flat[4] = 1.5f * scale;
      const at::Tensor want = torch::fake_quantize_per_tensor_affine(x, scale, zero, 0, 255);
      for (const at::Tensor& in : {x, x.contiguous(at::MemoryFormat::ChannelsLast)}) {
        const at::Tensor got = fake_quantize(in, {scale, zero});
        EXPECT_EQ(got.strides(), in.strides());
        EXPECT_TRUE(torch::equal(got, want)) << "scale " << scale << ", zero point " << zero;
      }
    }
}

// A causal mask over attention heads, as fortune-gpt's graph applies it; a mask that does not match the
// trailing dimensions is not taken (ATen runs it).
TEST(FloatOps, MaskedFillIsAtens) {
  torch::manual_seed(2);
  const at::Tensor x = torch::randn({1, 4, 9, 9});
  const at::Tensor mask = torch::ones({9, 9}, torch::kBool).triu(1);
  ASSERT_TRUE(fits_masked_fill(x, mask));
  EXPECT_TRUE(torch::equal(masked_fill(x, mask, -1e9f), x.masked_fill(mask, -1e9)));
  EXPECT_FALSE(fits_masked_fill(x, torch::ones({9, 1}, torch::kBool)));
  EXPECT_FALSE(fits_masked_fill(x.transpose(2, 3), mask));
}

}  // namespace
}  // namespace packed
}  // namespace adze
