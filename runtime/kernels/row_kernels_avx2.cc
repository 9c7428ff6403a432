// Row kernels for AVX2. Activations are unsigned and weights signed, so vpmaddubsw multiplies them directly;
// with every |w| ≤ 64 no pair sum can saturate (255·64·2 < 2^15), and wider weights go through 16-bit
// vpmaddwd instead (the ranges ggml and XNNPACK keep for the same reason). kPairs rows gather the activations
// of 32 values with two lane-local vpshufb and a blend from the pairs order (row_kernels.h). Many activation rows
// run on panels (gemm_panel, gemm_panel_out: vpmaddubsw with the panel's bytes; below). Compiled with -mavx2
// -mfma; nothing here may be shared with other translation units (row_kernels.h).
#include <immintrin.h>

#include "runtime/kernels/row_kernels.h"

namespace adze {
namespace runtime {
namespace {

struct ExpandTable {
  // For a mask byte: the pshufb control that puts kept byte r (r-th set bit) at its bit's position, 0x80 (zero)
  // at the others.
  alignas(16) uint8_t control[256][8];
  ExpandTable() {
    for (int m = 0; m < 256; ++m) {
      int r = 0;
      for (int b = 0; b < 8; ++b) control[m][b] = (m >> b) & 1 ? static_cast<uint8_t>(r++) : 0x80;
    }
  }
};

const ExpandTable& expand_table() {
  static const ExpandTable table;
  return table;
}

inline int32_t hsum(__m256i v) {
  __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
  s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
  return _mm_cvtsi128_si32(s);
}

#define ADZE_INLINE inline __attribute__((always_inline))

ADZE_INLINE __m256i load(const void* p) { return _mm256_loadu_si256(static_cast<const __m256i*>(p)); }

// The 64 values of the chunk at p, minus offset, as signed bytes: *lo values 0..31, *hi values 32..63.
ADZE_INLINE void chunk_values(const uint8_t* p, int bits, __m256i off, __m256i* lo_out, __m256i* hi_out) {
  const __m256i low4 = _mm256_set1_epi8(0x0F), low2 = _mm256_set1_epi8(0x03), one = _mm256_set1_epi8(1);
  __m256i lo = _mm256_setzero_si256(), hi = _mm256_setzero_si256();
  int shift = 0;
  if (bits & 8) {
    lo = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    hi = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p + 32));
    p += 64;
    shift = 8;
  }
  if (bits & 4) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(p));
    lo = _mm256_or_si256(lo, _mm256_and_si256(v, low4));
    hi = _mm256_or_si256(hi, _mm256_and_si256(_mm256_srli_epi16(v, 4), low4));
    p += 32;
    shift = 4;
  }
  if (bits & 2) {
    const __m128i v = _mm_loadu_si128(reinterpret_cast<const __m128i*>(p));
    const __m256i a = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 2), v), low2);
    const __m256i b = _mm256_and_si256(_mm256_set_m128i(_mm_srli_epi16(v, 6), _mm_srli_epi16(v, 4)), low2);
    const __m128i s = _mm_cvtsi32_si128(shift);
    lo = _mm256_or_si256(lo, _mm256_sll_epi16(a, s));
    hi = _mm256_or_si256(hi, _mm256_sll_epi16(b, s));
    p += 16;
    shift += 2;
  }
  if (bits & 1) {
    const __m256i spread = _mm256_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, 1, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2, 2, 2, 2, 2, 3,
                                            3, 3, 3, 3, 3, 3, 3);
    const __m256i select = _mm256_set1_epi64x(static_cast<long long>(0x8040201008040201ULL));
    int32_t words[2];
    __builtin_memcpy(words, p, 8);
    const __m128i s = _mm_cvtsi32_si128(shift);
    for (int h = 0; h < 2; ++h) {
      const __m256i v = _mm256_shuffle_epi8(_mm256_set1_epi32(words[h]), spread);
      const __m256i bit = _mm256_and_si256(_mm256_cmpeq_epi8(_mm256_and_si256(v, select), select), one);
      if (h == 0)
        lo = _mm256_or_si256(lo, _mm256_sll_epi16(bit, s));
      else
        hi = _mm256_or_si256(hi, _mm256_sll_epi16(bit, s));
    }
  }
  *lo_out = _mm256_sub_epi8(lo, off);
  *hi_out = _mm256_sub_epi8(hi, off);
}

// The gather controls (row_kernels.h) of a kPairs chunk's values 32h..32h+31, from its position plane at p: a
// broadcast 2-bit plane holds value 16l + i in bits [2l, 2l+2) of byte i.
ADZE_INLINE __m256i pair_controls(const uint8_t* p, int h) {
  const __m256i all = _mm256_broadcastsi128_si256(_mm_loadu_si128(reinterpret_cast<const __m128i*>(p)));
  const __m256i fields = _mm256_srlv_epi64(all, _mm256_set_epi64x(4 * h + 2, 4 * h + 2, 4 * h, 4 * h));
  return _mm256_or_si256(_mm256_and_si256(fields, _mm256_set1_epi8(0x03)),
                         _mm256_set1_epi64x(0x0C0C080804040000LL));  // + 4·⌊(i mod 8)/2⌋
}

// The activations of 32 kPairs values (32h..32h+31 of a chunk) from the pairs order: `even` and `odd` are the
// 32-byte halves h of the chunk's two 64-byte parts; value 16l + i (of the 32) reads lane l of the first for
// i < 8, of the second for i ≥ 8.
ADZE_INLINE __m256i pair_activations(__m256i even, __m256i odd, __m256i g) {
  return _mm256_blend_epi32(_mm256_shuffle_epi8(even, g), _mm256_shuffle_epi8(odd, g), 0xCC);
}

void unpack(const uint8_t* planes, int bits, int64_t chunks, int32_t offset, int8_t* out) {
  const __m256i off = _mm256_set1_epi8(static_cast<char>(offset));
  for (int64_t c = 0; c < chunks; ++c, planes += 8 * bits) {
    __m256i lo, hi;
    chunk_values(planes, bits, off, &lo, &hi);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c * 64), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(out + c * 64 + 32), hi);
  }
}

void expand(const int8_t* kept, const uint64_t* mask, int64_t words, int8_t* dense) {
  const ExpandTable& t = expand_table();
  for (int64_t w = 0; w < words; ++w) {
    const uint64_t m = mask[w];
    for (int h = 0; h < 4; ++h) {
      const unsigned b0 = static_cast<unsigned>(m >> (16 * h)) & 0xFF,
                     b1 = static_cast<unsigned>(m >> (16 * h + 8)) & 0xFF;
      const int n0 = __builtin_popcount(b0);
      __m128i control = _mm_unpacklo_epi64(_mm_loadl_epi64(reinterpret_cast<const __m128i*>(t.control[b0])),
                                           _mm_loadl_epi64(reinterpret_cast<const __m128i*>(t.control[b1])));
      control =
          _mm_add_epi8(control, _mm_setr_epi8(0, 0, 0, 0, 0, 0, 0, 0, static_cast<char>(n0), static_cast<char>(n0),
                                              static_cast<char>(n0), static_cast<char>(n0), static_cast<char>(n0),
                                              static_cast<char>(n0), static_cast<char>(n0), static_cast<char>(n0)));
      const __m128i src = _mm_loadu_si128(reinterpret_cast<const __m128i*>(kept));
      _mm_storeu_si128(reinterpret_cast<__m128i*>(dense + w * 64 + 16 * h), _mm_shuffle_epi8(src, control));
      kept += n0 + __builtin_popcount(b1);
    }
  }
}

// One 32-byte step of Σ x·w into acc (int32 lanes).
inline __m256i step(__m256i acc, __m256i x, __m256i w, bool small) {
  if (small) return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(x, w), _mm256_set1_epi16(1)));
  const __m256i xl = _mm256_cvtepu8_epi16(_mm256_castsi256_si128(x)),
                xh = _mm256_cvtepu8_epi16(_mm256_extracti128_si256(x, 1));
  const __m256i wl = _mm256_cvtepi8_epi16(_mm256_castsi256_si128(w)),
                wh = _mm256_cvtepi8_epi16(_mm256_extracti128_si256(w, 1));
  return _mm256_add_epi32(acc, _mm256_add_epi32(_mm256_madd_epi16(xl, wl), _mm256_madd_epi16(xh, wh)));
}

int32_t dot(const uint8_t* x, const int8_t* w, int64_t n, bool small) {
  __m256i acc = _mm256_setzero_si256();
  for (int64_t i = 0; i < n; i += 32)
    acc = step(acc, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i)),
               _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)), small);
  return hsum(acc);
}

void dot4(const uint8_t* x, const int8_t* w, int64_t stride, int64_t n, bool small, int32_t* out) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i < n; i += 32) {
    const __m256i v = _mm256_loadu_si256(reinterpret_cast<const __m256i*>(x + i));
    a0 = step(a0, v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + i)), small);
    a1 = step(a1, v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + stride + i)), small);
    a2 = step(a2, v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 2 * stride + i)), small);
    a3 = step(a3, v, _mm256_loadu_si256(reinterpret_cast<const __m256i*>(w + 3 * stride + i)), small);
  }
  out[0] = hsum(a0);
  out[1] = hsum(a1);
  out[2] = hsum(a2);
  out[3] = hsum(a3);
}

// One chunk of row_dot: two chains of acc plus its values times their activations.
ADZE_INLINE void row_chunk(__m256i* a0, __m256i* a1, const uint8_t* p, int bits, __m256i off, bool pairs,
                           const uint8_t* x, bool small) {
  __m256i lo, hi;
  chunk_values(p, bits, off, &lo, &hi);
  __m256i xlo, xhi;
  if (pairs) {
    xlo = pair_activations(load(x), load(x + 64), pair_controls(p + 8 * bits, 0));
    xhi = pair_activations(load(x + 32), load(x + 96), pair_controls(p + 8 * bits, 1));
  } else {
    xlo = load(x);
    xhi = load(x + 32);
  }
  *a0 = step(*a0, xlo, lo, small);
  *a1 = step(*a1, xhi, hi, small);
}

ADZE_INLINE void row_dot_as(const uint8_t* planes, int bits, int32_t offset, bool pairs, const uint8_t* x,
                            int64_t group_chunks, int64_t groups, bool small, int32_t* dots) {
  const __m256i off = _mm256_set1_epi8(static_cast<char>(offset));
  const int64_t chunk_bytes = 8 * bits + (pairs ? 16 : 0), x_step = pairs ? 128 : 64;
  for (int64_t g = 0; g < groups; ++g) {
    __m256i a0 = _mm256_setzero_si256(), a1 = a0;
    for (int64_t c = 0; c < group_chunks; ++c, planes += chunk_bytes, x += x_step)
      row_chunk(&a0, &a1, planes, bits, off, pairs, x, small);
    dots[g] = hsum(_mm256_add_epi32(a0, a1));
  }
}

// Four rows of one group each (a row with one scale), their chunks interleaved (eight chains): a short row (a
// low-rank factor's K = r) is then not one dependent chain after another.
ADZE_INLINE void four_rows_dot(const uint8_t* p, int64_t row_bytes, int bits, const int32_t* offset, bool small,
                               const uint8_t* x, int64_t group_chunks, int32_t* dots) {
  const int64_t chunk_bytes = 8 * bits;
  __m256i off[4], a[4][2];
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) {
    off[i] = _mm256_set1_epi8(static_cast<char>(offset[i]));
    a[i][0] = a[i][1] = _mm256_setzero_si256();
  }
  for (int64_t c = 0; c < group_chunks; ++c, p += chunk_bytes, x += 64)
#pragma GCC unroll 4
    for (int i = 0; i < 4; ++i) row_chunk(&a[i][0], &a[i][1], p + i * row_bytes, bits, off[i], false, x, small);
#pragma GCC unroll 4
  for (int i = 0; i < 4; ++i) dots[i] = hsum(_mm256_add_epi32(a[i][0], a[i][1]));
}

// M (2..4) activation rows (x_stride apart) against one packed row: each chunk's values and gather controls
// unpacked once for all of them, two chains per row.
template <int M>
ADZE_INLINE void row_dot_rows_as(const uint8_t* planes, int bits, int32_t offset, bool pairs, const uint8_t* x,
                                 int64_t x_stride, int64_t group_chunks, int64_t groups, bool small, int32_t* dots,
                                 int64_t dots_stride) {
  const __m256i off = _mm256_set1_epi8(static_cast<char>(offset));
  const int64_t chunk_bytes = 8 * bits + (pairs ? 16 : 0), x_step = pairs ? 128 : 64;
  for (int64_t g = 0; g < groups; ++g) {
    __m256i a[M][2];
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) a[i][0] = a[i][1] = _mm256_setzero_si256();
    for (int64_t c = 0; c < group_chunks; ++c, planes += chunk_bytes, x += x_step) {
      __m256i lo, hi;
      chunk_values(planes, bits, off, &lo, &hi);
      if (pairs) {
        const __m256i c0 = pair_controls(planes + 8 * bits, 0), c1 = pair_controls(planes + 8 * bits, 1);
#pragma GCC unroll 4
        for (int i = 0; i < M; ++i) {
          const uint8_t* xi = x + i * x_stride;
          a[i][0] = step(a[i][0], pair_activations(load(xi), load(xi + 64), c0), lo, small);
          a[i][1] = step(a[i][1], pair_activations(load(xi + 32), load(xi + 96), c1), hi, small);
        }
      } else {
#pragma GCC unroll 4
        for (int i = 0; i < M; ++i) {
          a[i][0] = step(a[i][0], load(x + i * x_stride), lo, small);
          a[i][1] = step(a[i][1], load(x + i * x_stride + 32), hi, small);
        }
      }
    }
#pragma GCC unroll 4
    for (int i = 0; i < M; ++i) dots[i * dots_stride + g] = hsum(_mm256_add_epi32(a[i][0], a[i][1]));
  }
}

template <int M>
void rows_dot(const uint8_t* planes, int64_t row_bytes, int64_t rows, int bits, const int32_t* offset, bool pairs,
              const uint8_t* x, int64_t x_stride, int64_t group_chunks, int64_t groups, bool small, int32_t* dots,
              int64_t dots_stride) {
  for (int64_t r = 0; r < rows; ++r, planes += row_bytes, dots += groups) {
    // Constant arguments give the common case its own loops, as in one_x_row_dot.
    if (bits == 4 && small && pairs)
      row_dot_rows_as<M>(planes, 4, offset[r], true, x, x_stride, group_chunks, groups, true, dots, dots_stride);
    else if (bits == 4 && small)
      row_dot_rows_as<M>(planes, 4, offset[r], false, x, x_stride, group_chunks, groups, true, dots, dots_stride);
    else if (pairs)
      row_dot_rows_as<M>(planes, bits, offset[r], true, x, x_stride, group_chunks, groups, small, dots, dots_stride);
    else
      row_dot_rows_as<M>(planes, bits, offset[r], false, x, x_stride, group_chunks, groups, small, dots, dots_stride);
  }
}

// One activation row of row_dot.
void one_x_row_dot(const uint8_t* planes, int64_t row_bytes, int64_t rows, int bits, const int32_t* offset, bool pairs,
                   const uint8_t* x, int64_t group_chunks, int64_t groups, bool small, int32_t* dots) {
  int64_t first = 0;
  if (groups == 1 && !pairs)
    for (; first + 4 <= rows; first += 4) {
      const uint8_t* p = planes + first * row_bytes;
      if (bits == 4 && small)
        four_rows_dot(p, row_bytes, 4, offset + first, true, x, group_chunks, dots + first);
      else
        four_rows_dot(p, row_bytes, bits, offset + first, small, x, group_chunks, dots + first);
    }
  planes += first * row_bytes;
  dots += first * groups;
  for (int64_t r = first; r < rows; ++r, planes += row_bytes, dots += groups) {
    // Constant arguments give the common case its own loops, free of the other planes' and widths' branches.
    if (bits == 4 && small && pairs)
      row_dot_as(planes, 4, offset[r], true, x, group_chunks, groups, true, dots);
    else if (bits == 4 && small)
      row_dot_as(planes, 4, offset[r], false, x, group_chunks, groups, true, dots);
    else if (pairs)
      row_dot_as(planes, bits, offset[r], true, x, group_chunks, groups, small, dots);
    else
      row_dot_as(planes, bits, offset[r], false, x, group_chunks, groups, small, dots);
  }
}

void row_dot(const uint8_t* planes, int64_t row_bytes, int64_t rows, int bits, const int32_t* offset, bool pairs,
             const uint8_t* x, int64_t x_rows, int64_t x_stride, int64_t group_chunks, int64_t groups, bool small,
             int32_t* dots, int64_t dots_stride) {
  for (int64_t i = 0; i < x_rows;) {
    const uint8_t* xi = x + i * x_stride;
    int32_t* const di = dots + i * dots_stride;
    switch (x_rows - i < 4 ? x_rows - i : 4) {
      case 4:
        rows_dot<4>(planes, row_bytes, rows, bits, offset, pairs, xi, x_stride, group_chunks, groups, small, di,
                    dots_stride);
        i += 4;
        break;
      case 3:
        rows_dot<3>(planes, row_bytes, rows, bits, offset, pairs, xi, x_stride, group_chunks, groups, small, di,
                    dots_stride);
        i += 3;
        break;
      case 2:
        rows_dot<2>(planes, row_bytes, rows, bits, offset, pairs, xi, x_stride, group_chunks, groups, small, di,
                    dots_stride);
        i += 2;
        break;
      default:
        one_x_row_dot(planes, row_bytes, rows, bits, offset, pairs, xi, group_chunks, groups, small, di);
        i += 1;
    }
  }
}

void unpack_pairs(const uint8_t* planes, int bits, int64_t chunks, int32_t offset, int8_t* w, uint8_t* g) {
  const __m256i off = _mm256_set1_epi8(static_cast<char>(offset));
  for (int64_t c = 0; c < chunks; ++c, planes += 8 * bits + 16) {
    __m256i lo, hi;
    chunk_values(planes, bits, off, &lo, &hi);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(w + 64 * c), lo);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(w + 64 * c + 32), hi);
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(g + 64 * c), pair_controls(planes + 8 * bits, 0));
    _mm256_storeu_si256(reinterpret_cast<__m256i*>(g + 64 * c + 32), pair_controls(planes + 8 * bits, 1));
  }
}

void pairs_dot4(const uint8_t* x, const int8_t* w, const uint8_t* g, int64_t stride, int64_t chunks, bool small,
                int32_t* out) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t i = 0; i < 64 * chunks; i += 32) {  // 32 values: half h = i/32 mod 2 of chunk i/64
    const uint8_t* xi = x + 2 * (i & ~int64_t{63}) + (i & 32);
    const __m256i even = load(xi), odd = load(xi + 64);
    a0 = step(a0, pair_activations(even, odd, load(g + i)), load(w + i), small);
    a1 = step(a1, pair_activations(even, odd, load(g + stride + i)), load(w + stride + i), small);
    a2 = step(a2, pair_activations(even, odd, load(g + 2 * stride + i)), load(w + 2 * stride + i), small);
    a3 = step(a3, pair_activations(even, odd, load(g + 3 * stride + i)), load(w + 3 * stride + i), small);
  }
  out[0] = hsum(a0);
  out[1] = hsum(a1);
  out[2] = hsum(a2);
  out[3] = hsum(a3);
}

// Four minima and maxima side by side over long inputs, as the AVX-512 unit's range.
void range(const float* x, int64_t n, float* lo, float* hi) {
  __m256 l = _mm256_set1_ps(*lo), h = _mm256_set1_ps(*hi);
  int64_t j = 0;
  if (n >= 32) {
    __m256 l1 = l, l2 = l, l3 = l, h1 = h, h2 = h, h3 = h;
    for (; j + 32 <= n; j += 32) {
      const __m256 v0 = _mm256_loadu_ps(x + j), v1 = _mm256_loadu_ps(x + j + 8);
      const __m256 v2 = _mm256_loadu_ps(x + j + 16), v3 = _mm256_loadu_ps(x + j + 24);
      l = _mm256_min_ps(v0, l), h = _mm256_max_ps(v0, h);
      l1 = _mm256_min_ps(v1, l1), h1 = _mm256_max_ps(v1, h1);
      l2 = _mm256_min_ps(v2, l2), h2 = _mm256_max_ps(v2, h2);
      l3 = _mm256_min_ps(v3, l3), h3 = _mm256_max_ps(v3, h3);
    }
    l = _mm256_min_ps(_mm256_min_ps(l, l1), _mm256_min_ps(l2, l3));
    h = _mm256_max_ps(_mm256_max_ps(h, h1), _mm256_max_ps(h2, h3));
  }
  for (; j + 8 <= n; j += 8) {
    const __m256 v = _mm256_loadu_ps(x + j);
    l = _mm256_min_ps(v, l);  // the second operand where either is NaN: NaN never taken
    h = _mm256_max_ps(v, h);
  }
  float ls[8], hs[8];
  _mm256_storeu_ps(ls, l);
  _mm256_storeu_ps(hs, h);
  float lo_all = *lo, hi_all = *hi;
  for (int i = 0; i < 8; ++i) {
    lo_all = ls[i] < lo_all ? ls[i] : lo_all;
    hi_all = hs[i] > hi_all ? hs[i] : hi_all;
  }
  for (; j < n; ++j) {
    lo_all = x[j] < lo_all ? x[j] : lo_all;
    hi_all = x[j] > hi_all ? x[j] : hi_all;
  }
  *lo = lo_all;
  *hi = hi_all;
}

// The scalar formula, eight at a time (compiled without FMA contraction: the product rounds first).
void quantize(const float* x, int64_t n, float inv, float zf, uint8_t* q) {
  const __m256 vinv = _mm256_set1_ps(inv), vz = _mm256_set1_ps(zf), magic = _mm256_set1_ps(12582912.0f);
  const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(255.0f);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 v =
        _mm256_add_ps(vz, _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j), vinv), magic), magic));
    v = _mm256_min_ps(_mm256_max_ps(v, zero), top);  // max_ps(NaN, 0) is 0
    const __m256i i32 = _mm256_cvttps_epi32(v);
    const __m128i i16 = _mm_packs_epi32(_mm256_castsi256_si128(i32), _mm256_extracti128_si256(i32, 1));
    _mm_storel_epi64(reinterpret_cast<__m128i*>(q + j), _mm_packus_epi16(i16, i16));
  }
  for (; j < n; ++j) {
    float v = zf + ((x[j] * inv + 12582912.0f) - 12582912.0f);
    v = v > 0.0f ? v : 0.0f;
    v = v < 255.0f ? v : 255.0f;
    q[j] = static_cast<uint8_t>(static_cast<int32_t>(v));
  }
}

// The GEMM microkernel on panels (row_kernels.h): per step of 4 reduction positions, the panel's 128 bytes are
// four vectors of 8 channels x 4 bytes; each row's 4 activation bytes broadcast meet all four through vpmaddubsw,
// whose pairs vpmaddwd adds into int32 lanes, one per channel. Every |w| ≤ 64 (`small`, as QWeightLayout::small
// says): no pair saturates, and two rows share each step (8 accumulators, every weight vector loaded once for
// both). Wider weights: each activation byte as 16·high + low nibble, two vpmaddubsw whose pairs cannot saturate
// (15·128·2), the high one's pairs added by vpmaddwd with 16s (exact in int32), one row at a time.

// One weight vector (8 channels x 4 positions) times a row's broadcast activations, into an accumulator.
ADZE_INLINE __m256i panel_dot(__m256i acc, __m256i b, __m256i h, __m256i w, bool small) {
  const __m256i d = _mm256_madd_epi16(_mm256_maddubs_epi16(b, w), _mm256_set1_epi16(1));
  if (small) return _mm256_add_epi32(acc, d);
  return _mm256_add_epi32(acc,
                          _mm256_add_epi32(d, _mm256_madd_epi16(_mm256_maddubs_epi16(h, w), _mm256_set1_epi16(16))));
}

// A row's 4 activation bytes at step s, broadcast: whole (small weights), or as low nibbles (b) and high (h).
ADZE_INLINE void panel_broadcast(const uint8_t* x, int64_t s, bool small, __m256i* b, __m256i* h) {
  int32_t four;
  __builtin_memcpy(&four, x + 4 * s, 4);
  *b = *h = _mm256_set1_epi32(four);
  if (small) return;
  const __m256i nibble = _mm256_set1_epi8(0x0F);
  *h = _mm256_and_si256(_mm256_srli_epi16(*b, 4), nibble);
  *b = _mm256_and_si256(*b, nibble);
}

// Two rows (x0, x1) of small weights through `steps` steps of a panel: eight named accumulators in a function
// that is not inlined, every weight vector loaded once for both rows (held in an array, GCC copied the
// accumulators to other registers on every step and spilled one, as the AVX-512 unit's panel8_steps says).
__attribute__((noinline)) void panel2_steps(const uint8_t* x0, const uint8_t* x1, const int8_t* panel, int64_t steps,
                                            __m256i (&acc)[2][4]) {
  __m256i a00 = _mm256_setzero_si256(), a01 = a00, a02 = a00, a03 = a00, a10 = a00, a11 = a00, a12 = a00, a13 = a00;
  for (int64_t s = 0; s < steps; ++s, panel += 4 * kPanelChannels) {
    __m256i b0, b1, h;
    panel_broadcast(x0, s, true, &b0, &h);
    panel_broadcast(x1, s, true, &b1, &h);
    __m256i w = _mm256_load_si256(reinterpret_cast<const __m256i*>(panel));
    a00 = panel_dot(a00, b0, h, w, true), a10 = panel_dot(a10, b1, h, w, true);
    w = _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + 32));
    a01 = panel_dot(a01, b0, h, w, true), a11 = panel_dot(a11, b1, h, w, true);
    w = _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + 64));
    a02 = panel_dot(a02, b0, h, w, true), a12 = panel_dot(a12, b1, h, w, true);
    w = _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + 96));
    a03 = panel_dot(a03, b0, h, w, true), a13 = panel_dot(a13, b1, h, w, true);
  }
  acc[0][0] = a00, acc[0][1] = a01, acc[0][2] = a02, acc[0][3] = a03;
  acc[1][0] = a10, acc[1][1] = a11, acc[1][2] = a12, acc[1][3] = a13;
}

// One row through `steps` steps of a panel (any weights).
template <bool kSmall>
__attribute__((noinline)) void panel1_steps(const uint8_t* x, const int8_t* panel, int64_t steps,
                                            __m256i (&acc)[1][4]) {
  __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;
  for (int64_t s = 0; s < steps; ++s, panel += 4 * kPanelChannels) {
    __m256i b, h;
    panel_broadcast(x, s, kSmall, &b, &h);
    a0 = panel_dot(a0, b, h, _mm256_load_si256(reinterpret_cast<const __m256i*>(panel)), kSmall);
    a1 = panel_dot(a1, b, h, _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + 32)), kSmall);
    a2 = panel_dot(a2, b, h, _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + 64)), kSmall);
    a3 = panel_dot(a3, b, h, _mm256_load_si256(reinterpret_cast<const __m256i*>(panel + 96)), kSmall);
  }
  acc[0][0] = a0, acc[0][1] = a1, acc[0][2] = a2, acc[0][3] = a3;
}

// The lanes of channels [c0, c0 + 8) of a panel that exist (`channels` of them), as a vpmaskmov mask.
ADZE_INLINE __m256i channel_mask(int64_t c0, int64_t channels) {
  const __m256i lane = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
  return _mm256_cmpgt_epi32(_mm256_set1_epi32(static_cast<int32_t>(channels - c0)), lane);
}

// PanelEpilogue's arithmetic (row_kernels.h) on R rows' accumulators, 8 channels at a time, rounded in the same
// order as the scalar and AVX-512 epilogues (no FMA); the clamp keeps a NaN.
template <int R>
ADZE_INLINE void panel_epilogue(const __m256i (&acc)[R][4], const PanelEpilogue& e, int64_t r0) {
  const __m256 lo = _mm256_set1_ps(e.lo), hi = _mm256_set1_ps(e.hi);
  for (int v = 0; v < 4; ++v) {
    const int64_t c0 = 8 * v;
    if (c0 >= e.channels) break;
    const __m256i m = channel_mask(c0, e.channels);
    const __m256 sc = _mm256_maskload_ps(e.w_scale + c0, m);
    const __m256i ws = _mm256_maskload_epi32(e.wsum + c0, m);
    const __m256 bias = e.bias ? _mm256_maskload_ps(e.bias + c0, m) : _mm256_setzero_ps();
#pragma GCC unroll 2
    for (int r = 0; r < R; ++r) {
      const __m256i d = _mm256_sub_epi32(acc[r][v], _mm256_mullo_epi32(_mm256_set1_epi32(e.a_zero[r0 + r]), ws));
      __m256 y = _mm256_add_ps(
          _mm256_mul_ps(_mm256_set1_ps(e.a_scale[r0 + r]), _mm256_mul_ps(sc, _mm256_cvtepi32_ps(d))), bias);
      y = _mm256_blendv_ps(y, lo, _mm256_cmp_ps(y, lo, _CMP_LT_OQ));
      y = _mm256_blendv_ps(y, hi, _mm256_cmp_ps(y, hi, _CMP_GT_OQ));
      _mm256_maskstore_ps(e.y + (r0 + r) * e.y_stride + c0, m, y);
    }
  }
}

// Rows [r0, r0 + R) of a tile (R = 2: small weights only) against one group of a panel: the products, then the
// epilogue (`e`) or the dots.
template <int R, bool kSmall>
ADZE_INLINE void panel_rows(const uint8_t* x, int64_t x_stride, int64_t r0, int64_t at, const int8_t* panel,
                            int64_t steps, const PanelEpilogue* e, int32_t* dots, int64_t dots_stride) {
  __m256i acc[R][4];
  if constexpr (R == 2)
    panel2_steps(x + r0 * x_stride + at, x + (r0 + 1) * x_stride + at, panel, steps, acc);
  else
    panel1_steps<kSmall>(x + r0 * x_stride + at, panel, steps, acc);
  if (e) return panel_epilogue<R>(acc, *e, r0);
  for (int r = 0; r < R; ++r)
    for (int v = 0; v < 4; ++v)
      _mm256_storeu_si256(reinterpret_cast<__m256i*>(dots + (r0 + r) * dots_stride + 8 * v), acc[r][v]);
}

// `rows` rows of a tile, two at a time where the weights are small, one at a time otherwise.
void panel_tile(const uint8_t* x, int64_t x_stride, int64_t rows, int64_t at, const int8_t* panel, int64_t steps,
                bool small, const PanelEpilogue* e, int32_t* dots, int64_t dots_stride) {
  int64_t r = 0;
  if (small) {
    for (; r + 2 <= rows; r += 2) panel_rows<2, true>(x, x_stride, r, at, panel, steps, e, dots, dots_stride);
    if (r < rows) panel_rows<1, true>(x, x_stride, r, at, panel, steps, e, dots, dots_stride);
    return;
  }
  for (; r < rows; ++r) panel_rows<1, false>(x, x_stride, r, at, panel, steps, e, dots, dots_stride);
}

void gemm_panel(const uint8_t* x, int64_t x_stride, int64_t rows, const int8_t* panel, int64_t group_steps,
                int64_t groups, bool small, int32_t* dots) {
  for (int64_t g = 0; g < groups; ++g, panel += group_steps * 4 * kPanelChannels)
    panel_tile(x, x_stride, rows, g * group_steps * 4, panel, group_steps, small, nullptr, dots + g * kPanelChannels,
               groups * kPanelChannels);
}

void gemm_panel_out(const uint8_t* x, int64_t x_stride, int64_t rows, const int8_t* panel, int64_t steps, bool small,
                    const PanelEpilogue& e) {
  panel_tile(x, x_stride, rows, 0, panel, steps, small, &e, nullptr, 0);
}

#undef ADZE_INLINE

// Each row's own range, 8 rows at a time: their minima and maxima, then range_scale's arithmetic on the 8 in
// lanes (the same operations in the same order: the same bits as qgemm.cc's range_scale), then the codes; row by
// row, each row's two divisions waited on its range (as on AVX-512, whose quantize_rows says more).
void quantize_rows(const float* x, int64_t m, int64_t k, int64_t x_stride, int64_t q_stride, uint8_t* q, float* scale,
                   int32_t* zero) {
  alignas(32) float lo[8], hi[8], inv[8], sc[8];
  alignas(32) int32_t zs[8];
  const __m256 one = _mm256_set1_ps(1.0f), magic = _mm256_set1_ps(12582912.0f);
  const __m256 top = _mm256_set1_ps(256.0f), bottom = _mm256_set1_ps(-1.0f);
  for (int64_t r0 = 0; r0 < m; r0 += 8) {
    const int64_t rows = m - r0 < 8 ? m - r0 : 8;
    for (int64_t i = 0; i < 8; ++i) {
      lo[i] = hi[i] = 0.0f;
      if (i < rows) range(x + (r0 + i) * x_stride, k, &lo[i], &hi[i]);
    }
    const __m256 l = _mm256_load_ps(lo), h = _mm256_load_ps(hi);
    // s = hi > lo ? (hi − lo) / 255 : 1;  v = −lo / s;  t = v > −1 ? (v < 256 ? v : 256) : −1 (NaN: −1)
    const __m256 s = _mm256_blendv_ps(one, _mm256_div_ps(_mm256_sub_ps(h, l), _mm256_set1_ps(255.0f)),
                                      _mm256_cmp_ps(h, l, _CMP_GT_OQ));
    const __m256 neg = _mm256_castsi256_ps(_mm256_xor_si256(_mm256_castps_si256(l), _mm256_set1_epi32(INT32_MIN)));
    const __m256 v = _mm256_div_ps(neg, s);
    __m256 t = _mm256_blendv_ps(top, v, _mm256_cmp_ps(v, top, _CMP_LT_OQ));
    t = _mm256_blendv_ps(bottom, t, _mm256_cmp_ps(v, bottom, _CMP_GT_OQ));
    const __m256 r = _mm256_sub_ps(_mm256_add_ps(t, magic), magic);  // whole and finite: min and max are exact
    _mm256_store_si256(
        reinterpret_cast<__m256i*>(zs),
        _mm256_cvttps_epi32(_mm256_min_ps(_mm256_max_ps(r, _mm256_setzero_ps()), _mm256_set1_ps(255.0f))));
    _mm256_store_ps(sc, s);
    _mm256_store_ps(inv, _mm256_div_ps(one, s));
    for (int64_t i = 0; i < rows; ++i) {
      uint8_t* const row = q + (r0 + i) * q_stride;
      quantize(x + (r0 + i) * x_stride, k, inv[i], static_cast<float>(zs[i]), row);
      for (int64_t j = k; j < q_stride; ++j) row[j] = 0;
      scale[r0 + i] = sc[i];
      zero[r0 + i] = zs[i];
    }
  }
}

void fake_quantize(const float* x, int64_t n, float inv, float zf, float scale, float* y) {
  const __m256 vinv = _mm256_set1_ps(inv), vz = _mm256_set1_ps(zf), magic = _mm256_set1_ps(12582912.0f);
  const __m256 zero = _mm256_setzero_ps(), top = _mm256_set1_ps(255.0f), vs = _mm256_set1_ps(scale);
  int64_t j = 0;
  for (; j + 8 <= n; j += 8) {
    __m256 v =
        _mm256_add_ps(vz, _mm256_sub_ps(_mm256_add_ps(_mm256_mul_ps(_mm256_loadu_ps(x + j), vinv), magic), magic));
    v = _mm256_min_ps(_mm256_max_ps(v, zero), top);  // max_ps(NaN, 0) is 0
    _mm256_storeu_ps(y + j, _mm256_mul_ps(_mm256_sub_ps(v, vz), vs));
  }
  for (; j < n; ++j) {
    float v = zf + ((x[j] * inv + 12582912.0f) - 12582912.0f);
    v = v > 0.0f ? v : 0.0f;
    v = v < 255.0f ? v : 255.0f;
    y[j] = (v - zf) * scale;
  }
}

}  // namespace

const RowKernels& avx2_row_kernels() {
  static const RowKernels k{unpack,       expand,     dot,           dot4,           row_dot,
                            unpack_pairs, pairs_dot4, gemm_panel,    gemm_panel_out, nullptr,
                            range,        quantize,   quantize_rows, fake_quantize,  kPanelRows - 1};
  return k;
}

}  // namespace runtime
}  // namespace adze
