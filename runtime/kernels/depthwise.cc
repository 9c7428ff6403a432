// Depthwise convolution (depthwise.h). One output row at a time: the taps that fall inside the image form a
// rectangle (the input position grows with the tap index, so the valid taps of a row or column are one
// contiguous range), computed once per row and once per border column; interior columns have every tap and
// run with no bounds checks at all, several pixels at a time. A generic tile of P pixels × V channel vectors
// keeps its P·V sums in registers (mostly 8 to 16, enough to cover the FMA latency) and loads each tap's weight
// vector once for its P pixels. On AVX-512, rows of a 3×3 kernel with every tap row inside (MobileNet's, nearly
// all its work) take a sweep that holds the 9 weights in registers and loads each input column once for the
// taps that share it: at stride 1 a third of the generic tile's loads, which bound it more than its FMAs do.
// Each pixel's sum starts from the bias and adds the taps in row-major order on every path, so the paths differ
// only in rounding (fused multiply-adds or not).
//
// This file is compiled without ISA flags (runtime/CMakeLists.txt gives them per file, not to this one), so
// the vector paths carry GCC target attributes and use only intrinsics and plain loops: library templates
// would be instantiated without the target and could not be inlined into them. No allocation, no threads: the
// fixed cost of a call is a few dozen instructions per output row.
#include "runtime/kernels/depthwise.h"

#include <immintrin.h>

#include <string>

#include "core/error.h"
#include "runtime/parallel.h"

namespace adze {
namespace runtime {
namespace {

// Multiply-adds from which a call splits its output rows over the threads: a parallel region's start and closing
// barrier cost a few microseconds, about what 2^17 multiply-adds take on one core.
constexpr int64_t kParallelMacs = int64_t{1} << 17;

#define ADZE_AVX2 __attribute__((target("avx2,fma")))
#define ADZE_AVX512 __attribute__((target("avx2,fma,avx512f,avx512bw,avx512vl")))

// What every row of a call shares. Strides are in floats.
struct Geo {
  int64_t c, w_in, ow, kh, kw, sx, px, dx;
  int64_t x_row;         ///< from one tap row to the next (dilation_y input rows)
  int64_t x_tap;         ///< from one tap column to the next (dilation_x pixels)
  int64_t x_px;          ///< from one output pixel's window to the next (stride_x pixels)
  int64_t w_row;         ///< from one tap row's weights to the next (kw taps)
  int64_t ox_lo, ox_hi;  ///< interior columns: every tap column inside the image
  const float* bias;
  float lo, hi;
};

// One output row: its valid tap rows, the input row of the first of them, and where the output goes.
struct Row {
  const float* x;  ///< input row of tap row i0 (of the image, when no tap row is valid)
  const float* w;  ///< weights of tap row i0
  int64_t ni;      ///< valid tap rows
  float* y;        ///< output row
};

// The operands of one pixel (the first of a tile): its first valid tap's input and weight, at channel 0.
struct Taps {
  const float* x;
  const float* w;
  int64_t ni, nj;
};

// Taps t in [*lo, *hi) of k with 0 <= origin + t·dilation < size.
inline void tap_range(int64_t origin, int64_t size, int64_t dilation, int64_t k, int64_t* lo, int64_t* hi) {
  int64_t a = origin >= 0 ? 0 : (-origin + dilation - 1) / dilation;
  int64_t b = origin >= size ? 0 : (size - 1 - origin) / dilation + 1;
  b = b < k ? b : k;
  a = a < b ? a : b;
  *lo = a;
  *hi = b;
}

// The bounds check of a border column (interior columns come out with every tap, at no extra cost).
inline Taps column_taps(const Geo& g, const Row& r, int64_t ox) {
  const int64_t ix0 = ox * g.sx - g.px;
  int64_t j0, j1;
  tap_range(ix0, g.w_in, g.dx, g.kw, &j0, &j1);
  if (j1 == j0) return {r.x, r.w, r.ni, 0};
  return {r.x + (ix0 + j0 * g.dx) * g.c, r.w + j0 * g.c, r.ni, j1 - j0};
}

// The scalar reference, over channels [c0, c1) (also the tail of AVX2's vectors). The output row serves as the
// accumulator, so the channel loops are plain streams the compiler may vectorise with the baseline SSE2.
void row_scalar(const Geo& g, const Row& r, int64_t c0, int64_t c1) {
  for (int64_t ox = 0; ox < g.ow; ++ox) {
    const Taps t = column_taps(g, r, ox);
    float* __restrict y = r.y + ox * g.c;
    for (int64_t ch = c0; ch < c1; ++ch) y[ch] = g.bias ? g.bias[ch] : 0.0f;
    for (int64_t i = 0; i < t.ni; ++i)
      for (int64_t j = 0; j < t.nj; ++j) {
        const float* __restrict x = t.x + i * g.x_row + j * g.x_tap;
        const float* __restrict w = t.w + i * g.w_row + j * g.c;
        for (int64_t ch = c0; ch < c1; ++ch) y[ch] += x[ch] * w[ch];
      }
    for (int64_t ch = c0; ch < c1; ++ch) {
      const float v = y[ch];
      y[ch] = v < g.lo ? g.lo : v > g.hi ? g.hi : v;
    }
  }
}

// --- AVX2: 8 channels a vector; channels past the last whole vector go to row_scalar. ---

// P pixels × V vectors of channels from cb. max(lo, v) and min(hi, ·) return their second operand, v, when v
// is NaN, so NaN passes the clamp as in the scalar v < lo ? lo : v > hi ? hi : v.
template <int P, int V>
ADZE_AVX2 __attribute__((always_inline)) inline void tile_avx2(const Geo& g, const Taps& t, int64_t cb, float* y) {
  __m256 acc[P][V];
#pragma GCC unroll 4
  for (int v = 0; v < V; ++v) {
    const __m256 b = g.bias ? _mm256_loadu_ps(g.bias + cb + 8 * v) : _mm256_setzero_ps();
#pragma GCC unroll 4
    for (int p = 0; p < P; ++p) acc[p][v] = b;
  }
  const int64_t c = g.c, x_tap = g.x_tap, x_px = g.x_px;
  const float* xi = t.x + cb;
  const float* wi = t.w + cb;
  for (int64_t i = 0; i < t.ni; ++i, xi += g.x_row, wi += g.w_row) {
    const float* xp = xi;
    const float* wp = wi;
    for (int64_t j = 0; j < t.nj; ++j, xp += x_tap, wp += c) {
#pragma GCC unroll 4
      for (int v = 0; v < V; ++v) {
        const __m256 wv = _mm256_loadu_ps(wp + 8 * v);
#pragma GCC unroll 4
        for (int p = 0; p < P; ++p) acc[p][v] = _mm256_fmadd_ps(_mm256_loadu_ps(xp + p * x_px + 8 * v), wv, acc[p][v]);
      }
    }
  }
  const __m256 lo = _mm256_set1_ps(g.lo), hi = _mm256_set1_ps(g.hi);
#pragma GCC unroll 4
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 4
    for (int v = 0; v < V; ++v)
      _mm256_storeu_ps(y + p * g.c + cb + 8 * v, _mm256_min_ps(hi, _mm256_max_ps(lo, acc[p][v])));
}

// A run of P pixels over channels [0, c8): 4·P·V sums, the widest V that fits 16 registers.
template <int P>
ADZE_AVX2 __attribute__((always_inline)) inline void pixels_avx2(const Geo& g, const Taps& t, int64_t c8, float* y) {
  constexpr int V = P == 1 ? 4 : 2;
  int64_t cb = 0;
  for (; cb + 8 * V <= c8; cb += 8 * V) tile_avx2<P, V>(g, t, cb, y);
  for (; cb < c8; cb += 8) tile_avx2<P, 1>(g, t, cb, y);
}

ADZE_AVX2 void row_avx2(const Geo& g, const Row& r) {
  constexpr int64_t P = 4;
  const int64_t c8 = g.c / 8 * 8;
  for (int64_t ox = 0; ox < g.ow;) {
    if (ox >= g.ox_lo && ox < g.ox_hi && g.ox_hi - g.ox_lo >= P) {
      // Interior: whole tiles, the last one overlapping its predecessor rather than leaving a tail.
      const int64_t start = ox + P <= g.ox_hi ? ox : g.ox_hi - P;
      pixels_avx2<P>(g, column_taps(g, r, start), c8, r.y + start * g.c);
      ox = start + P;
    } else {
      pixels_avx2<1>(g, column_taps(g, r, ox), c8, r.y + ox * g.c);
      ++ox;
    }
  }
  if (c8 < g.c) row_scalar(g, r, c8, g.c);
}

// --- AVX-512: 16 channels a vector, the last one masked (a masked load costs what a plain one does and does
// not touch the masked-off memory). ---

// GCC 12's own _mm512_min_ps and _mm512_max_ps trip this (a known false positive, as runtime/CMakeLists.txt says).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"

// The mask of the first n lanes (all 16 for n >= 16, none for n <= 0).
ADZE_AVX512 inline __mmask16 lanes(int64_t n) {
  return static_cast<__mmask16>(n >= 16 ? 0xFFFFu : n <= 0 ? 0u : (1u << n) - 1);
}

// P pixels × V vectors of channels from cb, `left` channels remaining from cb (the clamp as tile_avx2's).
template <int P, int V>
ADZE_AVX512 __attribute__((always_inline)) inline void tile_avx512(const Geo& g, const Taps& t, int64_t cb,
                                                                   int64_t left, float* y) {
  __mmask16 m[V];
  __m512 acc[P][V];
#pragma GCC unroll 8
  for (int v = 0; v < V; ++v) {
    m[v] = lanes(left - 16 * v);
    const __m512 b = g.bias ? _mm512_maskz_loadu_ps(m[v], g.bias + cb + 16 * v) : _mm512_setzero_ps();
#pragma GCC unroll 8
    for (int p = 0; p < P; ++p) acc[p][v] = b;
  }
  const int64_t c = g.c, x_tap = g.x_tap, x_px = g.x_px;
  const float* xi = t.x + cb;
  const float* wi = t.w + cb;
  for (int64_t i = 0; i < t.ni; ++i, xi += g.x_row, wi += g.w_row) {
    const float* xp = xi;
    const float* wp = wi;
    for (int64_t j = 0; j < t.nj; ++j, xp += x_tap, wp += c) {
#pragma GCC unroll 8
      for (int v = 0; v < V; ++v) {
        const __m512 wv = _mm512_maskz_loadu_ps(m[v], wp + 16 * v);
#pragma GCC unroll 8
        for (int p = 0; p < P; ++p)
          acc[p][v] = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m[v], xp + p * x_px + 16 * v), wv, acc[p][v]);
      }
    }
  }
  const __m512 lo = _mm512_set1_ps(g.lo), hi = _mm512_set1_ps(g.hi);
#pragma GCC unroll 8
  for (int p = 0; p < P; ++p)
#pragma GCC unroll 8
    for (int v = 0; v < V; ++v)
      _mm512_mask_storeu_ps(y + p * g.c + cb + 16 * v, m[v], _mm512_min_ps(hi, _mm512_max_ps(lo, acc[p][v])));
}

// A run of P pixels over all channels: tiles of 4 vectors (16 sums for 4 pixels), or of 8 for one pixel (8 sums,
// as many chains as hide the FMA latency), then one tile for the remaining 1 to 4 vectors.
template <int P>
ADZE_AVX512 __attribute__((always_inline)) inline void pixels_avx512(const Geo& g, const Taps& t, float* y) {
  int64_t cb = 0;
  if (P == 1)
    for (; g.c - cb > 128; cb += 128) tile_avx512<P, 8>(g, t, cb, 128, y);
  for (; g.c - cb > 64; cb += 64) tile_avx512<P, 4>(g, t, cb, 64, y);
  const int64_t left = g.c - cb;
  switch ((left + 15) / 16) {
    case 4:
      tile_avx512<P, 4>(g, t, cb, left, y);
      break;
    case 3:
      tile_avx512<P, 3>(g, t, cb, left, y);
      break;
    case 2:
      tile_avx512<P, 2>(g, t, cb, left, y);
      break;
    default:
      tile_avx512<P, 1>(g, t, cb, left, y);
      break;
  }
}

// The interior of a row of a 3×3 kernel (dilation_x 1, stride_x SX) whose three tap rows are all inside:
// MobileNet's case. One channel vector at a time with its 9 weights held in registers for the whole row, P
// pixels a step, each input column of a tap row loaded once for the (up to) three taps that read it: a third
// of the generic tile's loads at stride 1. 9 + P + (P − 1)·SX + 3 vector registers of the 32.
template <int P, int SX>
ADZE_AVX512 __attribute__((always_inline)) inline void sweep3_avx512(const Geo& g, const Row& r) {
  constexpr int N = (P - 1) * SX + 3;  // input columns of P pixels
  const int64_t c = g.c;
  const __m512 lo = _mm512_set1_ps(g.lo), hi = _mm512_set1_ps(g.hi);
  for (int64_t cb = 0; cb < c; cb += 16) {
    const __mmask16 m = lanes(c - cb);
    __m512 wv[3][3];
#pragma GCC unroll 3
    for (int i = 0; i < 3; ++i)
#pragma GCC unroll 3
      for (int j = 0; j < 3; ++j) wv[i][j] = _mm512_maskz_loadu_ps(m, r.w + i * g.w_row + j * c + cb);
    const __m512 b = g.bias ? _mm512_maskz_loadu_ps(m, g.bias + cb) : _mm512_setzero_ps();
    for (int64_t ox = g.ox_lo; ox < g.ox_hi; ox += P) {
      ox = ox + P <= g.ox_hi ? ox : g.ox_hi - P;  // the last step overlaps its predecessor, as in row_avx2
      const float* x = r.x + (ox * SX - g.px) * c + cb;
      __m512 acc[P];
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) acc[p] = b;
#pragma GCC unroll 3
      for (int i = 0; i < 3; ++i) {
        __m512 xs[N];
#pragma GCC unroll 16
        for (int k = 0; k < N; ++k) xs[k] = _mm512_maskz_loadu_ps(m, x + i * g.x_row + k * c);
#pragma GCC unroll 3
        for (int j = 0; j < 3; ++j)
#pragma GCC unroll 8
          for (int p = 0; p < P; ++p) acc[p] = _mm512_fmadd_ps(xs[p * SX + j], wv[i][j], acc[p]);
      }
      float* y = r.y + ox * c + cb;
#pragma GCC unroll 8
      for (int p = 0; p < P; ++p) _mm512_mask_storeu_ps(y + p * c, m, _mm512_min_ps(hi, _mm512_max_ps(lo, acc[p])));
    }
  }
}

ADZE_AVX512 void row_avx512(const Geo& g, const Row& r) {
  if (r.ni == 3 && g.kh == 3 && g.kw == 3 && g.dx == 1 && g.sx <= 2 && g.ox_hi - g.ox_lo >= (g.sx == 1 ? 8 : 6)) {
    // P = 8 at stride 1 and 6 at stride 2 fill the registers without spilling.
    if (g.sx == 1)
      sweep3_avx512<8, 1>(g, r);
    else
      sweep3_avx512<6, 2>(g, r);
    for (int64_t ox = 0; ox < g.ox_lo; ++ox) pixels_avx512<1>(g, column_taps(g, r, ox), r.y + ox * g.c);
    for (int64_t ox = g.ox_hi; ox < g.ow; ++ox) pixels_avx512<1>(g, column_taps(g, r, ox), r.y + ox * g.c);
    return;
  }
  constexpr int64_t P = 4;
  for (int64_t ox = 0; ox < g.ow;) {
    if (ox >= g.ox_lo && ox < g.ox_hi && g.ox_hi - g.ox_lo >= P) {  // as row_avx2
      const int64_t start = ox + P <= g.ox_hi ? ox : g.ox_hi - P;
      pixels_avx512<P>(g, column_taps(g, r, start), r.y + start * g.c);
      ox = start + P;
    } else {
      pixels_avx512<1>(g, column_taps(g, r, ox), r.y + ox * g.c);
      ++ox;
    }
  }
}

#pragma GCC diagnostic pop

}  // namespace

void depthwise_conv2d_nhwc(const DepthwiseShape& s, const float* x, const float* w, const float* bias, float lo,
                           float hi, float* y, Isa isa) {
  // As PyTorch: the padded input must hold the dilated kernel (out_h() rounds toward zero, so it alone is no test).
  if (s.n < 0 || s.h <= 0 || s.w <= 0 || s.c < 0 || s.kh <= 0 || s.kw <= 0 || s.stride_y <= 0 || s.stride_x <= 0 ||
      s.pad_y < 0 || s.pad_x < 0 || s.dilation_y <= 0 || s.dilation_x <= 0 ||
      s.h + 2 * s.pad_y < s.dilation_y * (s.kh - 1) + 1 || s.w + 2 * s.pad_x < s.dilation_x * (s.kw - 1) + 1)
    throw Error(ErrorKind::kInternal, "failed to run depthwise_conv2d_nhwc: input " + std::to_string(s.h) + "x" +
                                          std::to_string(s.w) + " padded by " + std::to_string(s.pad_y) + "," +
                                          std::to_string(s.pad_x) + ", kernel " + std::to_string(s.kh) + "x" +
                                          std::to_string(s.kw) +
                                          ": sizes, strides or dilations not positive, or "
                                          "the padded input smaller than the dilated kernel");
  if (s.n == 0 || s.c == 0) return;
  const int64_t oh = s.out_h(), ow = s.out_w();
  const int64_t c = s.c;
  Geo g;
  g.c = c;
  g.w_in = s.w;
  g.ow = ow;
  g.kh = s.kh;
  g.kw = s.kw;
  g.sx = s.stride_x;
  g.px = s.pad_x;
  g.dx = s.dilation_x;
  g.x_row = s.dilation_y * s.w * c;
  g.x_tap = s.dilation_x * c;
  g.x_px = s.stride_x * c;
  g.w_row = s.kw * c;
  // Interior columns: ox·sx − px >= 0 and ox·sx − px + dx·(kw − 1) <= w − 1.
  const int64_t last = s.w - 1 + s.pad_x - s.dilation_x * (s.kw - 1);
  g.ox_lo = (s.pad_x + s.stride_x - 1) / s.stride_x;
  g.ox_hi = last < 0 ? 0 : last / s.stride_x + 1;
  g.ox_lo = g.ox_lo < ow ? g.ox_lo : ow;
  g.ox_hi = g.ox_hi < ow ? g.ox_hi : ow;
  g.ox_hi = g.ox_hi > g.ox_lo ? g.ox_hi : g.ox_lo;
  g.bias = bias;
  g.lo = lo;
  g.hi = hi;

  // Output rows split over the threads where the multiply-adds pay for a parallel region, the first thread to
  // finish taking the other's last rows (StealingShares; each row computed as one thread would: the same bits
  // on any number of threads).
  const auto row_of = by_isa<void (*)(const Geo&, const Row&)>(
      isa, [](const Geo& geo, const Row& r) { row_scalar(geo, r, 0, geo.c); }, row_avx2, row_avx512);
  const int64_t rows = s.n * oh;
  StealingShares shares(rows);
  maybe_parallel(rows > 1 && rows * ow * c * s.kh * s.kw >= kParallelMacs, [&] {
    shares.run([&](int64_t row) {
      const int64_t b = row / oh, oy = row % oh;
      const float* image = x + b * s.h * s.w * c;
      const int64_t iy0 = oy * s.stride_y - s.pad_y;
      int64_t i0, i1;
      tap_range(iy0, s.h, s.dilation_y, s.kh, &i0, &i1);
      const Row r{i1 > i0 ? image + (iy0 + i0 * s.dilation_y) * s.w * c : image, w + i0 * s.kw * c, i1 - i0,
                  y + row * ow * c};
      row_of(g, r);
    });
  });
}

}  // namespace runtime
}  // namespace adze
