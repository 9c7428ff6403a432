// The integer matmul on every instruction set this CPU runs, against the scalar reference (bit for bit: the
// kernels are exact in integers and share the float epilogue) and against a plain double-precision matmul of
// the dequantized operands. Shapes, widths, patterns and groups are drawn at random with fixed seeds, tails
// and odd sizes included, and outputs are pre-filled with NaN so that a row left unwritten fails. Each weight
// layout (dense, mask, pairs) is run through every path: one activation row (row_dot, where the layout and
// groups allow it) and several (the GEMM microkernel's panels on AVX-512, four-row tiles elsewhere).
#include "runtime/kernels/qgemm.h"

#include <gtest/gtest.h>
#include <omp.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <limits>
#include <optional>
#include <random>

#include "core/error.h"
#include "runtime/kernels/row_kernels.h"
#include "runtime/parallel.h"

namespace adze {
namespace runtime {
namespace {

// A random quantized matrix and activations, with everything the reference needs.
class QGemmTester {
 public:
  QGemmTester& rows(int64_t v) {
    rows_ = v;
    return *this;
  }
  QGemmTester& k(int64_t v) {
    k_ = v;
    return *this;
  }
  QGemmTester& m(int64_t v) {
    m_ = v;
    return *this;
  }
  QGemmTester& bits(int v) {
    bits_ = v;
    return *this;
  }
  QGemmTester& nm(int n, int mm) {
    n_ = n;
    mm_ = mm;
    return *this;
  }
  QGemmTester& group(int64_t v) {
    group_ = v;
    return *this;
  }
  QGemmTester& asymmetric(bool v) {
    asymmetric_ = v;
    return *this;
  }
  QGemmTester& offset(int v) {
    offset_ = v;
    return *this;
  }  ///< the same offset in every row
  QGemmTester& expect(QPattern v) {
    expect_ = v;
    return *this;
  }  ///< the layout pack_qweights must choose
  QGemmTester& seed(unsigned v) {
    seed_ = v;
    return *this;
  }

  void test() const {
    std::mt19937 rng(seed_);
    const int64_t group = group_ > 0 ? group_ : k_, groups = k_ / group;
    std::vector<uint8_t> u(static_cast<std::size_t>(rows_ * k_));
    std::vector<int32_t> offset(static_cast<std::size_t>(rows_));
    std::vector<float> scale(static_cast<std::size_t>(rows_ * groups));
    std::vector<char> keep_storage;
    std::uniform_int_distribution<int> code(0, (1 << bits_) - 1);
    for (auto& v : u) v = static_cast<uint8_t>(code(rng));
    for (auto& o : offset) o = offset_ ? *offset_ : asymmetric_ ? code(rng) : 1 << (bits_ - 1);
    std::uniform_real_distribution<float> sd(0.001f, 0.1f);
    for (auto& s : scale) s = sd(rng);
    if (n_ > 0) {  // exactly n of every m consecutive positions, chosen at random
      keep_storage.assign(static_cast<std::size_t>(rows_ * k_), 0);
      for (int64_t r = 0; r < rows_; ++r)
        for (int64_t g = 0; g < k_ / mm_; ++g) {
          std::vector<int> pos(static_cast<std::size_t>(mm_));
          for (int i = 0; i < mm_; ++i) pos[static_cast<std::size_t>(i)] = i;
          std::shuffle(pos.begin(), pos.end(), rng);
          for (int i = 0; i < n_; ++i)
            keep_storage[static_cast<std::size_t>(r * k_ + g * mm_ + pos[static_cast<std::size_t>(i)])] = 1;
        }
    }
    const bool* keep = n_ > 0 ? reinterpret_cast<const bool*>(keep_storage.data()) : nullptr;
    const PackedQWeights packed = pack_qweights(rows_, k_, bits_, u.data(), keep, offset.data(), scale.data(), group);
    const QWeightLayout& l = packed.layout;
    if (expect_) {
      ASSERT_EQ(static_cast<int>(l.pattern), static_cast<int>(*expect_));
    }

    std::vector<float> x(static_cast<std::size_t>(m_ * k_)), bias(static_cast<std::size_t>(rows_));
    std::normal_distribution<float> nd(0.3f, 1.0f);
    for (auto& v : x) v = nd(rng);
    for (auto& v : bias) v = nd(rng);
    std::vector<uint8_t> q(static_cast<std::size_t>(m_ * l.k_pad));
    std::vector<float> sx(static_cast<std::size_t>(m_));
    std::vector<int32_t> zx(static_cast<std::size_t>(m_));
    quantize_rows_dynamic(x.data(), m_, k_, k_, nullptr, l.k_pad, q.data(), sx.data(), zx.data());
    const QActivations a{q.data(), m_, l.k_pad, sx.data(), zx.data()};

    // Plain reference of the dequantized operands, in double.
    std::vector<double> ref(static_cast<std::size_t>(m_ * rows_));
    for (int64_t i = 0; i < m_; ++i)
      for (int64_t r = 0; r < rows_; ++r) {
        double s = bias[static_cast<std::size_t>(r)];
        for (int64_t j = 0; j < k_; ++j) {
          if (keep && !keep[r * k_ + j]) continue;
          const double w =
              (static_cast<double>(u[static_cast<std::size_t>(r * k_ + j)]) - offset[static_cast<std::size_t>(r)]) *
              scale[static_cast<std::size_t>(r * groups + j / group)];
          const double xv =
              (static_cast<double>(q[static_cast<std::size_t>(i * l.k_pad + j)]) - zx[static_cast<std::size_t>(i)]) *
              sx[static_cast<std::size_t>(i)];
          s += w * xv;
        }
        ref[static_cast<std::size_t>(i * rows_ + r)] = s;
      }

    std::vector<float> scalar_out;
    for (Isa isa : runnable_isas()) {
      SCOPED_TRACE(to_string(isa));
      std::vector<float> y(static_cast<std::size_t>(m_ * rows_), std::numeric_limits<float>::quiet_NaN());
      qgemm(packed.view(), a, bias.data(), y.data(), rows_, isa);
      for (std::size_t i = 0; i < y.size(); ++i)
        ASSERT_NEAR(y[i], ref[i], 1e-4 * (1.0 + std::abs(ref[i]))) << "output " << i;
      if (isa == Isa::kScalar)
        scalar_out = y;
      else
        for (std::size_t i = 0; i < y.size(); ++i) ASSERT_EQ(y[i], scalar_out[i]) << "output " << i;
      // Prebuilt panels (where the ISA has a microkernel) and a fused clamp change nothing but the time and
      // the clamped values.
      const QPanels panels(packed.view(), isa);
      const float lo = -0.5f, hi = 1.5f;
      // The outputs' range, asked for (QGemmOptions::range), is value_range's of what was written.
      const auto expect_range = [&](const std::vector<float>& out, const float* got) {
        float want_lo = 0, want_hi = 0;
        value_range(out.data(), static_cast<int64_t>(out.size()), &want_lo, &want_hi, isa);
        ASSERT_EQ(got[0], want_lo);
        ASSERT_EQ(got[1], want_hi);
      };
      std::vector<float> yp(y.size(), std::numeric_limits<float>::quiet_NaN());
      float range[2] = {0.0f, 0.0f};
      QGemmOptions clamped{&panels, lo, hi};
      clamped.range = range;
      qgemm(packed.view(), a, bias.data(), yp.data(), rows_, isa, clamped);
      for (std::size_t i = 0; i < y.size(); ++i) ASSERT_EQ(yp[i], std::min(hi, std::max(lo, y[i]))) << "output " << i;
      expect_range(yp, range);
      QGemmOptions unclamped;
      unclamped.range = range;
      range[0] = range[1] = 0.0f;
      std::vector<float> yu(y.size(), std::numeric_limits<float>::quiet_NaN());
      qgemm(packed.view(), a, bias.data(), yu.data(), rows_, isa, unclamped);
      ASSERT_EQ(yu, y);
      expect_range(yu, range);
      // A fused residual add (rows of their own stride, a NaN among them): the outputs plus the residual, then
      // clamped, as the unfused add and clamp round them; and the outputs fake-quantized after all else, with the
      // residual and without (as fake_quantize_static); with the panels and without.
      const int64_t r_stride = rows_ + 3;
      std::vector<float> res(static_cast<std::size_t>(m_ * r_stride));
      for (auto& v : res) v = nd(rng);
      res[0] = std::numeric_limits<float>::quiet_NaN();
      const float qs = 0.05f;
      const int32_t qz = 7;
      for (const QPanels* with : {&panels, static_cast<const QPanels*>(nullptr)})
        for (bool quantized : {false, true})
          for (bool residual : {true, false}) {
            if (!residual && !quantized) continue;
            std::vector<float> yr(y.size(), 0.0f), want(y.size());
            float ranged[2] = {0.0f, 0.0f};
            qgemm(packed.view(), a, bias.data(), yr.data(), rows_, isa,
                  QGemmOptions{with, lo, hi, nullptr, residual ? res.data() : nullptr, r_stride, 0.0f, 0,
                               quantized ? qs : 0.0f, qz, ranged});
            expect_range(yr, ranged);
            for (int64_t i = 0; i < m_; ++i)
              for (int64_t r = 0; r < rows_; ++r) {
                const auto at = static_cast<std::size_t>(i * rows_ + r);
                const float v = y[at] + (residual ? res[static_cast<std::size_t>(i * r_stride + r)] : 0.0f);
                want[at] = v < lo ? lo : v > hi ? hi : v;
              }
            if (quantized) fake_quantize_static(want.data(), m_ * rows_, qs, qz, want.data(), isa);
            for (std::size_t i = 0; i < y.size(); ++i)
              ASSERT_TRUE(std::isnan(want[i]) ? std::isnan(yr[i]) : yr[i] == want[i])
                  << "output " << i << (residual ? ", residual" : "") << (quantized ? ", quantized" : "");
          }
      // Panels in the layer's own column order (a channel permutation undone), read from rows of only k()
      // bytes: the same products exactly.
      std::vector<int64_t> order(static_cast<std::size_t>(k_));
      for (int64_t j = 0; j < k_; ++j) order[static_cast<std::size_t>(j)] = j;
      std::shuffle(order.begin(), order.end(), rng);
      const QPanels ordered(packed.view(), isa, order.data());
      if (!uses_panels(m_, l, &ordered)) continue;
      ASSERT_EQ(ordered.in_layer_order(), groups == 1);
      ASSERT_EQ(ordered.k(), groups == 1 ? (k_ + 3) / 4 * 4 : k_);
      std::vector<uint8_t> q_layer(static_cast<std::size_t>(m_ * ordered.k() + 3), 77);  // padding: any bytes
      for (int64_t i = 0; i < m_; ++i)
        for (int64_t j = 0; j < k_; ++j)
          q_layer[static_cast<std::size_t>(i * ordered.k() +
                                           (ordered.in_layer_order() ? order[static_cast<std::size_t>(j)] : j))] =
              q[static_cast<std::size_t>(i * l.k_pad + j)];
      std::vector<float> yo(y.size(), std::numeric_limits<float>::quiet_NaN());
      qgemm(packed.view(), {q_layer.data(), m_, ordered.k(), sx.data(), zx.data()}, bias.data(), yo.data(), rows_, isa,
            QGemmOptions{&ordered});
      for (std::size_t i = 0; i < y.size(); ++i) ASSERT_EQ(yo[i], y[i]) << "output " << i;
    }
  }

 private:
  int64_t rows_ = 8, k_ = 64, m_ = 1, group_ = 0;
  int bits_ = 4, n_ = 0, mm_ = 0;
  bool asymmetric_ = false;
  std::optional<int> offset_;
  std::optional<QPattern> expect_;
  unsigned seed_ = 1;
};

TEST(QGemm, DenseEveryWidth) {
  for (int bits = 2; bits <= 8; ++bits) {
    SCOPED_TRACE(bits);
    QGemmTester().bits(bits).rows(13).k(200).m(3).seed(static_cast<unsigned>(bits)).test();
  }
}

TEST(QGemm, AsymmetricWeightsUpToSevenBits) {
  for (int bits : {2, 3, 4, 7}) {
    SCOPED_TRACE(bits);
    QGemmTester().bits(bits).asymmetric(true).rows(9).k(96).m(2).seed(10u + static_cast<unsigned>(bits)).test();
  }
}

TEST(QGemm, NMPatterns) {
  const int patterns[][2] = {{2, 4}, {1, 4}, {2, 8}, {4, 8}, {3, 16}, {1, 2}};
  unsigned seed = 20;
  for (const auto& p : patterns)
    for (int bits : {2, 3, 4, 8}) {
      SCOPED_TRACE(std::to_string(p[0]) + ":" + std::to_string(p[1]) + " at " + std::to_string(bits) + " bits");
      QGemmTester().nm(p[0], p[1]).bits(bits).rows(11).k(p[1] * 37).m(2).seed(seed++).test();
    }
}

TEST(QGemm, TwoOfFourTakesThePairsLayout) {
  unsigned seed = 100;
  for (const int mm : {4, 2})
    for (int bits = 1; bits <= 8; ++bits)
      for (const int64_t m : {1, 3}) {
        SCOPED_TRACE(std::to_string(mm / 2) + ":" + std::to_string(mm) + " at " + std::to_string(bits) + " bits, m " +
                     std::to_string(m));
        QGemmTester().nm(mm / 2, mm).bits(bits).rows(11).k(4 * 67).m(m).expect(QPattern::kPairs).seed(seed++).test();
        QGemmTester()
            .nm(mm / 2, mm)
            .bits(bits)
            .asymmetric(bits < 8)
            .rows(6)
            .k(256)
            .m(m)
            .expect(QPattern::kPairs)
            .seed(seed++)
            .test();
      }
}

TEST(QGemm, PairsShapesTailsAndGroups) {
  const int64_t ms[] = {1, 2, 5};
  unsigned seed = 120;
  for (const int64_t m : ms) {
    SCOPED_TRACE("m " + std::to_string(m));
    QGemmTester().nm(2, 4).rows(1).k(4).m(m).expect(QPattern::kPairs).seed(seed++).test();
    QGemmTester().nm(2, 4).rows(5).k(150).m(m).expect(QPattern::kPairs).seed(seed++).test();  // short last group
    QGemmTester().nm(1, 2).rows(7).k(75).m(m).expect(QPattern::kPairs).seed(seed++).test();
    QGemmTester().nm(2, 4).rows(13).k(1000).m(m).bits(3).expect(QPattern::kPairs).seed(seed++).test();
    for (const int64_t group : {128, 256, 384}) {
      SCOPED_TRACE("group " + std::to_string(group));
      QGemmTester().nm(2, 4).group(group).rows(9).k(768).m(m).expect(QPattern::kPairs).seed(seed++).test();
      QGemmTester()
          .nm(2, 4)
          .group(group)
          .rows(6)
          .k(768)
          .m(m)
          .bits(7)
          .asymmetric(true)
          .expect(QPattern::kPairs)
          .seed(seed++)
          .test();
    }
  }
}

TEST(QGemm, OtherPatternsKeepTheMask) {
  const int patterns[][2] = {{1, 4}, {2, 8}, {4, 8}, {3, 16}};
  unsigned seed = 140;
  for (const auto& p : patterns)
    for (const int64_t m : {1, 2}) {
      SCOPED_TRACE(std::to_string(p[0]) + ":" + std::to_string(p[1]) + ", m " + std::to_string(m));
      QGemmTester().nm(p[0], p[1]).rows(6).k(p[1] * 20).m(m).expect(QPattern::kMask).seed(seed++).test();
    }
  // 2:4 whose scales split chunks of 128, or whose offset is no stored code (a filler could not decode to 0).
  QGemmTester().nm(2, 4).group(64).rows(5).k(256).m(1).expect(QPattern::kMask).seed(seed++).test();
  QGemmTester().nm(2, 4).group(32).rows(5).k(256).m(3).expect(QPattern::kMask).seed(seed++).test();
  QGemmTester().nm(2, 4).bits(4).offset(20).rows(5).k(256).m(1).expect(QPattern::kMask).seed(seed++).test();
}

TEST(QGemm, DenseOneActivationRow) {
  unsigned seed = 160;
  for (int bits = 1; bits <= 8; ++bits) {
    SCOPED_TRACE(std::to_string(bits) + " bits");
    QGemmTester().bits(bits).rows(7).k(200).m(1).expect(QPattern::kDense).seed(seed++).test();
    QGemmTester().bits(bits).asymmetric(bits < 8).rows(6).k(576).m(1).seed(seed++).test();
  }
  for (const int64_t group : {32, 64, 96, 192, 576}) {  // 32 and 96 split chunks of 64: the tile path
    SCOPED_TRACE("group " + std::to_string(group));
    QGemmTester().group(group).rows(10).k(576).m(1).seed(seed++).test();
  }
}

// Products large enough for two threads, on every path: by rows of panels, by panels, few rows through
// row_dot, one row. Each thread takes the range of the outputs it wrote: the merged range is the whole output's.
TEST(QGemm, OutputRangeOnTwoThreads) {
  const int threads = omp_get_max_threads();
  omp_set_num_threads(2);
  QGemmTester().rows(128).k(576).m(64).nm(2, 4).seed(70).test();
  QGemmTester().rows(256).k(2304).m(16).bits(4).seed(71).test();
  QGemmTester().rows(512).k(1024).m(2).nm(2, 4).seed(72).test();
  QGemmTester().rows(1024).k(1024).m(1).bits(8).seed(73).test();
  omp_set_num_threads(threads);
}

TEST(QGemm, PerGroupScales) {
  QGemmTester().group(32).rows(7).k(160).m(3).bits(4).seed(40).test();
  QGemmTester().group(64).rows(6).k(256).m(1).bits(3).nm(2, 4).seed(41).test();
  QGemmTester().group(128).rows(5).k(384).m(2).bits(8).seed(42).test();
}

TEST(QGemm, GemvAndGemmShapes) {
  QGemmTester().rows(1).k(1).m(1).seed(50).test();
  QGemmTester().rows(3).k(31).m(5).seed(51).test();
  QGemmTester().rows(257).k(1000).m(1).nm(2, 4).bits(4).seed(52).test();
  QGemmTester().rows(64).k(576).m(49).bits(8).seed(53).test();
  // One activation row against many short rows (a low-rank factor): row_dot's runs of rows, off their length.
  QGemmTester().rows(70).k(128).m(1).bits(8).seed(54).test();
  QGemmTester().rows(70).k(128).m(1).bits(4).asymmetric(true).seed(55).test();
  // Two to seven activation rows (a layer4 convolution's 2x2 positions; a few tokens), which AVX-512 multiplies
  // in registers through row_dot: runs of rows and their tails, 2:4 and dense, one scale a row and per group.
  for (int64_t m = 2; m <= 7; ++m) {
    SCOPED_TRACE(std::to_string(m) + " activation rows");
    QGemmTester().rows(70).k(512).m(m).nm(2, 4).bits(4).expect(QPattern::kPairs).seed(60).test();
    QGemmTester().rows(37).k(384).m(m).nm(2, 4).bits(3).group(128).expect(QPattern::kPairs).seed(61).test();
    QGemmTester().rows(35).k(256).m(m).bits(4).seed(62).test();
    QGemmTester().rows(33).k(192).m(m).bits(5).asymmetric(true).group(64).seed(63).test();
  }
  // 8-bit dense weights whose panels read no more than their planes (whole panels of 32 channels) take the
  // panels from one row on: K a multiple of 16 steps, a long K (more than 256 steps) with a tail of steps, and
  // two and three rows of a long K.
  for (int64_t m = 1; m <= 3; ++m) {
    QGemmTester().rows(64).k(1024).m(m).bits(8).seed(56).test();
    QGemmTester().rows(32).k(1100).m(m).bits(8).seed(57).test();
    QGemmTester().rows(96).k(128).m(m).bits(8).seed(58).test();
  }
}

// Which matrices take their panels for one activation row: those whose panels read no more bytes than their
// planes (8-bit, dense, one scale per row, whole panels of channels), so that nothing is left to unpack.
TEST(QGemm, PanelsFromOneRowWhereTheyReadNoMoreThanThePlanes) {
  const auto layout = [](int64_t rows, int64_t k, int bits, int64_t group) {
    std::vector<uint8_t> u(static_cast<std::size_t>(rows * k), 1);
    std::vector<int32_t> offset(static_cast<std::size_t>(rows), 1 << (bits - 1));
    std::vector<float> scale(static_cast<std::size_t>(rows * (k / group)), 0.01f);
    return pack_qweights(rows, k, bits, u.data(), nullptr, offset.data(), scale.data(), group).layout;
  };
  EXPECT_TRUE(panel_rows(1, layout(1024, 1024, 8, 1024)));
  EXPECT_TRUE(panel_rows(1, layout(32, 1100, 8, 1100)));
  EXPECT_FALSE(panel_rows(1, layout(1024, 1024, 4, 1024)));  // panels twice the planes
  EXPECT_FALSE(panel_rows(1, layout(70, 128, 8, 128)));      // 96 channels of panels for 70
  EXPECT_FALSE(panel_rows(1, layout(64, 1024, 8, 256)));     // groups
  EXPECT_TRUE(panel_rows(8, layout(1024, 1024, 4, 1024)));
}

// Four to seven rows take panels of at most kSmallPanelBytes on one thread; split over a team, where each
// thread's share is at most kSharedPanelShareBytes (ResNet-18's layer4 at 64x64: 512 x 4608, 2.4 MB of panels).
TEST(QGemm, FewRowsTakeLargerPanelsSplitOverATeam) {
  std::vector<uint8_t> u(512 * 4608, 1);
  std::vector<int32_t> offset(512, 8);
  std::vector<float> scale(512, 0.01f);
  const QWeightLayout l = pack_qweights(512, 4608, 4, u.data(), nullptr, offset.data(), scale.data(), 4608).layout;
  const int threads = omp_get_max_threads();
  omp_set_num_threads(1);
  EXPECT_FALSE(panel_rows(4, l));
  omp_set_num_threads(2);
  EXPECT_TRUE(panel_rows(4, l));
  EXPECT_FALSE(panel_rows(3, l));
  {
    const AloneScope alone(true);  // a product run alone reads every panel itself
    EXPECT_FALSE(panel_rows(4, l));
  }
  QGemmTester().rows(512).k(4608).m(4).nm(2, 4).bits(4).seed(74).test();
  omp_set_num_threads(threads);
}

// Several activation rows (32 and more) take the GEMM microkernel where the ISA has one (panels of 32 channels,
// tiles of 8 rows), fewer the four-row path: channel counts off the panel width, row counts off the tile, K
// tails, groups, every pattern and width, on both sides of the switch.
TEST(QGemm, GemmPanelsShapesPatternsAndGroups) {
  unsigned seed = 200;
  for (const int64_t m : {2, 5, 17, 31, 32, 37, 64}) {
    SCOPED_TRACE("m " + std::to_string(m));
    for (int bits = 2; bits <= 8; ++bits) {
      SCOPED_TRACE(std::to_string(bits) + " bits");
      QGemmTester().bits(bits).asymmetric(bits < 8).rows(37).k(147).m(m).expect(QPattern::kDense).seed(seed++).test();
      QGemmTester().nm(3, 16).bits(bits).rows(33).k(16 * 13).m(m).expect(QPattern::kMask).seed(seed++).test();
      QGemmTester()
          .nm(2, 4)
          .bits(bits)
          .asymmetric(bits < 8)
          .rows(70)
          .k(4 * 37)
          .m(m)
          .expect(QPattern::kPairs)
          .seed(seed++)
          .test();
    }
    for (const int64_t group : {32, 64, 128}) {
      SCOPED_TRACE("group " + std::to_string(group));
      QGemmTester()
          .group(group)
          .bits(5)
          .asymmetric(true)
          .rows(45)
          .k(384)
          .m(m)
          .expect(QPattern::kDense)
          .seed(seed++)
          .test();
      QGemmTester().group(group).nm(3, 16).bits(4).rows(31).k(384).m(m).expect(QPattern::kMask).seed(seed++).test();
      QGemmTester()
          .group(group)
          .nm(2, 4)
          .bits(3)
          .asymmetric(true)
          .rows(33)
          .k(512)
          .m(m)
          .expect(group == 128 ? QPattern::kPairs : QPattern::kMask)
          .seed(seed++)
          .test();
    }
  }
  QGemmTester().nm(2, 4).rows(384).k(128).m(64).bits(4).expect(QPattern::kPairs).seed(seed++).test();
  QGemmTester().rows(64).k(147).m(100).bits(8).expect(QPattern::kDense).seed(seed++).test();
}

TEST(QGemm, RowKernelsMatchTheScalarReference) {
  std::mt19937 rng(60);
  std::uniform_int_distribution<int> byte(0, 255);
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(to_string(isa));
    const RowKernels& k = row_kernels(isa);
    for (int bits = 1; bits <= 8; ++bits) {
      std::vector<uint8_t> planes(static_cast<std::size_t>(3 * 8 * bits));
      for (auto& v : planes) v = static_cast<uint8_t>(byte(rng));
      std::vector<int8_t> want(192), got(192, 77);
      scalar_row_kernels().unpack(planes.data(), bits, 3, 5, want.data());
      k.unpack(planes.data(), bits, 3, 5, got.data());
      ASSERT_EQ(want, got) << bits << " bits";
    }
    std::vector<uint64_t> mask(3);
    for (auto& w : mask) w = (uint64_t{static_cast<uint32_t>(rng())} << 32) | static_cast<uint32_t>(rng());
    std::vector<int8_t> kept(192 + 64);
    for (auto& v : kept) v = static_cast<int8_t>(byte(rng));
    std::vector<int8_t> want(192), got(192, 77);
    scalar_row_kernels().expand(kept.data(), mask.data(), 3, want.data());
    k.expand(kept.data(), mask.data(), 3, got.data());
    ASSERT_EQ(want, got);
    std::vector<uint8_t> x(96);
    for (auto& v : x) v = static_cast<uint8_t>(byte(rng));
    std::vector<int8_t> w(4 * 96);
    for (auto& v : w) v = static_cast<int8_t>(byte(rng));
    for (bool small : {false, true}) {
      std::vector<int8_t> ws = w;
      if (small)
        for (auto& v : ws) v = static_cast<int8_t>(v / 2);
      int32_t out[4];
      k.dot4(x.data(), ws.data(), 96, 96, small, out);
      for (int r = 0; r < 4; ++r) EXPECT_EQ(out[r], scalar_row_kernels().dot(x.data(), ws.data() + r * 96, 96, small));
      EXPECT_EQ(k.dot(x.data(), ws.data(), 96, small), scalar_row_kernels().dot(x.data(), ws.data(), 96, small));
    }
  }
}

TEST(QGemm, RowDotAndPairsKernelsMatchTheScalarReference) {
  std::mt19937 rng(61);
  std::uniform_int_distribution<int> byte(0, 255);
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(to_string(isa));
    const RowKernels& k = row_kernels(isa);
    for (int bits = 1; bits <= 8; ++bits)
      for (const bool pairs : {false, true}) {
        SCOPED_TRACE(std::to_string(bits) + " bits" + (pairs ? ", pairs" : ""));
        // Five rows of twelve random chunks (random positions included) and their activations, in groups of
        // 1 to 12 chunks: AVX-512 takes a row's groups four at a time and the rest one by one, rows of one group
        // (12 chunks) four rows at a time, and 4-bit rows with offset 8 by a faster path, which the offsets mix
        // with others.
        const int64_t chunk = 8 * bits + (pairs ? 16 : 0), positions = pairs ? 128 : 64, rows = 5, chunks = 12;
        const int32_t half = 1 << (bits - 1);
        const int32_t offsets[rows] = {half, half, 9, half, half};
        std::vector<uint8_t> planes(static_cast<std::size_t>(rows * chunks * chunk));
        // Up to seven activation rows (AVX-512 takes them four, three or two at a time, and one alone), their
        // dots strided past the rows' own.
        constexpr int64_t kXRows = 7;
        const int64_t x_stride = chunks * positions + 64;
        std::vector<uint8_t> x(static_cast<std::size_t>(kXRows * x_stride));
        for (auto& v : planes) v = static_cast<uint8_t>(byte(rng));
        for (auto& v : x) v = static_cast<uint8_t>(byte(rng));
        const bool small = bits <= 6;  // values − offset within [−64, 64]
        for (const int64_t group_chunks : {1, 2, 3, 6, 12})
          for (int64_t x_rows = 1; x_rows <= kXRows; ++x_rows) {
            const int64_t groups = chunks / group_chunks, dots_stride = rows * groups + 3;
            std::vector<int32_t> want(static_cast<std::size_t>(x_rows * dots_stride), -1), got(want.size(), -1);
            scalar_row_kernels().row_dot(planes.data(), chunks * chunk, rows, bits, offsets, pairs, x.data(), x_rows,
                                         x_stride, group_chunks, groups, small, want.data(), dots_stride);
            k.row_dot(planes.data(), chunks * chunk, rows, bits, offsets, pairs, x.data(), x_rows, x_stride,
                      group_chunks, groups, small, got.data(), dots_stride);
            EXPECT_EQ(want, got) << group_chunks << " chunks a group, " << x_rows << " activation rows";
          }
        // The scalar reference's rows one at a time are its single-row dots.
        std::vector<int32_t> one(static_cast<std::size_t>(rows * 12)), many(static_cast<std::size_t>(2 * rows * 12));
        scalar_row_kernels().row_dot(planes.data(), chunks * chunk, rows, bits, offsets, pairs, x.data() + x_stride, 1,
                                     x_stride, 1, 12, small, one.data(), rows * 12);
        scalar_row_kernels().row_dot(planes.data(), chunks * chunk, rows, bits, offsets, pairs, x.data(), 2, x_stride,
                                     1, 12, small, many.data(), rows * 12);
        EXPECT_TRUE(std::equal(one.begin(), one.end(), many.begin() + rows * 12));
        if (!pairs) continue;
        std::vector<int8_t> want_w(4 * 192), got_w(4 * 192, 77);
        std::vector<uint8_t> want_g(4 * 192), got_g(4 * 192, 77);
        for (int r = 0; r < 4; ++r) {
          scalar_row_kernels().unpack_pairs(planes.data() + r * chunks * chunk, bits, 3, 9, want_w.data() + r * 192,
                                            want_g.data() + r * 192);
          k.unpack_pairs(planes.data() + r * chunks * chunk, bits, 3, 9, got_w.data() + r * 192,
                         got_g.data() + r * 192);
        }
        ASSERT_EQ(want_w, got_w);
        ASSERT_EQ(want_g, got_g);
        int32_t want[4], got[4];
        scalar_row_kernels().pairs_dot4(x.data(), want_w.data(), want_g.data(), 192, 3, small, want);
        k.pairs_dot4(x.data(), want_w.data(), want_g.data(), 192, 3, small, got);
        for (int r = 0; r < 4; ++r) EXPECT_EQ(want[r], got[r]) << "pairs_dot4 row " << r;
      }
  }
}

TEST(QGemm, StaticQuantizationIsAtensFormula) {
  const float x[] = {-1.0f, 0.0f, 0.125f, 0.3749f, 100.0f, -100.0f, 0.0625f};
  uint8_t q[64];
  float s;
  int32_t z;
  quantize_rows_static(x, 1, 7, 7, nullptr, 64, 0.125f, 10, q, &s, &z);
  const uint8_t want[] = {2, 10, 11, 13, 255, 0, 10};  // 0.0625/0.125 = 0.5 rounds to even
  for (int i = 0; i < 7; ++i) EXPECT_EQ(q[i], want[i]) << i;
  for (int i = 7; i < 64; ++i) EXPECT_EQ(q[i], 0) << i;
}

// The vectorised rounding against ATen's formula as written with nearbyint, with and without a gather, on
// halves, the clamp boundaries, magnitudes around and past 2^22, ±inf and NaN (which the clamp sends to 0).
TEST(QGemm, QuantizationMatchesNearbyintOnEdgeValues) {
  const float inf = std::numeric_limits<float>::infinity(), nan = std::numeric_limits<float>::quiet_NaN();
  std::vector<float> x = {0.0f,
                          -0.0f,
                          0.5f,
                          -0.5f,
                          1.5f,
                          -1.5f,
                          2.5f,
                          -2.5f,
                          0.49999997f,
                          -0.49999997f,
                          1e-30f,
                          4194303.5f,
                          4194304.0f,
                          -4194304.5f,
                          8388607.0f,
                          8388609.0f,
                          -8388609.0f,
                          16777216.0f,
                          3e9f,
                          -3e9f,
                          1e30f,
                          -1e30f,
                          std::numeric_limits<float>::max(),
                          std::numeric_limits<float>::lowest(),
                          inf,
                          -inf,
                          nan,
                          -nan};
  for (int v = -300; v <= 300; ++v)
    for (const float f : {0.0f, 0.25f, 0.5f, 0.75f}) x.push_back(static_cast<float>(v) + f);
  const int64_t k = static_cast<int64_t>(x.size()), k_pad = (k + 63) / 64 * 64;
  std::vector<int64_t> gather(static_cast<std::size_t>(k));
  for (int64_t j = 0; j < k; ++j) gather[static_cast<std::size_t>(j)] = k - 1 - j;
  for (const float s : {1.0f, 0.125f, 0.3f, 1e-3f})
    for (const int32_t z : {0, 1, 128, 254, 255}) {
      SCOPED_TRACE("s " + std::to_string(s) + ", z " + std::to_string(z));
      for (const Isa isa : runnable_isas())
        for (const bool gathered : {false, true}) {
          SCOPED_TRACE(to_string(isa));
          std::vector<uint8_t> q(static_cast<std::size_t>(k_pad), 7);
          float qs;
          int32_t qz;
          quantize_rows_static(x.data(), 1, k, k, gathered ? gather.data() : nullptr, k_pad, s, z, q.data(), &qs, &qz,
                               isa);
          const float inv = 1.0f / s;
          for (int64_t j = 0; j < k; ++j) {
            const float v = x[static_cast<std::size_t>(gathered ? gather[static_cast<std::size_t>(j)] : j)];
            const float want = std::min(255.0f, std::max(0.0f, static_cast<float>(z) + std::nearbyint(v * inv)));
            ASSERT_EQ(q[static_cast<std::size_t>(j)], static_cast<uint8_t>(want))
                << "x " << v << (gathered ? " gathered" : "");
          }
          for (int64_t j = k; j < k_pad; ++j) ASSERT_EQ(q[static_cast<std::size_t>(j)], 0);
          if (gathered) continue;
          // The fake quantization in one pass: those codes dequantized, (q − z) · s, bit for bit.
          std::vector<float> y(static_cast<std::size_t>(k));
          fake_quantize_static(x.data(), k, s, z, y.data(), isa);
          for (int64_t j = 0; j < k; ++j) {
            const float want = (static_cast<float>(q[static_cast<std::size_t>(j)]) - static_cast<float>(z)) * s;
            ASSERT_EQ(y[static_cast<std::size_t>(j)], want) << "x " << x[static_cast<std::size_t>(j)];
          }
        }
    }
}

// A fake quantization long enough to run in pieces over the threads, in place, against the scalar path.
TEST(QGemm, LongFakeQuantizationInPlaceIsTheSameOnEveryIsa) {
  std::vector<float> x(100003);
  for (std::size_t j = 0; j < x.size(); ++j) x[j] = std::sin(static_cast<float>(j) * 0.37f) * 9.0f;
  std::vector<float> want = x;
  fake_quantize_static(want.data(), static_cast<int64_t>(want.size()), 0.07f, 120, want.data(), Isa::kScalar);
  for (const Isa isa : runnable_isas()) {
    std::vector<float> y = x;
    fake_quantize_static(y.data(), static_cast<int64_t>(y.size()), 0.07f, 120, y.data(), isa);
    EXPECT_EQ(y, want) << to_string(isa);
  }
}

// Each row's own range (NaN ignored, widened to include 0), then the static formula: the same scales, zero
// points and codes on every instruction set, for row lengths around the vector widths, with rows read a stride
// apart or through a gather, more rows than AVX-512 takes at a time, and rows that are all NaN, constant or
// infinite. The padding after each row's codes is zero.
TEST(QGemm, DynamicQuantizationIsTheSameOnEveryIsa) {
  std::mt19937 rng(3);
  std::normal_distribution<float> nd(0.5f, 2.0f);
  const float nan = std::numeric_limits<float>::quiet_NaN(), inf = std::numeric_limits<float>::infinity();
  for (const int64_t k : {1, 7, 8, 15, 16, 17, 32, 33, 64, 65, 100, 129, 250, 1000, 40000}) {  // 40000: in pieces
    for (const bool gathered : {false, true}) {
      SCOPED_TRACE(::testing::Message() << "k " << k << (gathered ? ", gathered" : ""));
      const int64_t m = k > 1000 ? 7 : 37, x_stride = k + 3, k_pad = (k + 63) / 64 * 64 + 64;
      std::vector<float> x(static_cast<std::size_t>(m * x_stride));
      for (auto& v : x) v = nd(rng);
      const auto at = [&](int64_t r, int64_t j) -> float& { return x[static_cast<std::size_t>(r * x_stride + j)]; };
      at(0, k / 2) = nan;
      for (int64_t j = 0; j < k; ++j) {
        at(1, j) = 3.0f + static_cast<float>(j);  // > 0
        at(2, j) = nan;
        at(3, j) = -1.5f;  // constant
      }
      at(4, 0) = inf;
      at(5, k - 1) = -inf;
      at(6, 0) = 1e-40f;  // a denormal range
      std::vector<int64_t> gather(static_cast<std::size_t>(k));
      for (int64_t j = 0; j < k; ++j)
        gather[static_cast<std::size_t>(j)] = gathered ? (k - 1 - j + 3) % k : j;  // reversed, rotated
      std::vector<uint8_t> want;
      std::vector<float> want_s;
      std::vector<int32_t> want_z;
      for (const Isa isa : runnable_isas()) {
        SCOPED_TRACE(to_string(isa));
        std::vector<uint8_t> q(static_cast<std::size_t>(m * k_pad), 9);
        std::vector<float> s(static_cast<std::size_t>(m));
        std::vector<int32_t> z(static_cast<std::size_t>(m));
        quantize_rows_dynamic(x.data(), m, k, x_stride, gathered ? gather.data() : nullptr, k_pad, q.data(), s.data(),
                              z.data(), isa);
        EXPECT_EQ(z[1], 0) << "a positive row's range starts at 0";
        EXPECT_FLOAT_EQ(s[1], (3.0f + static_cast<float>(k - 1)) / 255.0f);
        EXPECT_EQ(s[2], 1.0f) << "a row of NaN has the range [0, 0]";
        for (int64_t r = 0; r < m; ++r)
          for (int64_t j = k; j < k_pad; ++j)
            ASSERT_EQ(q[static_cast<std::size_t>(r * k_pad + j)], 0) << r << ", " << j;
        if (isa == Isa::kScalar) {
          want = q;
          want_s = s;
          want_z = z;
        } else {
          EXPECT_EQ(q, want);
          for (int64_t r = 0; r < m; ++r)  // bit for bit (NaN included)
            EXPECT_EQ(std::memcmp(&s[static_cast<std::size_t>(r)], &want_s[static_cast<std::size_t>(r)], 4), 0) << r;
          EXPECT_EQ(z, want_z);
        }
      }
    }
  }
}

// A range's zero point is nearbyint(−lo / s) clamped to [0, 255], ties to even: on random ranges, on ranges
// whose −lo / s falls on a half (a tie) or next to one, and on degenerate ones (empty, infinite).
TEST(QGemm, RangeZeroPointIsNearbyintOfTheRange) {
  const auto want = [](float lo, float hi) {
    const float s = hi > lo ? (hi - lo) / 255.0f : 1.0f;
    return static_cast<int32_t>(std::min(255.0f, std::max(0.0f, std::nearbyint(-lo / s))));
  };
  std::vector<std::pair<float, float>> ranges = {{0.0f, 0.0f},
                                                 {0.0f, 1.0f},
                                                 {-1.0f, 0.0f},
                                                 {-std::numeric_limits<float>::infinity(), 1.0f},
                                                 {-1.0f, std::numeric_limits<float>::infinity()}};
  std::mt19937 rng(11);
  std::uniform_real_distribution<float> u(0.0f, 1.0f);
  for (int i = 0; i < 20000; ++i) {
    const float width = std::exp(u(rng) * 20.0f - 10.0f), share = u(rng);
    ranges.push_back({-share * width, (1.0f - share) * width});
  }
  for (int t = 0; t <= 255; ++t)  // −lo / s = t + 0.5 exactly (s = 1): a tie, and its float neighbours
    for (const float lo : {-(t + 0.5f), std::nextafter(-(t + 0.5f), 0.0f), std::nextafter(-(t + 0.5f), -1e9f)})
      ranges.push_back({lo, lo + 255.0f});
  for (const auto& [lo, hi] : ranges) {
    float s = 0;
    int32_t z = -1;
    range_scale(lo, hi, &s, &z);
    ASSERT_EQ(z, want(lo, hi)) << "range [" << lo << ", " << hi << "]";
  }
}

TEST(QGemm, RefusesWhatTheKernelsCannotTake) {
  const uint8_t u[] = {0, 255, 3, 4};
  const int32_t offset[] = {0, 0};
  const float scale[] = {1, 1};
  EXPECT_NE(qweights_unsupported(2, 2, 8, u, nullptr, offset, 2), "");  // 255 − 0 > 127
  const bool keep[] = {true, true, true, false};
  const int32_t centred[] = {128, 4};
  EXPECT_NE(qweights_unsupported(2, 2, 8, u, keep, centred, 2), "");     // rows keep 2 and 1
  EXPECT_NE(qweights_unsupported(2, 2, 8, u, nullptr, centred, 1), "");  // group of 1
  EXPECT_THROW(pack_qweights(2, 2, 8, u, nullptr, offset, scale, 2), Error);
}

}  // namespace
}  // namespace runtime
}  // namespace adze
