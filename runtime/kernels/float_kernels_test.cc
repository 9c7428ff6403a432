// The float kernels on every instruction set this CPU runs, against double-precision references: random values
// with fixed seeds, lengths around the vector widths (8 and 16 floats) and the models' rows, in place and out of
// place, special values (±∞, NaN, ±0, subnormals, the largest floats), and matmul on the strided views the
// runtime passes (transposed operands as in attention's q·kᵀ). Outputs are pre-filled with NaN, so a value left
// unwritten fails, and followed by a sentinel, so a write past the end fails.
#include "runtime/kernels/float_kernels.h"

#include <ATen/ATen.h>
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <string>
#include <vector>

namespace adze {
namespace runtime {
namespace {

constexpr float kInf = std::numeric_limits<float>::infinity();
constexpr float kNaN = std::numeric_limits<float>::quiet_NaN();
constexpr float kMax = std::numeric_limits<float>::max();
constexpr float kSentinel = 12345.0f;
constexpr int64_t kGuard = 16;  // sentinels after each output

// Around the vector widths, one, and the models' rows (17 tokens, dims 64..512), and one long row.
const std::vector<int64_t> kLengths = {0, 1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 100, 256, 1027};

const std::vector<float> kSpecials = {0.0f,    -0.0f, kInf,   -kInf,  kNaN,   1e-40f, -1e-40f, 1e-20f,
                                      -1e-20f, -9.0f, -13.0f, -19.9f, -20.0f, -20.5f, -40.0f,  9.0f,
                                      13.0f,   40.0f, 1e30f,  -1e30f, kMax,   -kMax,  5.5f,    -5.5f};

std::string name(int64_t n) { return "n " + std::to_string(n); }

// n values: mostly N(0, 3) (where gelu bends), some uniform on [−30, 30], and every fifth from kSpecials when
// `specials`.
std::vector<float> values(int64_t n, std::mt19937& rng, bool specials) {
  std::normal_distribution<float> normal(0.0f, 3.0f);
  std::uniform_real_distribution<float> wide(-30.0f, 30.0f);
  std::vector<float> x(static_cast<std::size_t>(n));
  for (int64_t i = 0; i < n; ++i) {
    float& v = x[static_cast<std::size_t>(i)];
    v = i % 3 == 2 ? wide(rng) : normal(rng);
    if (specials && i % 5 == 4) v = kSpecials[rng() % kSpecials.size()];
  }
  return x;
}

// An output buffer: n NaNs (nothing written yet), then kGuard sentinels.
std::vector<float> output(int64_t n) {
  std::vector<float> y(static_cast<std::size_t>(n + kGuard), kNaN);
  for (int64_t i = n; i < n + kGuard; ++i) y[static_cast<std::size_t>(i)] = kSentinel;
  return y;
}

void expect_guard(const std::vector<float>& y, int64_t n) {
  for (int64_t i = n; i < n + kGuard; ++i)
    ASSERT_EQ(y[static_cast<std::size_t>(i)], kSentinel) << "written past the end";
}

bool same_bits(float a, float b) { return std::memcmp(&a, &b, sizeof a) == 0; }

// got within tol of want: both NaN, or equal (infinities), or |got − want| ≤ tol.
::testing::AssertionResult near(double got, double want, double tol) {
  if (std::isnan(want) ? std::isnan(got) : got == want || std::fabs(got - want) <= tol)
    return ::testing::AssertionSuccess();
  return ::testing::AssertionFailure() << "got " << got << ", want " << want << " (tolerance " << tol << ")";
}

using Unary = void (*)(const float*, float*, int64_t);

double gelu_ref(double x) {
  if (std::isinf(x)) return x > 0 ? x : 0.0;
  return 0.5 * x * std::erfc(-x / std::sqrt(2.0));
}
double gelu_tanh_ref(double x) {
  if (std::isinf(x)) return x > 0 ? x : 0.0;
  return 0.5 * x * (1.0 + std::tanh(std::sqrt(2.0 / M_PI) * (x + 0.044715 * x * x * x)));
}

// Abs error ≤ kGeluTolerance·(1 + |x|). The erf form's rational erf is within 4e-7 absolute, so within 2e-7·|x|
// in x·Φ(x); the rest, in both forms, is a few float roundings (2^-24 ≈ 6e-8 each) of values
// up to |x|. 3e-7 bounds both with room; a wrong polynomial coefficient or range reduction is off by 1e-4 or more.
constexpr double kGeluTolerance = 3e-7;

void test_unary(Unary FloatKernels::*f, double (*ref)(double)) {
  std::mt19937 rng(1);
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(to_string(isa));
    const Unary kernel = float_kernels(isa).*f;
    for (int64_t n : kLengths) {
      SCOPED_TRACE(name(n));
      const std::vector<float> x = values(n, rng, true);
      std::vector<float> y = output(n);
      kernel(x.data(), y.data(), n);
      expect_guard(y, n);
      for (int64_t i = 0; i < n; ++i) {
        const double xi = x[static_cast<std::size_t>(i)];
        ASSERT_TRUE(near(y[static_cast<std::size_t>(i)], ref(xi), kGeluTolerance * (1 + std::fabs(xi))))
            << "x = " << xi;
      }
      std::vector<float> in_place = x;
      kernel(in_place.data(), in_place.data(), n);
      for (int64_t i = 0; i < n; ++i)
        ASSERT_TRUE(same_bits(in_place[static_cast<std::size_t>(i)], y[static_cast<std::size_t>(i)]))
            << "in place, " << i;
    }
    // Every special value, at every position of a partial vector and of a whole one.
    for (int64_t n : {5, 16, 23}) {
      for (float s : kSpecials) {
        std::vector<float> x(static_cast<std::size_t>(n), s), y = output(n);
        kernel(x.data(), y.data(), n);
        expect_guard(y, n);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_TRUE(near(y[static_cast<std::size_t>(i)], ref(s), kGeluTolerance * (1 + std::fabs(s)))) << "x = " << s;
      }
    }
  }
}

TEST(FloatKernels, Gelu) { test_unary(&FloatKernels::gelu, gelu_ref); }
TEST(FloatKernels, GeluTanh) { test_unary(&FloatKernels::gelu_tanh, gelu_tanh_ref); }

// The special values as ATen's own operators take them (NaN where ATen's is NaN, the same infinities), but
// for gelu(−∞), which we make 0 where ATen gives −∞·0 = NaN.
TEST(FloatKernels, SpecialValuesAsAten) {
  const int64_t n = static_cast<int64_t>(kSpecials.size());
  std::vector<float> x = kSpecials;
  const at::Tensor t = at::from_blob(x.data(), {n});
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(to_string(isa));
    const FloatKernels& k = float_kernels(isa);
    for (bool tanh : {false, true}) {
      std::vector<float> y(static_cast<std::size_t>(n));
      (tanh ? k.gelu_tanh : k.gelu)(x.data(), y.data(), n);
      const at::Tensor want = at::gelu(t, tanh ? "tanh" : "none");
      for (int64_t i = 0; i < n; ++i) {
        const float v = x[static_cast<std::size_t>(i)];
        if (v == -kInf) continue;
        EXPECT_TRUE(near(y[static_cast<std::size_t>(i)], want[i].item<float>(), 1e-6 * (1 + std::fabs(v))))
            << (tanh ? "gelu_tanh(" : "gelu(") << v << ")";
      }
    }
  }
}

constexpr double kSoftmaxTolerance = 1e-6;

// Double softmax of each row; NaN rows where ATen's are NaN (a row with +∞ or NaN, or only −∞).
std::vector<double> softmax_ref(const std::vector<float>& x, int64_t rows, int64_t n) {
  std::vector<double> y(x.size());
  for (int64_t r = 0; r < rows; ++r) {
    const float* xr = x.data() + r * n;
    double* yr = y.data() + r * n;
    double m = -INFINITY, s = 0;
    for (int64_t j = 0; j < n; ++j) m = std::isnan(xr[j]) || xr[j] > m ? xr[j] : m;
    for (int64_t j = 0; j < n; ++j) s += yr[j] = std::exp(xr[j] - m);
    for (int64_t j = 0; j < n; ++j) yr[j] /= s;
  }
  return y;
}

TEST(FloatKernels, Softmax) {
  std::mt19937 rng(2);
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(to_string(isa));
    const FloatKernels& k = float_kernels(isa);
    for (int64_t rows : {0, 1, 3, 68})
      for (int64_t n : kLengths) {
        SCOPED_TRACE(name(n) + ", rows " + std::to_string(rows));
        // Logits at several scales and offsets (the max is subtracted), some −∞ (masked attention): never a
        // row's first entry, so no row is all −∞ here.
        std::normal_distribution<float> normal(0.0f, 1.0f);
        std::vector<float> x(static_cast<std::size_t>(rows * n));
        for (int64_t r = 0; r < rows; ++r) {
          const float scale = r % 3 == 0 ? 1.0f : r % 3 == 1 ? 10.0f : 0.01f, offset = r % 2 ? 500.0f : -3.0f;
          for (int64_t j = 0; j < n; ++j)
            x[static_cast<std::size_t>(r * n + j)] = j > 0 && rng() % 7 == 0 ? -kInf : offset + scale * normal(rng);
        }
        const std::vector<double> want = softmax_ref(x, rows, n);
        std::vector<float> y = output(rows * n);
        k.softmax(x.data(), y.data(), rows, n);
        expect_guard(y, rows * n);
        for (std::size_t i = 0; i < want.size(); ++i) ASSERT_TRUE(near(y[i], want[i], kSoftmaxTolerance)) << "at " << i;
        k.softmax(x.data(), x.data(), rows, n);
        for (std::size_t i = 0; i < want.size(); ++i) ASSERT_TRUE(same_bits(x[i], y[i])) << "in place, " << i;
      }
    // Rows of special values, as ATen: −∞ entries give 0; +∞, NaN or only −∞ make the row NaN.
    const std::vector<std::vector<float>> special_rows = {{-kInf, 0.0f, -kInf, 1.0f, -kInf},
                                                          {-kInf, -kInf, -kInf},
                                                          {1.0f, kInf, 0.0f},
                                                          {kNaN, 1.0f, 2.0f},
                                                          {kMax, -kMax, 0.0f},
                                                          {-kInf, 3.0f}};
    for (const std::vector<float>& row : special_rows) {
      const int64_t n = static_cast<int64_t>(row.size());
      std::vector<float> y = output(n);
      k.softmax(row.data(), y.data(), 1, n);
      const at::Tensor aten = at::softmax(at::from_blob(const_cast<float*>(row.data()), {n}), 0);
      const std::vector<double> want = softmax_ref(row, 1, n);
      for (int64_t j = 0; j < n; ++j) {
        EXPECT_TRUE(near(y[static_cast<std::size_t>(j)], want[static_cast<std::size_t>(j)], kSoftmaxTolerance));
        EXPECT_TRUE(near(y[static_cast<std::size_t>(j)], aten[j].item<float>(), kSoftmaxTolerance)) << "ATen";
      }
    }
  }
}

// Rows of different lengths in a block (attention under a causal mask): each the softmax of its prefix, bit for
// bit, and zeros after it up to the width; the block's columns past the width untouched.
TEST(FloatKernels, SoftmaxPrefixesAreTheSoftmaxOfEachPrefix) {
  std::mt19937 rng(5);
  std::normal_distribution<float> normal(0.0f, 3.0f);
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(to_string(isa));
    const FloatKernels& k = float_kernels(isa);
    for (const int64_t width : {1, 15, 16, 17, 64, 70})
      for (const int64_t rows : {1, 2, 5, 16}) {
        SCOPED_TRACE("width " + std::to_string(width) + ", rows " + std::to_string(rows));
        const int64_t ld = width + 3;
        std::vector<float> x(static_cast<std::size_t>(rows * ld));
        for (auto& v : x) v = normal(rng);
        std::vector<int64_t> n(static_cast<std::size_t>(rows));
        for (auto& v : n) v = 1 + static_cast<int64_t>(rng() % static_cast<uint32_t>(width));
        std::vector<float> y = x;
        k.softmax_prefixes(y.data(), ld, rows, n.data(), width);
        for (int64_t r = 0; r < rows; ++r) {
          const float* in = x.data() + r * ld;
          const float* out = y.data() + r * ld;
          const int64_t len = n[static_cast<std::size_t>(r)];
          std::vector<float> want(static_cast<std::size_t>(len));
          k.softmax(in, want.data(), 1, len);
          for (int64_t j = 0; j < len; ++j)
            ASSERT_TRUE(same_bits(out[j], want[static_cast<std::size_t>(j)])) << r << ", " << j;
          for (int64_t j = len; j < width; ++j) ASSERT_EQ(out[j], 0.0f) << r << ", " << j;
          for (int64_t j = width; j < ld; ++j) ASSERT_TRUE(same_bits(out[j], in[j])) << "past the width";
        }
      }
  }
}

TEST(FloatKernels, LayerNorm) {
  std::mt19937 rng(3);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(to_string(isa));
    const FloatKernels& k = float_kernels(isa);
    for (int64_t rows : {0, 1, 5, 17})
      for (int64_t n : kLengths) {
        if (n == 0) continue;
        for (int affine = 0; affine < 4; ++affine) {  // bit 0: gamma, bit 1: beta
          SCOPED_TRACE(name(n) + ", rows " + std::to_string(rows) + ", affine " + std::to_string(affine));
          std::vector<float> x(static_cast<std::size_t>(rows * n)), gamma(static_cast<std::size_t>(n)), beta(gamma);
          for (int64_t r = 0; r < rows; ++r) {
            // Rows at several scales, off zero (the mean is taken out first), and one constant (variance 0).
            const float scale = r % 4 == 0 ? 1.0f : r % 4 == 1 ? 30.0f : r % 4 == 2 ? 0.001f : 0.0f;
            const float offset = r % 2 ? 10.0f : -0.5f;
            for (int64_t j = 0; j < n; ++j) x[static_cast<std::size_t>(r * n + j)] = offset + scale * normal(rng);
          }
          for (float& g : gamma) g = 1.0f + 0.5f * normal(rng);
          for (float& b : beta) b = normal(rng);
          const float* g = affine & 1 ? gamma.data() : nullptr;
          const float* b = affine & 2 ? beta.data() : nullptr;
          const float eps = 1e-5f;
          std::vector<float> y = output(rows * n);
          k.layer_norm(x.data(), y.data(), rows, n, g, b, eps);
          expect_guard(y, rows * n);
          for (int64_t r = 0; r < rows; ++r) {
            const float* xr = x.data() + r * n;
            double mean = 0, var = 0;
            for (int64_t j = 0; j < n; ++j) mean += xr[j];
            mean /= static_cast<double>(n);
            for (int64_t j = 0; j < n; ++j) var += (xr[j] - mean) * (xr[j] - mean);
            const double rstd = 1 / std::sqrt(var / static_cast<double>(n) + eps);
            for (int64_t j = 0; j < n; ++j) {
              const double want = (xr[j] - mean) * rstd * (g ? g[j] : 1.0) + (b ? b[j] : 0.0);
              ASSERT_TRUE(near(y[static_cast<std::size_t>(r * n + j)], want, 1e-5 * (1 + std::fabs(want))))
                  << "row " << r << ", " << j;
            }
          }
          k.layer_norm(x.data(), x.data(), rows, n, g, b, eps);
          for (std::size_t i = 0; i < x.size(); ++i) ASSERT_TRUE(same_bits(x[i], y[i])) << "in place, " << i;
        }
      }
  }
}

// How matmul's operands lie in memory: A(i, p) = a[i·a_rs + p·a_cs], B(p, j) = b[p·b_rs + j·b_cs].
struct Layout {
  const char* name;
  bool a_transposed, b_transposed;  // A stored [k, m] / B stored [n, k]
  int64_t step;                     // distance between consecutive elements along the stored rows (1: dense)
  bool b_broadcast = false;         // B one stored row, its stride 0 (an expanded tensor)
};

// Each kernel path: B's rows contiguous (row-major B, with A either way); otherwise B's columns packed (up to
// 128 reduction values), the dot products (q·kᵀ: A's rows and B's columns contiguous, with fewer than 4 rows or
// more than 128 values), or the plain loop (more than 128 values, both transposed or everything strided); and
// broadcast operands (stride 0).
const Layout kLayouts[] = {{"A·B", false, false, 1},
                           {"Aᵀ·B", true, false, 1},
                           {"A·Bᵀ (q·kᵀ)", false, true, 1},
                           {"Aᵀ·Bᵀ", true, true, 1},
                           {"strided", false, false, 2},
                           {"A·B, B's rows broadcast", false, false, 1, true},
                           {"A·Bᵀ, B's columns broadcast", false, true, 1, true}};

void test_matmul(const FloatKernels& k, const Layout& l, int64_t m, int64_t n, int64_t k_, float alpha,
                 std::mt19937& rng) {
  SCOPED_TRACE(std::string(l.name) + " m " + std::to_string(m) + " n " + std::to_string(n) + " k " +
               std::to_string(k_));
  std::uniform_real_distribution<float> u(-2.0f, 2.0f);
  // Stored rows padded by 3, as views into wider tensors (attention's heads); each buffer ends at its last element.
  const int64_t a_rows = l.a_transposed ? k_ : m, a_cols = l.a_transposed ? m : k_;
  const int64_t b_rows = l.b_broadcast ? 1 : l.b_transposed ? n : k_, b_cols = l.b_transposed ? k_ : n;
  const int64_t lda = a_cols * l.step + 3, ldb = b_cols * l.step + 3, ldc = n + 3;
  std::vector<float> a(
      static_cast<std::size_t>(a_rows > 0 && a_cols > 0 ? (a_rows - 1) * lda + (a_cols - 1) * l.step + 1 : 0));
  std::vector<float> b(
      static_cast<std::size_t>(b_rows > 0 && b_cols > 0 ? (b_rows - 1) * ldb + (b_cols - 1) * l.step + 1 : 0));
  for (float& v : a) v = u(rng);
  for (float& v : b) v = u(rng);
  const int64_t a_rs = l.a_transposed ? l.step : lda, a_cs = l.a_transposed ? lda : l.step;
  const int64_t b_rows_apart = l.b_broadcast ? 0 : ldb;
  const int64_t b_rs = l.b_transposed ? l.step : b_rows_apart, b_cs = l.b_transposed ? b_rows_apart : l.step;
  // C: NaN where written, the sentinel in the padding of its rows and after them.
  std::vector<float> c(static_cast<std::size_t>(m * ldc + kGuard), kSentinel);
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) c[static_cast<std::size_t>(i * ldc + j)] = kNaN;
  k.matmul(a.data(), a_rs, a_cs, b.data(), b_rs, b_cs, c.data(), ldc, m, n, k_, alpha);
  for (int64_t i = 0; i < m; ++i) {
    for (int64_t j = 0; j < n; ++j) {
      double want = 0, size = 0;
      for (int64_t p = 0; p < k_; ++p) {
        const double x = a[static_cast<std::size_t>(i * a_rs + p * a_cs)],
                     y = b[static_cast<std::size_t>(p * b_rs + j * b_cs)];
        want += x * y;
        size += std::fabs(x * y);
      }
      ASSERT_TRUE(near(c[static_cast<std::size_t>(i * ldc + j)], alpha * want, 1e-5 * std::fabs(alpha) * size))
          << "C(" << i << ", " << j << ")";
    }
    for (int64_t j = n; j < ldc; ++j)
      ASSERT_EQ(c[static_cast<std::size_t>(i * ldc + j)], kSentinel) << "padding written";
  }
  for (int64_t i = m * ldc; i < m * ldc + kGuard; ++i) ASSERT_EQ(c[static_cast<std::size_t>(i)], kSentinel);
}

// m, n, k: the models' attention products (fmnist-vit: 17 tokens, heads of 16; fortune-gpt: 64 tokens, heads of
// 32), empty ones, and reductions longer than a packed panel takes (the dot products or the plain loop).
const int64_t kMatmulShapes[][3] = {{17, 17, 16}, {17, 16, 17}, {64, 64, 32}, {64, 32, 64}, {0, 5, 3},
                                    {5, 0, 3},    {5, 3, 0},    {1, 1, 1},    {9, 19, 200}, {2, 35, 129}};

TEST(FloatKernels, Matmul) {
  std::mt19937 rng(4);
  const int64_t sizes[] = {1, 2, 3, 4, 5, 7, 8, 9, 15, 16, 17, 31, 32, 33, 64, 65};
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(to_string(isa));
    const FloatKernels& k = float_kernels(isa);
    for (const Layout& l : kLayouts) {
      for (const auto& s : kMatmulShapes) test_matmul(k, l, s[0], s[1], s[2], 0.25f, rng);
      for (int t = 0; t < 40; ++t) {
        const float alpha = t % 3 == 0 ? 1.0f : t % 3 == 1 ? -0.7f : 0.125f;
        test_matmul(k, l, sizes[rng() % 16], sizes[rng() % 16], sizes[rng() % 16], alpha, rng);
      }
    }
  }
}

TEST(FloatKernels, Add) {
  std::mt19937 rng(5);
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(to_string(isa));
    const FloatKernels& k = float_kernels(isa);
    for (int64_t n : kLengths)
      for (float alpha : {1.0f, -1.0f, 0.5f, 2.0f, 0.3f}) {
        SCOPED_TRACE(name(n) + ", alpha " + std::to_string(alpha));
        const std::vector<float> a = values(n, rng, true), b = values(n, rng, true);
        std::vector<float> y = output(n);
        k.add(a.data(), b.data(), alpha, y.data(), n);
        expect_guard(y, n);
        // Where alpha·b is a float (alpha = ±1 or a power of 2, barring subnormals), y is a + alpha·b rounded
        // once, exactly: the double sum rounded to float (double's 53 bits make that one correct rounding).
        // Elsewhere it may be rounded once (FMA) or twice.
        for (int64_t i = 0; i < n; ++i) {
          const std::size_t u = static_cast<std::size_t>(i);
          const double exact_product = static_cast<double>(alpha) * b[u];
          const float want = static_cast<float>(a[u] + exact_product);
          if (static_cast<double>(alpha * b[u]) == exact_product || std::isnan(exact_product))
            ASSERT_TRUE(same_bits(y[u], want) || (std::isnan(y[u]) && std::isnan(want))) << a[u] << " + " << b[u];
          else
            ASSERT_TRUE(near(y[u], want, 0x1p-23 * (std::fabs(a[u]) + std::fabs(alpha * b[u]))))
                << a[u] << " + " << b[u];
        }
        for (int in : {0, 1}) {  // y = a, y = b
          std::vector<float> a2 = a, b2 = b;
          float* yy = in ? b2.data() : a2.data();
          k.add(a2.data(), b2.data(), alpha, yy, n);
          for (int64_t i = 0; i < n; ++i)
            ASSERT_TRUE(same_bits(yy[i], y[static_cast<std::size_t>(i)])) << "in place, " << i;
        }
      }
  }
}

TEST(FloatKernels, Clamp) {
  std::mt19937 rng(6);
  struct Range {
    float lo, hi;
  };
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(to_string(isa));
    const FloatKernels& k = float_kernels(isa);
    for (int64_t n : kLengths)
      for (Range r : {Range{0.0f, kInf}, Range{0.0f, 6.0f}, Range{-1.0f, 1.0f}, Range{-kInf, kInf}}) {
        SCOPED_TRACE(name(n) + ", [" + std::to_string(r.lo) + ", " + std::to_string(r.hi) + "]");
        const std::vector<float> x = values(n, rng, true);
        std::vector<float> y = output(n);
        k.clamp(x.data(), y.data(), n, r.lo, r.hi);
        expect_guard(y, n);
        for (int64_t i = 0; i < n; ++i) {
          const float v = x[static_cast<std::size_t>(i)], got = y[static_cast<std::size_t>(i)];
          if (std::isnan(v))
            ASSERT_TRUE(std::isnan(got)) << "NaN not kept";
          else
            ASSERT_EQ(got, v < r.lo ? r.lo : v > r.hi ? r.hi : v) << "x = " << v;
        }
        std::vector<float> in_place = x;
        k.clamp(in_place.data(), in_place.data(), n, r.lo, r.hi);
        for (int64_t i = 0; i < n; ++i)
          ASSERT_TRUE(same_bits(in_place[static_cast<std::size_t>(i)], y[static_cast<std::size_t>(i)]))
              << "in place, " << i;
      }
  }
}

// A residual add with its ReLU (or none) in one pass: the bits of add (alpha 1) and then clamp (NaN where they
// give NaN), ±∞ included, in place on either operand too.
TEST(FloatKernels, AddClampIsAddThenClamp) {
  std::mt19937 rng(8);
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(to_string(isa));
    const FloatKernels& k = float_kernels(isa);
    for (int64_t n : kLengths)
      for (float lo : {0.0f, -kInf}) {
        SCOPED_TRACE(name(n) + ", lo " + std::to_string(lo));
        const std::vector<float> a = values(n, rng, true), b = values(n, rng, true);
        std::vector<float> want = output(n), got = output(n);
        k.add(a.data(), b.data(), 1.0f, want.data(), n);
        k.clamp(want.data(), want.data(), n, lo, kInf);
        k.add_clamp(a.data(), b.data(), got.data(), n, lo, kInf);
        expect_guard(got, n);
        std::vector<float> on_a = a, on_b = b;
        k.add_clamp(on_a.data(), b.data(), on_a.data(), n, lo, kInf);
        k.add_clamp(a.data(), on_b.data(), on_b.data(), n, lo, kInf);
        const auto same = [](float x, float y) { return std::isnan(y) ? std::isnan(x) : same_bits(x, y); };
        for (int64_t i = 0; i < n; ++i) {
          const auto at = static_cast<std::size_t>(i);
          ASSERT_TRUE(same(got[at], want[at])) << a[at] << " + " << b[at];
          ASSERT_TRUE(same(on_a[at], want[at]) && same(on_b[at], want[at])) << "in place, " << i;
        }
      }
  }
}

// The element-wise maximum of one to nine arrays (a max pool's window), NaN wherever any holds one, ±∞ and
// the partial last vector included.
TEST(FloatKernels, MaxOfIsTheMaximumAndNaNWins) {
  std::mt19937 rng(7);
  for (Isa isa : runnable_isas()) {
    SCOPED_TRACE(to_string(isa));
    const FloatKernels& k = float_kernels(isa);
    for (int64_t n : kLengths)
      for (int64_t count : {1, 2, 4, 9}) {
        SCOPED_TRACE(name(n) + ", " + std::to_string(count) + " arrays");
        std::vector<std::vector<float>> x;
        std::vector<const float*> rows;
        for (int64_t i = 0; i < count; ++i) x.push_back(values(n, rng, true));
        for (const auto& v : x) rows.push_back(v.data());
        std::vector<float> y = output(n);
        k.max_of(rows.data(), count, y.data(), n);
        expect_guard(y, n);
        for (int64_t j = 0; j < n; ++j) {
          bool nan = false;
          float want = -kInf;
          for (const auto& v : x) {
            const float e = v[static_cast<std::size_t>(j)];
            nan |= std::isnan(e);
            want = e > want ? e : want;
          }
          const float got = y[static_cast<std::size_t>(j)];
          if (nan)
            ASSERT_TRUE(std::isnan(got)) << "at " << j;
          else
            ASSERT_EQ(got, want) << "at " << j;
        }
      }
  }
}

}  // namespace
}  // namespace runtime
}  // namespace adze
