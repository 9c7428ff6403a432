// The depthwise convolution on every instruction set this CPU runs, against a direct double-precision reference
// and against ATen's grouped convolution of the same data in NCHW. Shapes are drawn with fixed seeds over channel
// counts with and without vector tails, kernel sizes, strides, paddings and dilations (each axis on its own
// too), from images with no interior pixel up to MobileNet-V2's shapes. Outputs are pre-filled with NaN and
// followed by guard values, so that a pixel left unwritten or a store past the end fails. Summation order may
// differ between paths, so each output is bounded by 1e-5·(1 + Σ|x·w|) around the reference. Two threads must
// give one thread's bits.
#include "runtime/kernels/depthwise.h"

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "core/error.h"

namespace adze {
namespace runtime {
namespace {

constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kGuard = 12345.0f;

std::string describe(const DepthwiseShape& s) {
  auto str = [](int64_t v) { return std::to_string(v); };
  return "n " + str(s.n) + ", " + str(s.h) + "x" + str(s.w) + "x" + str(s.c) + ", kernel " + str(s.kh) + "x" +
         str(s.kw) + ", stride " + str(s.stride_y) + "," + str(s.stride_x) + ", pad " + str(s.pad_y) + "," +
         str(s.pad_x) + ", dilation " + str(s.dilation_y) + "," + str(s.dilation_x);
}

struct Case {
  DepthwiseShape s;
  bool bias = true;
  float lo = -kInf, hi = kInf;
  float x_scale = 1.0f;
  int nans = 0;  ///< input values set to NaN
  unsigned seed = 1;
};

// What a case produced, for the tests that look further than the comparisons.
struct Outcome {
  int64_t outputs = 0, nan = 0, at_lo = 0, at_hi = 0;
};

// Runs every path on the case; `out`, when given, receives the reference's counts.
void check(const Case& k, Outcome* out = nullptr) {
  const DepthwiseShape& s = k.s;
  SCOPED_TRACE(describe(s));
  const int64_t oh = s.out_h(), ow = s.out_w(), c = s.c, taps = s.kh * s.kw;
  std::mt19937 rng(k.seed);
  std::normal_distribution<float> nd(0.0f, 1.0f);
  std::vector<float> x(static_cast<std::size_t>(s.n * s.h * s.w * c)), w(static_cast<std::size_t>(taps * c)),
      bias(static_cast<std::size_t>(c));
  for (auto& v : x) v = k.x_scale * nd(rng);
  for (auto& v : w) v = nd(rng);
  for (auto& v : bias) v = nd(rng);
  for (int i = 0; i < k.nans; ++i) x[rng() % x.size()] = kNaN;
  const float* b = k.bias ? bias.data() : nullptr;

  // Direct reference in double, with the scale of its terms for the tolerance.
  const std::size_t outputs = static_cast<std::size_t>(s.n * oh * ow * c);
  std::vector<double> ref(outputs), mag(outputs);
  for (int64_t n = 0; n < s.n; ++n)
    for (int64_t oy = 0; oy < oh; ++oy)
      for (int64_t ox = 0; ox < ow; ++ox)
        for (int64_t ch = 0; ch < c; ++ch) {
          double sum = b ? b[ch] : 0.0, abs = std::abs(sum);
          for (int64_t i = 0; i < s.kh; ++i)
            for (int64_t j = 0; j < s.kw; ++j) {
              const int64_t iy = oy * s.stride_y - s.pad_y + i * s.dilation_y;
              const int64_t ix = ox * s.stride_x - s.pad_x + j * s.dilation_x;
              if (iy < 0 || iy >= s.h || ix < 0 || ix >= s.w) continue;
              const double t = static_cast<double>(x[static_cast<std::size_t>(((n * s.h + iy) * s.w + ix) * c + ch)]) *
                               w[static_cast<std::size_t>((i * s.kw + j) * c + ch)];
              sum += t;
              abs += std::abs(t);
            }
          const std::size_t o = static_cast<std::size_t>(((n * oh + oy) * ow + ox) * c + ch);
          ref[o] = sum < k.lo ? k.lo : sum > k.hi ? k.hi : sum;
          mag[o] = abs;
        }

  // ATen's grouped convolution on the NCHW permutation, back to NHWC.
  const at::Tensor xt = at::from_blob(x.data(), {s.n, s.h, s.w, c}).permute({0, 3, 1, 2}).contiguous();
  const at::Tensor wt =
      at::from_blob(w.data(), {s.kh, s.kw, c}).permute({2, 0, 1}).reshape({c, 1, s.kh, s.kw}).contiguous();
  const at::Tensor bt = b ? at::from_blob(bias.data(), {c}) : at::Tensor();
  const at::Tensor aten =
      at::clamp(at::conv2d(xt, wt, bt, {s.stride_y, s.stride_x}, {s.pad_y, s.pad_x}, {s.dilation_y, s.dilation_x}, c),
                k.lo, k.hi)
          .permute({0, 2, 3, 1})
          .contiguous();
  EXPECT_EQ(aten.numel(), static_cast<int64_t>(outputs));
  const float* want = aten.data_ptr<float>();

  if (out) {
    out->outputs = static_cast<int64_t>(outputs);
    for (std::size_t o = 0; o < outputs; ++o) {
      out->nan += std::isnan(ref[o]);
      out->at_lo += ref[o] == k.lo;
      out->at_hi += ref[o] == k.hi;
    }
  }
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(to_string(isa));
    std::vector<float> y(outputs + 16, kNaN);
    for (std::size_t o = outputs; o < y.size(); ++o) y[o] = kGuard;
    depthwise_conv2d_nhwc(s, x.data(), w.data(), b, k.lo, k.hi, y.data(), isa);
    for (std::size_t o = 0; o < outputs; ++o) {
      if (std::isnan(ref[o])) {
        EXPECT_TRUE(std::isnan(y[o])) << "output " << o << " is " << y[o] << ", want NaN";
        EXPECT_TRUE(std::isnan(want[o])) << "ATen's output " << o;
        continue;
      }
      const double tol = 1e-5 * (1.0 + mag[o]);
      ASSERT_NEAR(y[o], ref[o], tol) << "output " << o << " (pixel " << o / static_cast<std::size_t>(c) << ", channel "
                                     << o % static_cast<std::size_t>(c) << ")";
      ASSERT_NEAR(y[o], want[o], 2 * tol) << "output " << o << " against ATen";
    }
    for (std::size_t o = outputs; o < y.size(); ++o) ASSERT_EQ(y[o], kGuard) << "written past the end";
    // Two threads split the output rows where the work pays: each row as one thread computes it.
    const int threads = at::get_num_threads();
    at::set_num_threads(2);
    std::vector<float> two(outputs + 16, kNaN);
    depthwise_conv2d_nhwc(s, x.data(), w.data(), b, k.lo, k.hi, two.data(), isa);
    at::set_num_threads(threads);
    ASSERT_EQ(std::memcmp(y.data(), two.data(), outputs * sizeof(float)), 0) << "two threads, other bits";
  }
}

// Smallest input that still has an output, plus up to `extra` more.
int64_t draw_size(std::mt19937& rng, int64_t k, int64_t pad, int64_t dilation, int64_t extra) {
  const int64_t need = dilation * (k - 1) + 1 - 2 * pad;
  return (need > 1 ? need : 1) + static_cast<int64_t>(rng() % static_cast<unsigned>(extra + 1));
}

TEST(Depthwise, KernelsStridesPaddingsDilationsAndChannelTails) {
  const int64_t kernels[][2] = {{3, 3}, {5, 5}, {1, 3}};
  std::mt19937 rng(1);
  unsigned seed = 1;
  for (const int64_t c : {1, 7, 17, 33, 96})
    for (const auto& kk : kernels)
      for (const int64_t stride : {1, 2})
        for (const int64_t pad : {0, 1, 2})
          for (const int64_t dilation : {1, 2}) {
            Case k;
            k.s.n = 2;
            k.s.c = c;
            k.s.kh = kk[0];
            k.s.kw = kk[1];
            k.s.stride_y = k.s.stride_x = stride;
            k.s.pad_y = k.s.pad_x = pad;
            k.s.dilation_y = k.s.dilation_x = dilation;
            k.s.h = draw_size(rng, k.s.kh, pad, dilation, 9);
            k.s.w = draw_size(rng, k.s.kw, pad, dilation, 12);
            k.bias = seed % 3 != 0;
            k.seed = seed++;
            check(k);
            if (HasFatalFailure()) return;
          }
}

TEST(Depthwise, EachAxisOnItsOwn) {
  std::mt19937 rng(2);
  for (unsigned seed = 100; seed < 160; ++seed) {
    Case k;
    DepthwiseShape& s = k.s;
    s.n = 1 + rng() % 2;
    s.c = 1 + rng() % 40;
    s.kh = 1 + rng() % 5;
    s.kw = 1 + rng() % 5;
    s.stride_y = 1 + rng() % 3;
    s.stride_x = 1 + rng() % 3;
    s.pad_y = rng() % 3;
    s.pad_x = rng() % 3;
    s.dilation_y = 1 + rng() % 2;
    s.dilation_x = 1 + rng() % 2;
    s.h = draw_size(rng, s.kh, s.pad_y, s.dilation_y, 10);
    s.w = draw_size(rng, s.kw, s.pad_x, s.dilation_x, 14);
    k.seed = seed;
    check(k);
    if (HasFatalFailure()) return;
  }
}

// Tiny images where no pixel, or no tap row or column, lies wholly inside.
TEST(Depthwise, ImagesWithoutInterior) {
  const int64_t sizes[][2] = {{1, 1}, {1, 2}, {2, 2}, {2, 1}, {1, 5}, {3, 2}};
  unsigned seed = 200;
  for (const auto& hw : sizes)
    for (const int64_t c : {5, 16, 70}) {
      Case k;
      k.s.n = 2;
      k.s.h = hw[0];
      k.s.w = hw[1];
      k.s.c = c;
      k.s.pad_y = k.s.pad_x = 2;
      k.s.kh = k.s.kw = 3;
      k.seed = seed++;
      check(k);
      if (HasFatalFailure()) return;
    }
}

// Rows wide enough for the 3×3 interior sweeps (8 pixels a step at stride 1, 6 at stride 2, overlapping at the
// end of the row), with channel tails, interiors one pixel longer than a step or than two, and tall dilation.
TEST(Depthwise, WideThreeByThreeRows) {
  unsigned seed = 250;
  for (const int64_t c : {1, 7, 17, 33})
    for (const int64_t stride : {1, 2})
      for (const int64_t w : {stride == 1 ? 11 : 15, 21})
        for (const int64_t dilation_y : {1, 2}) {
          Case k;
          k.s.h = 7;
          k.s.w = w;
          k.s.c = c;
          k.s.stride_y = k.s.stride_x = stride;
          k.s.pad_y = k.s.pad_x = 1;
          k.s.dilation_y = dilation_y;
          k.lo = -1.0f;
          k.hi = 1.5f;
          k.seed = seed++;
          check(k);
          if (HasFatalFailure()) return;
        }
}

// MobileNet-V2's depthwise layers at a 64×64 input, ReLU6 after each.
TEST(Depthwise, MobileNetV2Shapes) {
  const int64_t shapes[][3] = {{32, 32, 1}, {96, 32, 2}, {144, 16, 1}, {144, 16, 2}, {192, 8, 1},
                               {384, 4, 1}, {576, 4, 1}, {576, 4, 2},  {960, 2, 1}};
  unsigned seed = 300;
  for (const auto& sh : shapes) {
    Case k;
    k.s.c = sh[0];
    k.s.h = k.s.w = sh[1];
    k.s.stride_y = k.s.stride_x = sh[2];
    k.s.pad_y = k.s.pad_x = 1;
    k.lo = 0.0f;
    k.hi = 6.0f;
    k.x_scale = 2.0f;
    k.seed = seed++;
    check(k);
    if (HasFatalFailure()) return;
  }
}

TEST(Depthwise, ReluSixClamps) {
  Case k;
  k.s.n = 2;
  k.s.h = 9;
  k.s.w = 11;
  k.s.c = 37;
  k.s.pad_y = k.s.pad_x = 1;
  k.lo = 0.0f;
  k.hi = 6.0f;
  k.x_scale = 3.0f;
  Outcome out;
  check(k, &out);
  // Both bounds bind somewhere, or the test would not see a missing clamp.
  EXPECT_GT(out.at_lo, out.outputs / 10);
  EXPECT_GT(out.at_hi, out.outputs / 20);
}

TEST(Depthwise, NaNPropagatesThroughTheClamp) {
  for (const int64_t c : {3, 16, 40}) {
    Case k;
    k.s.n = 2;
    k.s.h = 7;
    k.s.w = 9;
    k.s.c = c;
    k.s.pad_y = k.s.pad_x = 1;
    k.s.stride_x = 2;
    k.lo = 0.0f;
    k.hi = 6.0f;
    k.nans = 6;
    k.seed = static_cast<unsigned>(400 + c);
    Outcome out;
    check(k, &out);
    EXPECT_GT(out.nan, 0);
    EXPECT_LT(out.nan, out.outputs / 2);
  }
}

TEST(Depthwise, RejectsInvalidShapes) {
  std::vector<DepthwiseShape> bad(5);
  for (DepthwiseShape& s : bad) {
    s.h = s.w = 4;
    s.c = 4;
  }
  bad[0].h = 2;  // 3×3 on 2 unpadded rows: out_h() is 0
  bad[1].h = 2;  // and at stride 2 (2 − 2 − 1) / 2 + 1 truncates to 1, but PyTorch refuses it too
  bad[1].stride_y = 2;
  bad[2].pad_x = -1;
  bad[3].stride_x = 0;
  bad[4].dilation_y = 0;
  std::vector<float> x(64), w(36), y(64);
  for (Isa isa : runnable_isas())
    for (const DepthwiseShape& s : bad) {
      SCOPED_TRACE(describe(s));
      EXPECT_THROW(depthwise_conv2d_nhwc(s, x.data(), w.data(), nullptr, -kInf, kInf, y.data(), isa), Error);
    }
}

}  // namespace
}  // namespace runtime
}  // namespace adze
