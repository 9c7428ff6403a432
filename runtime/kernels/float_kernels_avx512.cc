// Float kernels for AVX-512: sixteen floats per vector, the partial last vector of a row read and written under
// a lane mask (masked lanes neither fault nor change memory). The kernels themselves are
// float_kernels_body.inc, written against the few vector operations below, which need only AVX-512F (no DQ:
// the float bitwise operations go through the integer ones). Compiled with -mavx512{f,bw,vl,vnni,vbmi2};
// nothing here may be shared with other translation units (row_kernels.h).
#include <immintrin.h>

#include "runtime/kernels/float_kernels.h"

namespace adze {
namespace runtime {
namespace {

#define ADZE_INLINE inline __attribute__((always_inline))

using V = __m512;
constexpr int64_t kW = 16;  // lanes

ADZE_INLINE __mmask16 prefix(int64_t n) { return static_cast<__mmask16>((1u << n) - 1); }  // the first n lanes

ADZE_INLINE V vset(float v) { return _mm512_set1_ps(v); }
ADZE_INLINE V vzero() { return _mm512_setzero_ps(); }
ADZE_INLINE V vload(const float* p) { return _mm512_loadu_ps(p); }
ADZE_INLINE void vstore(float* p, V v) { _mm512_storeu_ps(p, v); }
/// The first n (0 < n < kW) values at p, `fill` in the other lanes.
ADZE_INLINE V vload_part(const float* p, int64_t n, float fill) {
  return _mm512_mask_loadu_ps(vset(fill), prefix(n), p);
}
ADZE_INLINE void vstore_part(float* p, V v, int64_t n) { _mm512_mask_storeu_ps(p, prefix(n), v); }
ADZE_INLINE V vadd(V a, V b) { return _mm512_add_ps(a, b); }
ADZE_INLINE V vsub(V a, V b) { return _mm512_sub_ps(a, b); }
ADZE_INLINE V vmul(V a, V b) { return _mm512_mul_ps(a, b); }
ADZE_INLINE V vdiv(V a, V b) { return _mm512_div_ps(a, b); }
ADZE_INLINE V vfmadd(V a, V b, V c) { return _mm512_fmadd_ps(a, b, c); }    // a·b + c
ADZE_INLINE V vfnmadd(V a, V b, V c) { return _mm512_fnmadd_ps(a, b, c); }  // c − a·b
/// maxps / minps: b where either is NaN, so vmax(lo, x) keeps a NaN x.
ADZE_INLINE V vmax(V a, V b) { return _mm512_max_ps(a, b); }
ADZE_INLINE V vmin(V a, V b) { return _mm512_min_ps(a, b); }
ADZE_INLINE V vabs(V a) {
  return _mm512_castsi512_ps(_mm512_and_si512(_mm512_castps_si512(a), _mm512_set1_epi32(0x7FFFFFFF)));
}
/// a < b ? t : f in each lane (f where either is NaN).
ADZE_INLINE V vselect_lt(V a, V b, V t, V f) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), f, t);
}
/// max(a, b), NaN where either is NaN (their sum).
ADZE_INLINE V vmax_nan(V a, V b) {
  return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_UNORD_Q), _mm512_max_ps(a, b), _mm512_add_ps(a, b));
}
ADZE_INLINE V vround(V a) { return _mm512_roundscale_ps(a, _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC); }
/// 2^n for whole n in [−126, 127], from the exponent bits.
ADZE_INLINE V vpow2(V n) {
  return _mm512_castsi512_ps(_mm512_slli_epi32(_mm512_add_epi32(_mm512_cvtps_epi32(n), _mm512_set1_epi32(127)), 23));
}
ADZE_INLINE float vsum(V a) { return _mm512_reduce_add_ps(a); }
ADZE_INLINE float vmax_lanes(V a) { return _mm512_reduce_max_ps(a); }
/// The sums of four vectors' lanes, in order: each folded to 8 lanes, then as AVX2 does, two rounds of
/// horizontal adds and the two halves.
ADZE_INLINE __m256 fold(V a) {
  return _mm256_add_ps(_mm512_castps512_ps256(a), _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(a), 1)));
}
ADZE_INLINE __m128 vsum4(V a, V b, V c, V d) {
  const __m256 s = _mm256_hadd_ps(_mm256_hadd_ps(fold(a), fold(b)), _mm256_hadd_ps(fold(c), fold(d)));
  return _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
}

#include "runtime/kernels/float_kernels_body.inc"

#undef ADZE_INLINE

}  // namespace

const FloatKernels& avx512_float_kernels() {
  static const FloatKernels k{gelu,   gelu_tanh, softmax, softmax_prefixes, layer_norm,
                              matmul, add,       clamp,   add_clamp,        max_of};
  return k;
}

}  // namespace runtime
}  // namespace adze
