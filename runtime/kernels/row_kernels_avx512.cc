// Row kernels for AVX-512 with VNNI and VBMI2: vpdpbusd multiplies unsigned activations by signed weights and
// adds groups of four into int32 lanes without any intermediate that could saturate, and vpexpandb scatters a
// row's kept weights onto the mask in one instruction. kPairs rows gather the activations of their 64 values
// per chunk with two lane-local vpshufb from the pairs order (row_kernels.h); VBMI's vpermi2b would need one,
// but the build and the CPU check stop at VBMI2. Compiled with -mavx512{f,bw,vl,vnni,vbmi2}; nothing here may
// be shared with other translation units (row_kernels.h).
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
    v = _mm512_or_si512(v, _mm512_and_si512(_mm512_srlv_epi64(both, _mm512_set_epi64(4, 4, 4, 4, 0, 0, 0, 0)),
                                            _mm512_set1_epi8(0x0F)));
    p += 32;
    shift = 4;
  }
  if (bits & 2) {
    const __m512i all = _mm512_broadcast_i32x4(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
    const __m512i values = _mm512_and_si512(_mm512_srlv_epi64(all, _mm512_set_epi64(6, 6, 4, 4, 2, 2, 0, 0)),
                                            _mm512_set1_epi8(0x03));
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
    s += hsum256(_mm256_dpbusd_epi32(_mm256_setzero_si256(), _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)),
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

// One chunk of row_dot: acc + its values times their activations.
ADZE_INLINE __m512i row_chunk(__m512i acc, const uint8_t* p, int bits, __m512i off, bool pairs, const uint8_t* x) {
  const __m512i w = chunk_values(p, bits, off);
  const __m512i a = pairs ? pair_activations(_mm512_loadu_si512(x), _mm512_loadu_si512(x + 64),
                                             pair_controls(p + 8 * bits))
                          : _mm512_loadu_si512(x);
  return _mm512_dpbusd_epi32(acc, a, w);
}

ADZE_INLINE void row_dot_as(const uint8_t* planes, int bits, int32_t offset, bool pairs, const uint8_t* x,
                            int64_t group_chunks, int64_t groups, int32_t* dots) {
  const __m512i off = _mm512_set1_epi8(static_cast<char>(offset));
  const int64_t chunk_bytes = 8 * bits + (pairs ? 16 : 0), x_step = pairs ? 128 : 64;
  for (int64_t g = 0; g < groups; ++g) {
    __m512i a0 = _mm512_setzero_si512(), a1 = a0;  // two chains, to overlap vpdpbusd's latency
    int64_t c = 0;
    for (; c + 2 <= group_chunks; c += 2, planes += 2 * chunk_bytes, x += 2 * x_step) {
      a0 = row_chunk(a0, planes, bits, off, pairs, x);
      a1 = row_chunk(a1, planes + chunk_bytes, bits, off, pairs, x + x_step);
    }
    if (c < group_chunks) {
      a0 = row_chunk(a0, planes, bits, off, pairs, x);
      planes += chunk_bytes;
      x += x_step;
    }
    dots[g] = _mm512_reduce_add_epi32(_mm512_add_epi32(a0, a1));
  }
}

void row_dot(const uint8_t* planes, int bits, int32_t offset, bool pairs, const uint8_t* x, int64_t group_chunks,
             int64_t groups, bool, int32_t* dots) {
  // Constant arguments give the common widths their own loops, free of the other planes' branches.
  if (bits == 4 && pairs) return row_dot_as(planes, 4, offset, true, x, group_chunks, groups, dots);
  if (bits == 4) return row_dot_as(planes, 4, offset, false, x, group_chunks, groups, dots);
  if (bits == 8 && pairs) return row_dot_as(planes, 8, offset, true, x, group_chunks, groups, dots);
  if (bits == 8) return row_dot_as(planes, 8, offset, false, x, group_chunks, groups, dots);
  if (pairs) return row_dot_as(planes, bits, offset, true, x, group_chunks, groups, dots);
  row_dot_as(planes, bits, offset, false, x, group_chunks, groups, dots);
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

#undef ADZE_INLINE

}  // namespace

const RowKernels& avx512_row_kernels() {
  static const RowKernels k{unpack, expand, dot, dot4, row_dot, unpack_pairs, pairs_dot4};
  return k;
}

}  // namespace runtime
}  // namespace adze
