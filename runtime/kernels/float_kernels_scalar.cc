// The portable float kernels: plain loops over float_kernels.h's arrays, with libm's erfcf and expf (a call per
// value, which the vector paths avoid). The CPUs that run these are rare; they are written to be read, and the
// tests hold them to the same bounds as the vector paths.
#include <math.h>

#include "runtime/kernels/float_kernels.h"

namespace adze {
namespace runtime {
namespace {

// Below this both gelus round to −0; clamping there makes −∞ give −0 rather than −∞·0 = NaN (a NaN fails the
// comparison and is kept).
inline float gelu_arg(float x) { return x < -20.0f ? -20.0f : x; }

// x·Φ(x) = x·erfc(−x/√2)/2: erfc has no cancellation for negative x, unlike 1 + erf.
void gelu(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = gelu_arg(x[i]);
    y[i] = 0.5f * v * erfcf(-0.70710678118f * v);
  }
}

// 0.5·x·(1 + tanh u) = x/(1 + e^(−2u)), u = √(2/π)·(x + 0.044715·x³); e^(−2u) = ∞ for very negative u gives −0.
void gelu_tanh(const float* x, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = gelu_arg(x[i]);
    y[i] = v / (1.0f + expf(-2.0f * 0.79788456080f * v * (1.0f + 0.044715f * v * v)));
  }
}

void softmax(const float* x, float* y, int64_t rows, int64_t n) {
  for (int64_t r = 0; r < rows; ++r, x += n, y += n) {
    float m = -__builtin_inff();
    for (int64_t j = 0; j < n; ++j) m = x[j] > m ? x[j] : m;
    float s = 0.0f;
    for (int64_t j = 0; j < n; ++j) s += y[j] = expf(x[j] - m);
    const float inv = 1.0f / s;
    for (int64_t j = 0; j < n; ++j) y[j] *= inv;
  }
}

void softmax_prefixes(float* x, int64_t ld, int64_t rows, const int64_t* n, int64_t width) {
  for (int64_t r = 0; r < rows; ++r, x += ld) {
    softmax(x, x, 1, n[r]);
    for (int64_t j = n[r]; j < width; ++j) x[j] = 0.0f;
  }
}

// The vector paths' corrected two passes (float_kernels_body.inc): c takes back the mean's rounding.
void layer_norm(const float* x, float* y, int64_t rows, int64_t n, const float* gamma, const float* beta, float eps) {
  for (int64_t r = 0; r < rows; ++r, x += n, y += n) {
    float s = 0.0f, e = 0.0f, q = 0.0f;
    for (int64_t j = 0; j < n; ++j) s += x[j];
    const float mean = s / static_cast<float>(n);
    for (int64_t j = 0; j < n; ++j) {
      e += x[j] - mean;
      q += (x[j] - mean) * (x[j] - mean);
    }
    const float c = e / static_cast<float>(n), rstd = 1.0f / sqrtf(q / static_cast<float>(n) - c * c + eps);
    for (int64_t j = 0; j < n; ++j)
      y[j] = (x[j] - mean - c) * rstd * (gamma ? gamma[j] : 1.0f) + (beta ? beta[j] : 0.0f);
  }
}

void matmul(const float* a, int64_t a_rs, int64_t a_cs, const float* b, int64_t b_rs, int64_t b_cs, float* c,
            int64_t ldc, int64_t m, int64_t n, int64_t k, float alpha) {
  for (int64_t i = 0; i < m; ++i)
    for (int64_t j = 0; j < n; ++j) {
      float s = 0.0f;
      for (int64_t p = 0; p < k; ++p) s += a[i * a_rs + p * a_cs] * b[p * b_rs + j * b_cs];
      c[i * ldc + j] = alpha * s;
    }
}

void add(const float* a, const float* b, float alpha, float* y, int64_t n) {
  for (int64_t i = 0; i < n; ++i) y[i] = a[i] + alpha * b[i];
}

void clamp(const float* x, float* y, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) y[i] = x[i] < lo ? lo : x[i] > hi ? hi : x[i];  // NaN fails both: kept
}

void add_clamp(const float* a, const float* b, float* y, int64_t n, float lo, float hi) {
  for (int64_t i = 0; i < n; ++i) {
    const float v = a[i] + b[i];
    y[i] = v < lo ? lo : v > hi ? hi : v;
  }
}

void max_of(const float* const* x, int64_t count, float* y, int64_t n) {
  for (int64_t j = 0; j < n; ++j) {
    float m = x[0][j];
    for (int64_t i = 1; i < count; ++i) m = (x[i][j] > m || x[i][j] != x[i][j]) ? x[i][j] : m;  // NaN stays
    y[j] = m;
  }
}

}  // namespace

const FloatKernels& scalar_float_kernels() {
  static const FloatKernels k{gelu,   gelu_tanh, softmax, softmax_prefixes, layer_norm,
                              matmul, add,       clamp,   add_clamp,        max_of};
  return k;
}

}  // namespace runtime
}  // namespace adze
