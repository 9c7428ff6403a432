// Row kernels for AVX-512 with VNNI and VBMI2: vpdpbusd multiplies unsigned activations by signed weights and
// adds groups of four into int32 lanes without any intermediate that could saturate, and vpexpandb scatters a
// row's kept weights onto the mask in one instruction. kPairs rows gather the activations of their 64 values
// per chunk with two lane-local vpshufb from the pairs order (row_kernels.h). VBMI's vpermi2b would gather
// them in one instruction, but it takes two cycles of the shuffle port where the two vpshufb take one each, and
// measured slower. Compiled with -mavx512{f,bw,vl,vnni,vbmi2}; nothing here may be shared with other
// translation units (row_kernels.h).
#include <immintrin.h>

#include "runtime/kernels/row_kernels.h"

namespace adze {
namespace runtime {
namespace {

#define ADZE_INLINE inline __attribute__((always_inline))

// The 64 values of the chunk at p, minus offset, as signed bytes in order. A broadcast 4-bit plane holds values
// 0..31 in its low nibbles and 32..63 in its high ones: the upper half shifts right by 4. A broadcast 2-bit
// plane holds value 16l + i in bits [2l, 2l+2) of byte i: 128-bit lane l shifts right by 2l.
ADZE_INLINE __m512i chunk_values(const uint8_t* p, int bits, __m512i off) {
  __m512i v = _mm512_setzero_si512();
  int shift = 0;
  if (bits & 8) {
    v = _mm512_loadu_si512(p);
    p += 64;
    shift = 8;
  }
  if (bits & 4) {
    const __m512i both = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
    v = _mm512_or_si512(
        v, _mm512_and_si512(_mm512_srlv_epi64(both, _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0)), _mm512_set1_epi8(0x0F)));
    p += 32;
    shift = 4;
  }
  if (bits & 2) {
    const __m512i all = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m512i values =
        _mm512_and_si512(_mm512_srlv_epi64(all, _mm512_set_epi64(6, 6, 4, 4, 2, 2, 0, 0)), _mm512_set1_epi8(0x03));
    v = _mm512_or_si512(v, _mm512_sll_epi16(values, _mm_cvtsi32_si128(shift)));
    p += 16;
    shift += 2;
  }
  if (bits & 1) {
    uint64_t word;
    __builtin_memcpy(&word, p, 8);
    const __m512i values = _mm512_maskz_mov_epi8(static_cast<__mmask64>(word), _mm512_set1_epi8(1));
    v = _mm512_or_si512(v, _mm512_sll_epi16(values, _mm_cvtsi32_si128(shift)));
  }
  return _mm512_sub_epi8(v, off);
}

// The 64 values of a 4-bit chunk at p whose offset is 8, times 16, as signed bytes: with u − 8 in [−8, 7],
// 16·(u − 8) = (u << 4) ^ 0x80. The broadcast plane's low nibbles (values 0..31) move up by four bits within
// their 64-bit lanes, its high nibbles (values 32..63) are in place: two operations where chunk_values needs
// three. Products come out 16 times too large, and so does every int32 lane of a sum of them, which
// row_dot divides back exactly; a lane holds a sixteenth of its group's products, so it reaches no more than
// the group's own sum could.
ADZE_INLINE __m512i chunk_values_x16(const uint8_t* p) {
  const __m512i both = _mm512_broadcast_i64x4(_mm256_loadu_si256(reinterpret_cast<const __m256i*>(p)));
  const __m512i up = _mm512_sllv_epi64(both, _mm512_set_epi64(0, 0, 0, 0, 4, 4, 4, 4));
  const __m512i high = _mm512_set1_epi8(static_cast<char>(0xF0)), sign = _mm512_set1_epi8(static_cast<char>(0x80));
  return _mm512_ternarylogic_epi64(up, high, sign, 0x6A);  // (up & 0xF0) ^ 0x80
}

// The gather controls (row_kernels.h) of a kPairs chunk from its position plane at p: byte i of lane l is the
// position of value 16l + i (field l of plane byte i) plus 4·⌊(i mod 8)/2⌋.
ADZE_INLINE __m512i pair_controls(const uint8_t* p) {
  const __m512i all = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m512i fields = _mm512_srlv_epi64(all, _mm512_set_epi64(6, 6, 4, 4, 2, 2, 0, 0));
  return _mm512_ternarylogic_epi64(fields, _mm512_set1_epi8(0x03), _mm512_set1_epi64(0x0C0C080804040000LL),
                                   0xEA);  // (fields & 3) | base
}

// The activations of a kPairs chunk's 64 values, from its 128 in the pairs order: `even` (the first 64 bytes,
// lane l = block 2l) for values 16l + i with i < 8, `odd` (lane l = block 2l + 1) for i ≥ 8.
ADZE_INLINE __m512i pair_activations(__m512i even, __m512i odd, __m512i g) {
  return _mm512_mask_shuffle_epi8(_mm512_shuffle_epi8(even, g), 0xFF00FF00FF00FF00ULL, odd, g);
}

void unpack(const uint8_t* planes, int bits, int64_t chunks, int32_t offset, int8_t* out) {
  const __m512i off = _mm512_set1_epi8(static_cast<char>(offset));
  for (int64_t c = 0; c < chunks; ++c, planes += 8 * bits)
    _mm512_storeu_si512(out + 64 * c, chunk_values(planes, bits, off));
}

void expand(const int8_t* kept, const uint64_t* mask, int64_t words, int8_t* dense) {
  for (int64_t w = 0; w < words; ++w) {
    const __mmask64 m = static_cast<__mmask64>(mask[w]);
    _mm512_storeu_si512(dense + w * 64, _mm512_maskz_expandloadu_epi8(m, kept));
    kept += __builtin_popcountll(mask[w]);
  }
}

inline int32_t hsum256(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

int32_t dot(const uint8_t* x, const int8_t* w, int64_t n, bool) {
  __m512i acc = _mm512_setzero_si512();
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) acc = _mm512_dpbusd_epi32(acc, _mm512_loadu_si512(x + i), _mm512_loadu_si512(w + i));
  int32_t s = _mm512_reduce_add_epi32(acc);
  if (i < n)
    s +=
        hsum256(_mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)),
                                    _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i))));
  return s;
}

void dot4(const uint8_t* x, const int8_t* w, int64_t stride, int64_t n, bool, int32_t* out) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  int64_t i = 0;
  for (; i + 64 <= n; i += 64) {
    const __m512i v = _mm512_loadu_si512(x + i);
    a0 = _mm512_dpbusd_epi32(a0, v, _mm512_loadu_si512(w + i));
    a1 = _mm512_dpbusd_epi32(a1, v, _mm512_loadu_si512(w + stride + i));
    a2 = _mm512_dpbusd_epi32(a2, v, _mm512_loadu_si512(w + 2 * stride + i));
    a3 = _mm512_dpbusd_epi32(a3, v, _mm512_loadu_si512(w + 3 * stride + i));
  }
  if (i < n) {  // a 32-byte tail, in the low halves
    const __mmask64 half = 0xFFFFFFFFULL;
    const __m512i v = _mm512_maskz_loadu_epi8(half, x + i);
    a0 = _mm512_dpbusd_epi32(a0, v, _mm512_maskz_loadu_epi8(half, w + i));
    a1 = _mm512_dpbusd_epi32(a1, v, _mm512_maskz_loadu_epi8(half, w + stride + i));
    a2 = _mm512_dpbusd_epi32(a2, v, _mm512_maskz_loadu_epi8(half, w + 2 * stride + i));
    a3 = _mm512_dpbusd_epi32(a3, v, _mm512_maskz_loadu_epi8(half, w + 3 * stride + i));
  }
  out[0] = _mm512_reduce_add_epi32(a0);
  out[1] = _mm512_reduce_add_epi32(a1);
  out[2] = _mm512_reduce_add_epi32(a2);
  out[3] = _mm512_reduce_add_epi32(a3);
}

// The sums of four vectors' int32 lanes, (Σa, Σb, Σc, Σd): one shuffle tree instead of four horizontal sums.
ADZE_INLINE __m128i sum4(__m512i a, __m512i b, __m512i c, __m512i d) {
  // Per 128-bit lane: (a0+a2, b0+b2, a1+a3, b1+b3), then (Σa, Σb, Σc, Σd); then the four lanes added.
  const __m512i ab = _mm512_add_epi32(_mm512_unpacklo_epi32(a, b), _mm512_unpackhi_epi32(a, b));
  const __m512i cd = _mm512_add_epi32(_mm512_unpacklo_epi32(c, d), _mm512_unpackhi_epi32(c, d));
  const __m512i abcd = _mm512_add_epi32(_mm512_unpacklo_epi64(ab, cd), _mm512_unpackhi_epi64(ab, cd));
  const __m256i half = _mm256_add_epi32(_mm512_castsi512_si256(abcd), _mm512_extracti64x4_epi64(abcd, 1));
  return _mm_add_epi32(_mm256_castsi256_si128(half), _mm256_extracti128_si256(half, 1));
}

// Finished group sums whose dots wait for three more, so that four share one sum4.
struct Sums {
  __m512i pending[4];
  int32_t* dot[4];
  int n;

  ADZE_INLINE void add(__m512i acc, int32_t* to) {
    pending[n] = acc;
    dot[n] = to;
    if (++n == 4) flush();
  }
  ADZE_INLINE void flush() {
    if (n == 0) return;
    for (int i = n; i < 4; ++i) pending[i] = _mm512_setzero_si512();
    alignas(16) int32_t out[4];
    _mm_store_si128(reinterpret_cast<__m128i*>(out), sum4(pending[0], pending[1], pending[2], pending[3]));
    for (int i = 0; i < n; ++i) *dot[i] = out[i];
    n = 0;
  }
};

// How far ahead of its reads row_dot prefetches a row: the hardware prefetchers stop at every 4 KiB page, and
// without this a weight matrix streamed from the last-level cache arrives measurably slower than the kernel
// consumes it.
constexpr int64_t kPrefetchBytes = 2048;

// acc + the products of the chunk at p (offset `off`; x16: 4-bit values with offset 8, taken 16 times by
// chunk_values_x16) with its activations at x (dense: 64; kPairs: 128 in the pairs order).
ADZE_INLINE __m512i chunk_dot(__m512i acc, const uint8_t* p, int bits, __m512i off, bool pairs, bool x16,
                              const uint8_t* x) {
  _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes), _MM_HINT_T0);
  const __m512i w = x16 ? chunk_values_x16(p) : chunk_values(p, bits, off);
  const __m512i a =
      pairs ? pair_activations(_mm512_loadu_si512(x), _mm512_loadu_si512(x + 64), pair_controls(p + 8 * bits))
            : _mm512_loadu_si512(x);
  return _mm512_dpbusd_epi32(acc, a, w);
}

// The lane sums of one group of `group_chunks` chunks at p, in four vpdpbusd chains to cover its latency.
ADZE_INLINE __m512i group_dot(const uint8_t* p, int bits, __m512i off, bool pairs, bool x16, const uint8_t* x,
                              int64_t group_chunks) {
  const int64_t chunk_bytes = 8 * bits + (pairs ? 16 : 0), x_step = pairs ? 128 : 64;
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  int64_t c = 0;
  for (; c + 4 <= group_chunks; c += 4, p += 4 * chunk_bytes, x += 4 * x_step) {
    a0 = chunk_dot(a0, p, bits, off, pairs, x16, x);
    a1 = chunk_dot(a1, p + chunk_bytes, bits, off, pairs, x16, x + x_step);
    a2 = chunk_dot(a2, p + 2 * chunk_bytes, bits, off, pairs, x16, x + 2 * x_step);
    a3 = chunk_dot(a3, p + 3 * chunk_bytes, bits, off, pairs, x16, x + 3 * x_step);
  }
  for (; c < group_chunks; ++c, p += chunk_bytes, x += x_step) a0 = chunk_dot(a0, p, bits, off, pairs, x16, x);
  return _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3));
}

// One row at p: its groups four at a time, a chunk of each in turn (four independent chains), their four sums
// reduced together; the rest (all of a row with one scale) one by one through `sums`.
ADZE_INLINE void one_row_dot(const uint8_t* p, int bits, int32_t offset, bool pairs, bool x16, const uint8_t* x,
                             int64_t group_chunks, int64_t groups, int32_t* dots, Sums& sums) {
  const __m512i off = _mm512_set1_epi8(static_cast<char>(offset));
  const int64_t chunk_bytes = 8 * bits + (pairs ? 16 : 0), x_step = pairs ? 128 : 64;
  const int64_t group_bytes = group_chunks * chunk_bytes, group_x = group_chunks * x_step;
  int64_t g = 0;
  for (; g + 4 <= groups; g += 4, p += 4 * group_bytes, x += 4 * group_x) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
    for (int64_t c = 0; c < group_chunks; ++c) {
      a0 = chunk_dot(a0, p + c * chunk_bytes, bits, off, pairs, x16, x + c * x_step);
      a1 = chunk_dot(a1, p + group_bytes + c * chunk_bytes, bits, off, pairs, x16, x + group_x + c * x_step);
      a2 = chunk_dot(a2, p + 2 * group_bytes + c * chunk_bytes, bits, off, pairs, x16, x + 2 * group_x + c * x_step);
      a3 = chunk_dot(a3, p + 3 * group_bytes + c * chunk_bytes, bits, off, pairs, x16, x + 3 * group_x + c * x_step);
    }
    __m128i d = sum4(a0, a1, a2, a3);
    if (x16) d = _mm_srai_epi32(d, 4);  // sums of multiples of 16
    _mm_storeu_si128(reinterpret_cast<__m128i*>(dots + g), d);
  }
  for (; g < groups; ++g, p += group_bytes, x += group_x) {
    __m512i sum = group_dot(p, bits, off, pairs, x16, x, group_chunks);
    if (x16) sum = _mm512_srai_epi32(sum, 4);  // every lane is a sum of multiples of 16
    sums.add(sum, dots + g);
  }
}

// Four rows of one group each (a row with one scale), their chunks in four interleaved chains and their sums
// reduced together: a short row (a low-rank factor's K = r) is then not one dependent chain after another.
template <int kBits>
ADZE_INLINE void four_rows_dot(const uint8_t* p, int64_t row_bytes, int bits, const int32_t* offset, const uint8_t* x,
                               int64_t group_chunks, int32_t* dots) {
  const int b = kBits ? kBits : bits;
  const int64_t chunk_bytes = 8 * b;
  const __m512i o0 = _mm512_set1_epi8(static_cast<char>(offset[0])),
                o1 = _mm512_set1_epi8(static_cast<char>(offset[1]));
  const __m512i o2 = _mm512_set1_epi8(static_cast<char>(offset[2])),
                o3 = _mm512_set1_epi8(static_cast<char>(offset[3]));
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t c = 0; c < group_chunks; ++c, p += chunk_bytes, x += 64) {
    a0 = chunk_dot(a0, p, b, o0, false, false, x);
    a1 = chunk_dot(a1, p + row_bytes, b, o1, false, false, x);
    a2 = chunk_dot(a2, p + 2 * row_bytes, b, o2, false, false, x);
    a3 = chunk_dot(a3, p + 3 * row_bytes, b, o3, false, false, x);
  }
  _mm_storeu_si128(reinterpret_cast<__m128i*>(dots), sum4(a0, a1, a2, a3));
}

// acc[i] + the products of the chunk at p with the activations of row i (x + i·x_stride), for M rows: the
// chunk's values (and kPairs gather controls) are unpacked once for all of them.
template <int M>
ADZE_INLINE void rows_chunk_dot(__m512i* acc, const uint8_t* p, int bits, __m512i off, bool pairs, bool x16,
                                const uint8_t* x, int64_t x_stride) {
  _mm_prefetch(reinterpret_cast<const char*>(p + kPrefetchBytes), _MM_HINT_T0);
  const __m512i w = x16 ? chunk_values_x16(p) : chunk_values(p, bits, off);
  if (pairs) {
    const __m512i controls = pair_controls(p + 8 * bits);
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) {
      const uint8_t* xi = x + i * x_stride;
      acc[i] = _mm512_dpbusd_epi32(acc[i],
                                   pair_activations(_mm512_loadu_si512(xi), _mm512_loadu_si512(xi + 64), controls), w);
    }
  } else {
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) acc[i] = _mm512_dpbusd_epi32(acc[i], _mm512_loadu_si512(x + i * x_stride), w);
  }
}

// One packed row at p against M (2..4) activation rows: per group, two chunks at a time in two sets of M chains.
template <int M>
ADZE_INLINE void one_row_dot_rows(const uint8_t* p, int bits, int32_t offset, bool pairs, bool x16, const uint8_t* x,
                                  int64_t x_stride, int64_t group_chunks, int64_t groups, int32_t* dots,
                                  int64_t dots_stride, Sums& sums) {
  const __m512i off = _mm512_set1_epi8(static_cast<char>(offset));
  const int64_t chunk_bytes = 8 * bits + (pairs ? 16 : 0), x_step = pairs ? 128 : 64;
  for (int64_t g = 0; g < groups; ++g) {
    __m512i a[M], b[M];
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) a[i] = b[i] = _mm512_setzero_si512();
    int64_t c = 0;
    for (; c + 2 <= group_chunks; c += 2, p += 2 * chunk_bytes, x += 2 * x_step) {
      rows_chunk_dot<M>(a, p, bits, off, pairs, x16, x, x_stride);
      rows_chunk_dot<M>(b, p + chunk_bytes, bits, off, pairs, x16, x + x_step, x_stride);
    }
    if (c < group_chunks) {
      rows_chunk_dot<M>(a, p, bits, off, pairs, x16, x, x_stride);
      p += chunk_bytes;
      x += x_step;
    }
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) {
      __m512i sum = _mm512_add_epi32(a[i], b[i]);
      if (x16) sum = _mm512_srai_epi32(sum, 4);  // every lane is a sum of multiples of 16
      sums.add(sum, dots + i * dots_stride + g);
    }
  }
}

// row_dot of M (2..4) activation rows: every packed row unpacked once for all of them.
template <int M>
void rows_dot(const uint8_t* planes, int64_t row_bytes, int64_t rows, int bits, const int32_t* offset, bool pairs,
              const uint8_t* x, int64_t x_stride, int64_t group_chunks, int64_t groups, int32_t* dots,
              int64_t dots_stride) {
  Sums sums{{}, {}, 0};
  for (int64_t r = 0; r < rows; ++r) {
    const uint8_t* p = planes + r * row_bytes;
    int32_t* const d = dots + r * groups;
    // Constant arguments give the common cases their own loops, as in single-row row_dot.
    if (bits == 4 && offset[r] == 8) {
      if (pairs)
        one_row_dot_rows<M>(p, 4, 8, true, true, x, x_stride, group_chunks, groups, d, dots_stride, sums);
      else
        one_row_dot_rows<M>(p, 4, 8, false, true, x, x_stride, group_chunks, groups, d, dots_stride, sums);
    } else if (bits == 4) {
      if (pairs)
        one_row_dot_rows<M>(p, 4, offset[r], true, false, x, x_stride, group_chunks, groups, d, dots_stride, sums);
      else
        one_row_dot_rows<M>(p, 4, offset[r], false, false, x, x_stride, group_chunks, groups, d, dots_stride, sums);
    } else if (pairs) {
      one_row_dot_rows<M>(p, bits, offset[r], true, false, x, x_stride, group_chunks, groups, d, dots_stride, sums);
    } else {
      one_row_dot_rows<M>(p, bits, offset[r], false, false, x, x_stride, group_chunks, groups, d, dots_stride, sums);
    }
  }
  sums.flush();
}

// row_dot of one activation row.
void one_x_row_dot(const uint8_t* planes, int64_t row_bytes, int64_t rows, int bits, const int32_t* offset, bool pairs,
                   const uint8_t* x, int64_t group_chunks, int64_t groups, int32_t* dots) {
  Sums sums{{}, {}, 0};
  int64_t first = 0;
  if (groups == 1 && !pairs)
    for (; first + 4 <= rows; first += 4) {
      const uint8_t* p = planes + first * row_bytes;
      if (bits == 8)
        four_rows_dot<8>(p, row_bytes, 8, offset + first, x, group_chunks, dots + first);
      else if (bits == 4)
        four_rows_dot<4>(p, row_bytes, 4, offset + first, x, group_chunks, dots + first);
      else
        four_rows_dot<0>(p, row_bytes, bits, offset + first, x, group_chunks, dots + first);
    }
  for (int64_t r = first; r < rows; ++r) {
    const uint8_t* p = planes + r * row_bytes;
    int32_t* const d = dots + r * groups;
    // Constant arguments give the common cases their own loops, free of the other planes' branches.
    if (bits == 4 && offset[r] == 8) {
      if (pairs)
        one_row_dot(p, 4, 8, true, true, x, group_chunks, groups, d, sums);
      else
        one_row_dot(p, 4, 8, false, true, x, group_chunks, groups, d, sums);
    } else if (bits == 4) {
      if (pairs)
        one_row_dot(p, 4, offset[r], true, false, x, group_chunks, groups, d, sums);
      else
        one_row_dot(p, 4, offset[r], false, false, x, group_chunks, groups, d, sums);
    } else if (bits == 8) {
      if (pairs)
        one_row_dot(p, 8, offset[r], true, false, x, group_chunks, groups, d, sums);
      else
        one_row_dot(p, 8, offset[r], false, false, x, group_chunks, groups, d, sums);
    } else if (pairs) {
      one_row_dot(p, bits, offset[r], true, false, x, group_chunks, groups, d, sums);
    } else {
      one_row_dot(p, bits, offset[r], false, false, x, group_chunks, groups, d, sums);
    }
  }
  sums.flush();
}

// Activation rows four at a time (the rest two or three, or one by the single-row loops).
void row_dot(const uint8_t* planes, int64_t row_bytes, int64_t rows, int bits, const int32_t* offset, bool pairs,
             const uint8_t* x, int64_t x_rows, int64_t x_stride, int64_t group_chunks, int64_t groups, bool,
             int32_t* dots, int64_t dots_stride) {
  for (int64_t i = 0; i < x_rows;) {
    const uint8_t* xi = x + i * x_stride;
    int32_t* const di = dots + i * dots_stride;
    switch (x_rows - i < 4 ? x_rows - i : 4) {
      case 4:
        rows_dot<4>(planes, row_bytes, rows, bits, offset, pairs, xi, x_stride, group_chunks, groups, di, dots_stride);
        i += 4;
        break;
      case 3:
        rows_dot<3>(planes, row_bytes, rows, bits, offset, pairs, xi, x_stride, group_chunks, groups, di, dots_stride);
        i += 3;
        break;
      case 2:
        rows_dot<2>(planes, row_bytes, rows, bits, offset, pairs, xi, x_stride, group_chunks, groups, di, dots_stride);
        i += 2;
        break;
      default:
        one_x_row_dot(planes, row_bytes, rows, bits, offset, pairs, xi, group_chunks, groups, di);
        i += 1;
    }
  }
}

void unpack_pairs(const uint8_t* planes, int bits, int64_t chunks, int32_t offset, int8_t* w, uint8_t* g) {
  const __m512i off = _mm512_set1_epi8(static_cast<char>(offset));
  for (int64_t c = 0; c < chunks; ++c, planes += 8 * bits + 16) {
    _mm512_storeu_si512(w + 64 * c, chunk_values(planes, bits, off));
    _mm512_storeu_si512(g + 64 * c, pair_controls(planes + 8 * bits));
  }
}

void pairs_dot4(const uint8_t* x, const int8_t* w, const uint8_t* g, int64_t stride, int64_t chunks, bool,
                int32_t* out) {
  __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t c = 0; c < chunks; ++c, x += 128, w += 64, g += 64) {
    const __m512i even = _mm512_loadu_si512(x), odd = _mm512_loadu_si512(x + 64);
    a0 = _mm512_dpbusd_epi32(a0, pair_activations(even, odd, _mm512_loadu_si512(g)), _mm512_loadu_si512(w));
    a1 = _mm512_dpbusd_epi32(a1, pair_activations(even, odd, _mm512_loadu_si512(g + stride)),
                             _mm512_loadu_si512(w + stride));
    a2 = _mm512_dpbusd_epi32(a2, pair_activations(even, odd, _mm512_loadu_si512(g + 2 * stride)),
                             _mm512_loadu_si512(w + 2 * stride));
    a3 = _mm512_dpbusd_epi32(a3, pair_activations(even, odd, _mm512_loadu_si512(g + 3 * stride)),
                             _mm512_loadu_si512(w + 3 * stride));
  }
  out[0] = _mm512_reduce_add_epi32(a0);
  out[1] = _mm512_reduce_add_epi32(a1);
  out[2] = _mm512_reduce_add_epi32(a2);
  out[3] = _mm512_reduce_add_epi32(a3);
}

// kPanelRows activation rows (x0..x7, read from byte `at` on) times `steps` steps of a panel into acc, the
// products of gemm_panel: per step, the panel's two vectors of 16 channels times 4 bytes are loaded once and
// each row's 4 activation bytes broadcast into vpdpbusd with both, so that 16 int32 accumulators (8 rows x 32
// channels) stay in registers through the whole loop and nothing is reduced horizontally. The accumulators are
// sixteen named variables in a function that is not inlined: held in an array, or inlined into its callers,
// GCC 12 copied each of them to another register on every step and spilled two to the stack. Without the copies
// (build/bench/qgemm_bench, prepacked, one thread, the old and new builds alternated twice): fortune-gpt's
// qkv shape 159–163 → 171–178 GMAC/s, ResNet's stem 169–170 → 182–184.
__attribute__((noinline)) void panel8_steps(const uint8_t* const (&xr)[kPanelRows], int64_t at, const int8_t* panel,
                                            int64_t steps, __m512i (&acc)[kPanelRows][2]) {
  __m512i a00 = _mm512_setzero_si512(), a01 = a00, a10 = a00, a11 = a00, a20 = a00, a21 = a00, a30 = a00, a31 = a00,
          a40 = a00, a41 = a00, a50 = a00, a51 = a00, a60 = a00, a61 = a00, a70 = a00, a71 = a00;
  const uint8_t *x0 = xr[0] + at, *x1 = xr[1] + at, *x2 = xr[2] + at, *x3 = xr[3] + at, *x4 = xr[4] + at,
                *x5 = xr[5] + at, *x6 = xr[6] + at, *x7 = xr[7] + at;
  for (int64_t s = 0; s < steps; ++s, panel += 4 * kPanelChannels) {
    const __m512i w0 = _mm512_load_si512(panel), w1 = _mm512_load_si512(panel + 64);
#define ADZE_PANEL_ROW(x, lo, hi)              \
  {                                            \
    int32_t four;                              \
    __builtin_memcpy(&four, x + 4 * s, 4);     \
    const __m512i b = _mm512_set1_epi32(four); \
    lo = _mm512_dpbusd_epi32(lo, b, w0);       \
    hi = _mm512_dpbusd_epi32(hi, b, w1);       \
  }
    ADZE_PANEL_ROW(x0, a00, a01)
    ADZE_PANEL_ROW(x1, a10, a11)
    ADZE_PANEL_ROW(x2, a20, a21)
    ADZE_PANEL_ROW(x3, a30, a31)
    ADZE_PANEL_ROW(x4, a40, a41)
    ADZE_PANEL_ROW(x5, a50, a51)
    ADZE_PANEL_ROW(x6, a60, a61)
    ADZE_PANEL_ROW(x7, a70, a71)
#undef ADZE_PANEL_ROW
  }
  acc[0][0] = a00, acc[0][1] = a01, acc[1][0] = a10, acc[1][1] = a11, acc[2][0] = a20, acc[2][1] = a21;
  acc[3][0] = a30, acc[3][1] = a31, acc[4][0] = a40, acc[4][1] = a41, acc[5][0] = a50, acc[5][1] = a51;
  acc[6][0] = a60, acc[6][1] = a61, acc[7][0] = a70, acc[7][1] = a71;
}

// kPanelRows rows against one panel, group by group (panel8_steps). A tile of fewer rows repeats its last row
// (its products are computed, not stored): one straight-line loop serves every tail.
void gemm_panel(const uint8_t* x, int64_t x_stride, int64_t rows, const int8_t* panel, int64_t group_steps,
                int64_t groups, bool /*small*/, int32_t* dots) {
  const uint8_t* xr[kPanelRows];
  for (int64_t r = 0; r < kPanelRows; ++r) xr[r] = x + (r < rows ? r : rows - 1) * x_stride;
  for (int64_t g = 0; g < groups; ++g, panel += group_steps * 4 * kPanelChannels) {
    __m512i acc[kPanelRows][2];
    panel8_steps(xr, g * group_steps * 4, panel, group_steps, acc);
#pragma GCC unroll 8
    for (int r = 0; r < kPanelRows; ++r) {
      if (r >= rows) break;
      int32_t* out = dots + (r * groups + g) * kPanelChannels;
      _mm512_storeu_si512(out, acc[r][0]);
      _mm512_storeu_si512(out + 16, acc[r][1]);
    }
  }
}

// The arithmetic of PanelEpilogue (row_kernels.h) on R rows' accumulators, sixteen channels at a time. kClamp:
// the bounds are not (−∞, +∞), where the comparisons would change nothing (a NaN is kept either way);
// kOneZero: every row has the first row's zero point (static quantization), so a_zero·wsum is one product
// per vector of channels instead of one per row. (qgemm_bench, prepacked, fortune-gpt's qkv shape: the
// epilogue was a fifth of the kernel's time, by perf; with both, 175–181 → 195–196 GMAC/s, alternated thrice.)
template <int R, bool kClamp, bool kOneZero>
ADZE_INLINE void epilogue_rows(const __m512i (&acc)[R][2], const PanelEpilogue& e) {
  const __m512 lo = _mm512_set1_ps(e.lo), hi = _mm512_set1_ps(e.hi);
  for (int half = 0; half < 2; ++half) {
    const int64_t c0 = 16 * half;
    if (c0 >= e.channels) break;
    const __mmask16 m =
        e.channels - c0 >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (e.channels - c0)) - 1u);
    const __m512 sc = _mm512_maskz_loadu_ps(m, e.w_scale + c0);
    const __m512i ws = _mm512_maskz_loadu_epi32(m, e.wsum + c0);
    const __m512 bias = e.bias ? _mm512_maskz_loadu_ps(m, e.bias + c0) : _mm512_setzero_ps();
    const __m512i zw0 = _mm512_mullo_epi32(_mm512_set1_epi32(e.a_zero[0]), ws);
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) {
      const __m512i zw = kOneZero || r == 0 ? zw0 : _mm512_mullo_epi32(_mm512_set1_epi32(e.a_zero[r]), ws);
      const __m512i d = _mm512_sub_epi32(acc[r][half], zw);
      __m512 v =
          _mm512_add_ps(_mm512_mul_ps(_mm512_set1_ps(e.a_scale[r]), _mm512_mul_ps(sc, _mm512_cvtepi32_ps(d))), bias);
      if (kClamp) {
        v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, lo, _CMP_LT_OQ), v, lo);
        v = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, hi, _CMP_GT_OQ), v, hi);
      }
      _mm512_mask_storeu_ps(e.y + r * e.y_stride + c0, m, v);
    }
  }
}

template <int R>
ADZE_INLINE void panel_epilogue(const __m512i (&acc)[R][2], const PanelEpilogue& e) {
  const bool clamp = !(e.lo == -__builtin_inff() && e.hi == __builtin_inff());
  bool one_zero = true;
  for (int r = 1; r < R; ++r) one_zero &= e.a_zero[r] == e.a_zero[0];
  if (clamp)
    one_zero ? epilogue_rows<R, true, true>(acc, e) : epilogue_rows<R, true, false>(acc, e);
  else
    one_zero ? epilogue_rows<R, false, true>(acc, e) : epilogue_rows<R, false, false>(acc, e);
}

// R activation rows (1..kPanelRows) of one group against a panel, then the epilogue on the accumulators: the
// products of gemm_panel.
template <int R>
void panel_rows_out(const uint8_t* x, int64_t x_stride, const int8_t* panel, int64_t steps, const PanelEpilogue& e) {
  __m512i acc[R][2];
  const uint8_t* xr[R];
#pragma GCC unroll 8
  for (int r = 0; r < R; ++r) xr[r] = x + r * x_stride;
  if constexpr (R == kPanelRows) {
    panel8_steps(xr, 0, panel, steps, acc);
  } else {
#pragma GCC unroll 8
    for (int r = 0; r < R; ++r) acc[r][0] = acc[r][1] = _mm512_setzero_si512();
    for (int64_t s = 0; s < steps; ++s, panel += 4 * kPanelChannels) {
      const __m512i w0 = _mm512_load_si512(panel), w1 = _mm512_load_si512(panel + 64);
#pragma GCC unroll 8
      for (int r = 0; r < R; ++r) {
        int32_t four;
        __builtin_memcpy(&four, xr[r] + 4 * s, 4);
        const __m512i b = _mm512_set1_epi32(four);
        acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], b, w0);
        acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], b, w1);
      }
    }
  }
  panel_epilogue<R>(acc, e);
}

// One activation row (a batch-1 linear layer): two accumulators would wait on each other's vpdpbusd through the
// whole reduction, so four consecutive steps go to four pairs of accumulators, summed at the end (exact in
// integers: the same dots as panel_rows_out<1>).
ADZE_INLINE void panel_row_out(const uint8_t* x, const int8_t* panel, int64_t steps, const PanelEpilogue& e) {
  __m512i a[4][2];
#pragma GCC unroll 4
  for (int u = 0; u < 4; ++u) a[u][0] = a[u][1] = _mm512_setzero_si512();
  int64_t s = 0;
  for (; s + 4 <= steps; s += 4, panel += 16 * kPanelChannels) {
#pragma GCC unroll 4
    for (int u = 0; u < 4; ++u) {
      int32_t four;
      __builtin_memcpy(&four, x + 4 * (s + u), 4);
      const __m512i b = _mm512_set1_epi32(four);
      a[u][0] = _mm512_dpbusd_epi32(a[u][0], b, _mm512_load_si512(panel + 4 * kPanelChannels * u));
      a[u][1] = _mm512_dpbusd_epi32(a[u][1], b, _mm512_load_si512(panel + 4 * kPanelChannels * u + 64));
    }
  }
  for (; s < steps; ++s, panel += 4 * kPanelChannels) {
    int32_t four;
    __builtin_memcpy(&four, x + 4 * s, 4);
    const __m512i b = _mm512_set1_epi32(four);
    a[0][0] = _mm512_dpbusd_epi32(a[0][0], b, _mm512_load_si512(panel));
    a[0][1] = _mm512_dpbusd_epi32(a[0][1], b, _mm512_load_si512(panel + 64));
  }
  const __m512i acc[1][2] = {
      {_mm512_add_epi32(_mm512_add_epi32(a[0][0], a[1][0]), _mm512_add_epi32(a[2][0], a[3][0])),
       _mm512_add_epi32(_mm512_add_epi32(a[0][1], a[1][1]), _mm512_add_epi32(a[2][1], a[3][1]))}};
  panel_epilogue<1>(acc, e);
}

void gemm_panel_out(const uint8_t* x, int64_t x_stride, int64_t rows, const int8_t* panel, int64_t steps,
                    bool /*small*/, const PanelEpilogue& e) {
  switch (rows) {
    case 1:
      return panel_row_out(x, panel, steps, e);
    case 2:
      return panel_rows_out<2>(x, x_stride, panel, steps, e);
    case 3:
      return panel_rows_out<3>(x, x_stride, panel, steps, e);
    case 4:
      return panel_rows_out<4>(x, x_stride, panel, steps, e);
    case 5:
      return panel_rows_out<5>(x, x_stride, panel, steps, e);
    case 6:
      return panel_rows_out<6>(x, x_stride, panel, steps, e);
    case 7:
      return panel_rows_out<7>(x, x_stride, panel, steps, e);
    default:
      return panel_rows_out<8>(x, x_stride, panel, steps, e);
  }
}

void gemv_panels_out(const uint8_t* x, const int8_t* panels, int64_t blocks, int64_t steps, const PanelEpilogue& e) {
  PanelEpilogue p = e;
  for (int64_t b = 0; b < blocks; ++b, panels += steps * 4 * kPanelChannels) {
    const int64_t c0 = b * kPanelChannels;
    p.w_scale = e.w_scale + c0;
    p.wsum = e.wsum + c0;
    p.bias = e.bias ? e.bias + c0 : nullptr;
    p.y = e.y + c0;
    p.channels = e.channels - c0 < kPanelChannels ? e.channels - c0 : kPanelChannels;
    panel_row_out(x, panels, steps, p);
  }
}

// Four minima and maxima side by side over long inputs: one pair waits out vminps's latency on every vector
// (four cycles), four keep both ports busy. The minimum and maximum are exact, so the pairs' order changes no
// bit (a NaN is never taken by any of them).
ADZE_INLINE void widen_range(const float* x, int64_t n, float* lo, float* hi) {
  __m512 l = _mm512_set1_ps(*lo), h = _mm512_set1_ps(*hi);
  int64_t j = 0;
  if (n >= 64) {
    __m512 l1 = l, l2 = l, l3 = l, h1 = h, h2 = h, h3 = h;
    for (; j + 64 <= n; j += 64) {
      const __m512 v0 = _mm512_loadu_ps(x + j), v1 = _mm512_loadu_ps(x + j + 16);
      const __m512 v2 = _mm512_loadu_ps(x + j + 32), v3 = _mm512_loadu_ps(x + j + 48);
      l = _mm512_min_ps(v0, l), h = _mm512_max_ps(v0, h);
      l1 = _mm512_min_ps(v1, l1), h1 = _mm512_max_ps(v1, h1);
      l2 = _mm512_min_ps(v2, l2), h2 = _mm512_max_ps(v2, h2);
      l3 = _mm512_min_ps(v3, l3), h3 = _mm512_max_ps(v3, h3);
    }
    l = _mm512_min_ps(_mm512_min_ps(l, l1), _mm512_min_ps(l2, l3));
    h = _mm512_max_ps(_mm512_max_ps(h, h1), _mm512_max_ps(h2, h3));
  }
  for (; j + 16 <= n; j += 16) {
    const __m512 v = _mm512_loadu_ps(x + j);
    l = _mm512_min_ps(v, l);  // the second operand where either is NaN: NaN never taken
    h = _mm512_max_ps(v, h);
  }
  if (j < n) {
    const __mmask16 m = static_cast<__mmask16>((1u << (n - j)) - 1u);
    l = _mm512_min_ps(_mm512_mask_loadu_ps(l, m, x + j), l);
    h = _mm512_max_ps(_mm512_mask_loadu_ps(h, m, x + j), h);
  }
  *lo = _mm512_reduce_min_ps(l);
  *hi = _mm512_reduce_max_ps(h);
}

void range(const float* x, int64_t n, float* lo, float* hi) { widen_range(x, n, lo, hi); }

// The codes where zf is a whole number in [0, 255] (every zero point the runtime makes): round_even(x·inv) by
// vcvtps2dq (the default rounding, to nearest even, as the magic-number sum) on x·inv first clamped to
// [−512, 512] (NaN to −512, so its code is 0; whatever lies beyond clamps to 0 or 255 either way), plus z in
// integers, and the clamp to [0, 255] done by the saturating packs that narrow 64 codes at a time. Five
// arithmetic operations a vector where the general form takes seven, and one unmasked store of 64 bytes instead
// of four masked ones of 16 (build/bench/qgemm_bench, quantize_rows_static/256x576, this form off and on in two
// builds alternated three times: 18.8–18.9 -> 9.8–10.1 us).
ADZE_INLINE __m512i whole_zero_codes(__m512 x, __m512 inv, __m512i z) {
  const __m512 t = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(x, inv), _mm512_set1_ps(-512.0f)), _mm512_set1_ps(512.0f));
  return _mm512_add_epi32(_mm512_cvtps_epi32(t), z);
}

// The scalar formula, sixteen at a time (compiled without FMA contraction: the product rounds first); the
// whole-zero-point form where it applies, 64 codes a store and the last 1..63 sixteen at a time (a pixel's 16 or
// 32 channels: one range each in a 1x1 convolution; qgemm_bench quantize_rows_dynamic/1024x32).
// kWhole: the caller knows zf is a whole number in [0, 255] (quantize_rows' zero points).
template <bool kWhole>
ADZE_INLINE void quantize_codes(const float* x, int64_t n, float inv, float zf, uint8_t* q) {
  const __m512 vinv = _mm512_set1_ps(inv), vz = _mm512_set1_ps(zf), magic = _mm512_set1_ps(12582912.0f);
  const __m512 zero = _mm512_setzero_ps(), top = _mm512_set1_ps(255.0f);
  int64_t j = 0;
  if (kWhole || (zf >= 0.0f && zf <= 255.0f && zf == static_cast<float>(static_cast<int>(zf)))) {
    const __m512i z = _mm512_set1_epi32(static_cast<int>(zf));
    // vpacksdw and vpackuswb interleave their operands' 128-bit lanes; this puts the codes back in order.
    const __m512i order = _mm512_setr_epi32(0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15);
    for (; j + 64 <= n; j += 64) {
      const __m512i a = whole_zero_codes(_mm512_loadu_ps(x + j), vinv, z),
                    b = whole_zero_codes(_mm512_loadu_ps(x + j + 16), vinv, z),
                    c = whole_zero_codes(_mm512_loadu_ps(x + j + 32), vinv, z),
                    d = whole_zero_codes(_mm512_loadu_ps(x + j + 48), vinv, z);
      const __m512i bytes = _mm512_packus_epi16(_mm512_packs_epi32(a, b), _mm512_packs_epi32(c, d));
      _mm512_storeu_si512(q + j, _mm512_permutexvar_epi32(order, bytes));
    }
    for (; j < n; j += 16) {  // clamped to [0, 255] by vpmaxsd and the unsigned saturation of vpmovusdb
      const __mmask16 m = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - j)) - 1u);
      const __m512i c = whole_zero_codes(_mm512_maskz_loadu_ps(m, x + j), vinv, z);
      _mm_mask_storeu_epi8(q + j, m, _mm512_cvtusepi32_epi8(_mm512_max_epi32(c, _mm512_setzero_si512())));
    }
    return;
  }
  for (; j < n; j += 16) {
    const __mmask16 m = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - j)) - 1u);
    const __m512 x16 = _mm512_maskz_loadu_ps(m, x + j);
    __m512 v = _mm512_add_ps(vz, _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(x16, vinv), magic), magic));
    v = _mm512_min_ps(_mm512_max_ps(v, zero), top);  // max_ps(NaN, 0) is 0
    _mm_mask_storeu_epi8(q + j, m, _mm512_cvtepi32_epi8(_mm512_cvttps_epi32(v)));
  }
}

void quantize(const float* x, int64_t n, float inv, float zf, uint8_t* q) { quantize_codes<false>(x, n, inv, zf, q); }

// Each row's own range, 16 rows at a time: their minima and maxima, then range_scale's arithmetic on the 16 in
// lanes (the same operations in the same order: the same bits as qgemm.cc's range_scale), then the codes. Row
// by row, each row's two divisions and its branches waited on the row's range, and the row's codes on them
// (qgemm_bench quantize_rows_dynamic/1024x32).
void quantize_rows(const float* x, int64_t m, int64_t k, int64_t x_stride, int64_t q_stride, uint8_t* q, float* scale,
                   int32_t* zero) {
  alignas(64) float lo[16], hi[16], inv[16];
  alignas(64) int32_t zs[16];
  const __m512 one = _mm512_set1_ps(1.0f), magic = _mm512_set1_ps(12582912.0f);
  for (int64_t r0 = 0; r0 < m; r0 += 16) {
    const int64_t rows = m - r0 < 16 ? m - r0 : 16;
    for (int64_t i = 0; i < rows; ++i) {
      lo[i] = hi[i] = 0.0f;
      widen_range(x + (r0 + i) * x_stride, k, &lo[i], &hi[i]);
    }
    const __mmask16 live = static_cast<__mmask16>((1u << rows) - 1u);
    const __m512 l = _mm512_maskz_load_ps(live, lo), h = _mm512_maskz_load_ps(live, hi);
    // s = hi > lo ? (hi − lo) / 255 : 1;  v = −lo / s;  t = v > −1 ? (v < 256 ? v : 256) : −1 (NaN: −1)
    const __m512 s =
        _mm512_mask_div_ps(one, _mm512_cmp_ps_mask(h, l, _CMP_GT_OQ), _mm512_sub_ps(h, l), _mm512_set1_ps(255.0f));
    const __m512 neg = _mm512_castsi512_ps(_mm512_xor_si512(_mm512_castps_si512(l), _mm512_set1_epi32(INT32_MIN)));
    const __m512 v = _mm512_div_ps(neg, s);
    __m512 t =
        _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_set1_ps(256.0f), _CMP_LT_OQ), _mm512_set1_ps(256.0f), v);
    t = _mm512_mask_blend_ps(_mm512_cmp_ps_mask(v, _mm512_set1_ps(-1.0f), _CMP_GT_OQ), _mm512_set1_ps(-1.0f), t);
    const __m512 r = _mm512_sub_ps(_mm512_add_ps(t, magic), magic);  // whole and finite: min and max are exact
    const __m512i zi =
        _mm512_cvttps_epi32(_mm512_min_ps(_mm512_max_ps(r, _mm512_setzero_ps()), _mm512_set1_ps(255.0f)));
    _mm512_mask_storeu_ps(scale + r0, live, s);
    _mm512_mask_storeu_epi32(zero + r0, live, zi);
    _mm512_store_ps(inv, _mm512_div_ps(one, s));
    _mm512_store_si512(zs, zi);
    for (int64_t i = 0; i < rows; ++i) {
      uint8_t* const row = q + (r0 + i) * q_stride;
      quantize_codes<true>(x + (r0 + i) * x_stride, k, inv[i], static_cast<float>(zs[i]), row);
      for (int64_t j = k; j < q_stride; j += 64) {  // the padding: zero
        const int64_t c = q_stride - j;
        _mm512_mask_storeu_epi8(row + j, c >= 64 ? ~uint64_t{0} : (~uint64_t{0}) >> (64 - c), _mm512_setzero_si512());
      }
    }
  }
}

void fake_quantize(const float* x, int64_t n, float inv, float zf, float scale, float* y) {
  const __m512 vinv = _mm512_set1_ps(inv), vz = _mm512_set1_ps(zf), magic = _mm512_set1_ps(12582912.0f);
  const __m512 zero = _mm512_setzero_ps(), top = _mm512_set1_ps(255.0f), vs = _mm512_set1_ps(scale);
  for (int64_t j = 0; j < n; j += 16) {
    const __mmask16 m = n - j >= 16 ? static_cast<__mmask16>(0xFFFF) : static_cast<__mmask16>((1u << (n - j)) - 1u);
    const __m512 x16 = _mm512_maskz_loadu_ps(m, x + j);
    __m512 v = _mm512_add_ps(vz, _mm512_sub_ps(_mm512_add_ps(_mm512_mul_ps(x16, vinv), magic), magic));
    v = _mm512_min_ps(_mm512_max_ps(v, zero), top);  // max_ps(NaN, 0) is 0
    _mm512_mask_storeu_ps(y + j, m, _mm512_mul_ps(_mm512_sub_ps(v, vz), vs));
  }
}

#undef ADZE_INLINE

}  // namespace

const RowKernels& avx512_row_kernels() {
  static const RowKernels k{unpack,       expand,     dot,           dot4,           row_dot,
                            unpack_pairs, pairs_dot4, gemm_panel,    gemm_panel_out, gemv_panels_out,
                            range,        quantize,   quantize_rows, fake_quantize,  kPanelRows - 1};
  return k;
}

}  // namespace runtime
}  // namespace adze
