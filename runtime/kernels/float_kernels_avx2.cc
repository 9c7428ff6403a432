// Float kernels for AVX2 with FMA: eight floats per vector, the partial last vector of a row read and written
// with vmaskmovps (which neither faults on nor touches the lanes masked off, so rows may end at the end of
// their buffer). The kernels themselves are float_kernels_body.inc, written against the few vector operations
// below. Compiled with -mavx2 -mfma; nothing here may be shared with other translation units (row_kernels.h).
#include <immintrin.h>

#include "runtime/kernels/float_kernels.h"

namespace adze {
namespace runtime {
namespace {

#define ADZE_INLINE inline __attribute__((always_inline))

using V = __m256;
constexpr int64_t kW = 8;  // lanes

// vmaskmovps controls: the 8 entries from kPrefix + 8 − n set their first n lanes.
alignas(64) constexpr int32_t kPrefix[16] = {-1, -1, -1, -1, -1, -1, -1, -1, 0, 0, 0, 0, 0, 0, 0, 0};
ADZE_INLINE __m256i prefix(int64_t n) { return _mm256_loadu_si256(reinterpret_cast<const __m256i*>(kPrefix + 8 - n)); }

ADZE_INLINE V vset(float v) { return _mm256_set1_ps(v); }
ADZE_INLINE V vzero() { return _mm256_setzero_ps(); }
ADZE_INLINE V vload(const float* p) { return _mm256_loadu_ps(p); }
ADZE_INLINE void vstore(float* p, V v) { _mm256_storeu_ps(p, v); }
/// The first n (0 < n < kW) values at p, `fill` in the other lanes.
ADZE_INLINE V vload_part(const float* p, int64_t n, float fill) {
  const __m256i m = prefix(n);
  return _mm256_blendv_ps(vset(fill), _mm256_maskload_ps(p, m), _mm256_castsi256_ps(m));
}
ADZE_INLINE void vstore_part(float* p, V v, int64_t n) { _mm256_maskstore_ps(p, prefix(n), v); }
ADZE_INLINE V vadd(V a, V b) { return _mm256_add_ps(a, b); }
ADZE_INLINE V vsub(V a, V b) { return _mm256_sub_ps(a, b); }
ADZE_INLINE V vmul(V a, V b) { return _mm256_mul_ps(a, b); }
ADZE_INLINE V vdiv(V a, V b) { return _mm256_div_ps(a, b); }
ADZE_INLINE V vfmadd(V a, V b, V c) { return _mm256_fmadd_ps(a, b, c); }    // a·b + c
ADZE_INLINE V vfnmadd(V a, V b, V c) { return _mm256_fnmadd_ps(a, b, c); }  // c − a·b
/// maxps / minps: b where either is NaN, so vmax(lo, x) keeps a NaN x.
ADZE_INLINE V vmax(V a, V b) { return _mm256_max_ps(a, b); }
ADZE_INLINE V vmin(V a, V b) { return _mm256_min_ps(a, b); }
ADZE_INLINE V vabs(V a) { return _mm256_andnot_ps(vset(-0.0f), a); }
/// a < b ? t : f in each lane (f where either is NaN).
ADZE_INLINE V vselect_lt(V a, V b, V t, V f) { return _mm256_blendv_ps(f, t, _mm256_cmp_ps(a, b, _CMP_LT_OQ)); }
/// max(a, b), NaN where either is NaN (their sum).
ADZE_INLINE V vmax_nan(V a, V b) {
  return _mm256_blendv_ps(_mm256_max_ps(a, b), _mm256_add_ps(a, b), _mm256_cmp_ps(a, b, _CMP_UNORD_Q));
}
ADZE_INLINE V vround(V a) { return _mm256_round_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
/// 2^n for whole n in [−126, 127], from the exponent bits.
ADZE_INLINE V vpow2(V n) {
  return _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(_mm256_cvtps_epi32(n), _mm256_set1_epi32(127)), 23));
}
ADZE_INLINE __m128 half_sum(V a) { return _mm_add_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1)); }
ADZE_INLINE float vsum(V a) {
  __m128 s = half_sum(a);
  s = _mm_add_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_add_ss(s, _mm_movehdup_ps(s)));
}
ADZE_INLINE float vmax_lanes(V a) {
  __m128 s = _mm_max_ps(_mm256_castps256_ps128(a), _mm256_extractf128_ps(a, 1));
  s = _mm_max_ps(s, _mm_movehl_ps(s, s));
  return _mm_cvtss_f32(_mm_max_ss(s, _mm_movehdup_ps(s)));
}
/// The sums of four vectors' lanes, in order: two rounds of horizontal adds, then the two halves.
ADZE_INLINE __m128 vsum4(V a, V b, V c, V d) {
  return half_sum(_mm256_hadd_ps(_mm256_hadd_ps(a, b), _mm256_hadd_ps(c, d)));
}

#include "runtime/kernels/float_kernels_body.inc"

#undef ADZE_INLINE

}  // namespace

const FloatKernels& avx2_float_kernels() {
  static const FloatKernels k{gelu,   gelu_tanh, softmax, softmax_prefixes, layer_norm,
                              matmul, add,       clamp,   add_clamp,        max_of};
  return k;
}

}  // namespace runtime
}  // namespace adze
