#include "runtime/kernels/qgemm.h"

#include <sys/mman.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <new>

#include "core/error.h"
#include "runtime/kernels/float_kernels.h"
#include "runtime/kernels/row_kernels.h"
#include "runtime/parallel.h"

namespace adze {
namespace runtime {
namespace {

constexpr int kPlaneWidths[] = {8, 4, 2, 1};  // row_kernels.h: widest first
constexpr int64_t kTileRows = 4;              // weight rows multiplied together (dot4)
constexpr int64_t kRowDotRows = 32;           // weight rows per row_dot call (one activation row)
// Activation rows from which the GEMM microkernel (gemm_panel) runs. Building a layer's panels costs about 0.5 ns
// per weight per call, which few rows do not repay: ResNet-18 at 64x64, layer3's 16 rows (256x2304 weights)
// took 336 us with panels and 108 us on the four-row path; layer2's 64 rows 120 us with panels, 200 us without.
constexpr int64_t kPanelMinRows = 32;

int64_t round_up(int64_t v, int64_t to) { return (v + to - 1) / to * to; }

// Value i of a plane of width w (row_kernels.h) is set from v (< 2^w).
void put_plane_value(uint8_t* plane, int w, int i, uint32_t v) {
  switch (w) {
    case 8:
      plane[i] = static_cast<uint8_t>(v);
      break;
    case 4:
      plane[i & 31] = static_cast<uint8_t>(plane[i & 31] | (v << (4 * (i >> 5))));
      break;
    case 2:
      plane[i & 15] = static_cast<uint8_t>(plane[i & 15] | (v << (2 * (i >> 4))));
      break;
    default:
      plane[i >> 3] = static_cast<uint8_t>(plane[i >> 3] | (v << (i & 7)));
  }
}

// Scratch of one thread, kept between calls so that a run allocates nothing once warm: unpacked weight tiles
// (kept: a kMask row before expansion; dense: four rows, expanded or kPairs values; gather: kPairs controls),
// and the activations in the pairs order.
struct Scratch {
  std::vector<uint8_t> kept, dense, gather, pairs_x, rows;  // rows: a QRowSource's, made privately
  std::vector<uint8_t> panels;  // the GEMM path's panels of all channels (the calling thread's, shared)
  std::vector<int32_t> dots;    // the integer products of a tile, per row and group
  std::vector<float> row_scale;
  std::vector<int32_t> row_zero;
  std::vector<float> ranges;  // qgemm's per-thread ranges of its outputs (the calling thread's)
  std::vector<float> pieces;  // a long row's pieces' ranges (range_params)
};

// n bytes of v starting on a 64-byte boundary: loads that split cache lines cost the kernels up to twice the
// time.
template <typename T = uint8_t>
T* cache_aligned(std::vector<uint8_t>& v, int64_t n) {
  v.resize(static_cast<std::size_t>(n + 63));
  const auto at = reinterpret_cast<std::uintptr_t>(v.data());
  return reinterpret_cast<T*>(v.data() + ((64 - at % 64) % 64));
}

Scratch& thread_scratch() {
  thread_local Scratch s;
  return s;
}

// Room for `rows` rows of `a` in this thread's scratch (the rows it makes alone: privately or its band).
QActivations own_rows_scratch(const QActivations& a, int64_t rows, Scratch& s) {
  QActivations own = a;
  own.rows = rows;
  own.q = cache_aligned(s.rows, rows * a.stride);
  s.row_scale.resize(static_cast<std::size_t>(rows));
  s.row_zero.resize(static_cast<std::size_t>(rows));
  own.scale = s.row_scale.data();
  own.zero = s.row_zero.data();
  return own;
}

// The activations `a` with rows made by `src` on this thread alone, into its scratch (QRowSource::make_private).
QActivations make_private_rows(QRowSource* src, const QActivations& a, Scratch& s) {
  const QActivations own = own_rows_scratch(a, a.rows, s);
  src->make_private(const_cast<uint8_t*>(own.q), const_cast<float*>(own.scale), const_cast<int32_t*>(own.zero));
  return own;
}

// Whether kPairs can hold the matrix: every group of four positions keeps at most two and every group
// wholly inside k exactly two, scales cover whole chunks of 128 positions, and the fillers of a short last
// group can hold the value offset (0).
bool fits_pairs(int64_t rows, int64_t k, int bits, const bool* keep, const int32_t* offset, int64_t group) {
  if (group != k && group % 128 != 0) return false;
  for (int64_t r = 0; r < rows; ++r) {
    if (offset[r] < 0 || offset[r] >= (1 << bits)) return false;
    for (int64_t j = 0; j < k; j += 4) {
      const int64_t end = std::min(j + 4, k);
      const auto n = std::count(keep + r * k + j, keep + r * k + end, true);
      if (n > 2 || (end - j == 4 && n != 2)) return false;
    }
  }
  return true;
}

// Σ_g scale[g]·(dot[g] − zero·wsum[g]) over a row's groups: the only rounding of the whole product, the same
// on every path and instruction set. Four partial sums, each of every fourth group, added in a fixed order at
// the end, are independent chains that the compiler keeps in one vector. One group (one scale per row) needs
// none of them: adding the zeros would change nothing but the time.
// The dots of group g are dot[g·dot_stride].
inline float row_sum(const float* scale, const int32_t* dot, int64_t dot_stride, const int32_t* wsum, int32_t zero,
                     int64_t groups) {
  if (groups == 1) return scale[0] * static_cast<float>(dot[0] - zero * wsum[0]);
  float part[4] = {0.0f, 0.0f, 0.0f, 0.0f};
  int64_t g = 0;
  for (; g + 4 <= groups; g += 4)
    for (int j = 0; j < 4; ++j)
      part[j] += scale[g + j] * static_cast<float>(dot[(g + j) * dot_stride] - zero * wsum[g + j]);
  for (int j = 0; g + j < groups; ++j)
    part[j] += scale[g + j] * static_cast<float>(dot[(g + j) * dot_stride] - zero * wsum[g + j]);
  return (part[0] + part[1]) + (part[2] + part[3]);
}

// Row r as signed bytes: kDense and kMask rows as their k_pad values (kMask unpacked into `kept`, scratch of
// kept_pad + 64 bytes, then expanded onto its mask), kPairs rows as their kept_pad values with the gather controls.
void unpack_row(const QWeights& w, const RowKernels& kern, int64_t r, int8_t* kept, int8_t* out, uint8_t* gather) {
  const QWeightLayout& l = w.layout;
  const uint8_t* planes = w.planes + r * l.plane_row_bytes();
  switch (l.pattern) {
    case QPattern::kDense:
      kern.unpack(planes, l.bits, l.k_pad / 64, w.offset[r], out);
      return;
    case QPattern::kMask:
      kern.unpack(planes, l.bits, l.kept_pad / 64, w.offset[r], kept);
      kern.expand(kept, w.mask + r * l.mask_row_words(), l.k_pad / 64, out);
      return;
    case QPattern::kPairs:
      kern.unpack_pairs(planes, l.bits, l.kept_pad / 64, w.offset[r], out, gather);
      return;
  }
}

// Panel b (row_kernels.h) of the matrix, `steps` steps of reduction positions: its channels' rows unpacked (kMask
// expanded onto its mask) and each 4-byte step copied to its place; kPairs values go straight to their positions,
// which stay zero where a row keeps none. With `order` (k entries), encoded position j goes to position order[j]
// instead: the panel in the layer's own column order, for activations that were not permuted.
void build_panel(const QWeights& w, const RowKernels& kern, int64_t b, Scratch& s, uint8_t* panel, int64_t steps,
                 const int64_t* order) {
  const QWeightLayout& l = w.layout;
  constexpr int64_t step_bytes = 4 * kPanelChannels;
  std::fill_n(panel, steps * step_bytes, uint8_t{0});
  int8_t* const row = cache_aligned<int8_t>(s.dense, l.k_pad);
  int8_t* const kept = l.pattern == QPattern::kMask ? cache_aligned<int8_t>(s.kept, l.kept_pad + 64) : nullptr;
  uint8_t* const gather = l.pattern == QPattern::kPairs ? cache_aligned(s.gather, l.kept_pad) : nullptr;
  for (int64_t c = 0; c < kPanelChannels && b * kPanelChannels + c < l.rows; ++c) {
    const int64_t r = b * kPanelChannels + c;
    uint8_t* const col = panel + 4 * c;
    unpack_row(w, kern, r, kept, row, gather);
    if (order || steps != l.k_pad / 4) {  // value by value: position j of the reduction to its place
      auto put = [&](int64_t j, int8_t v) {
        if (j >= l.k) return;  // padding and fillers, zero
        const int64_t at = order ? order[j] : j;
        col[at / 4 * step_bytes + at % 4] = static_cast<uint8_t>(v);
      };
      if (l.pattern == QPattern::kPairs)
        for (int64_t t = 0; t < l.kept_pad; ++t) put(t / 2 * 4 + (gather[t] & 3), row[t]);
      else
        for (int64_t j = 0; j < l.k; ++j) put(j, row[j]);
      continue;
    }
    if (l.pattern == QPattern::kPairs) {  // value t sits in group of four ⌊t/2⌋ (one step), at its position
                                          // there: the gather control's low two bits (row_kernels.h)
      for (int64_t t = 0, steps = l.kept_pad / 2; t < steps; ++t) {
        uint8_t* const step = col + t * step_bytes;
        step[gather[2 * t] & 3] = static_cast<uint8_t>(row[2 * t]);
        step[gather[2 * t + 1] & 3] = static_cast<uint8_t>(row[2 * t + 1]);
      }
      continue;
    }
    for (int64_t j = 0; j < l.k_pad / 4; ++j) std::memcpy(col + j * step_bytes, row + 4 * j, 4);
  }
}

// v clamped to [lo, hi], NaN kept (a fused ReLU or ReLU6).
inline float clamp_out(float v, float lo, float hi) { return v < lo ? lo : v > hi ? hi : v; }

// A calibrated fake quantization: fake_quantize_static's arithmetic on its instruction set's kernel (s 0: none).
struct FakeQuant {
  float s = 0, inv = 0, zf = 0;
  FakeQuant(float scale, int32_t zero)
      : s(scale), inv(scale != 0 ? 1.0f / scale : 0.0f), zf(static_cast<float>(zero)) {}
};

// Floats between two threads' range slots (QGemmOptions::range): a cache line each.
constexpr int64_t kRangeSlot = 16;

// What qgemm does to a block of outputs after its kernels wrote them (still in cache, on the thread that wrote
// them), as the unfused ops would round it: with a residual (QGemmOptions::residual), y = clamp(fq(y) + r), the
// kernels having run unclamped; then the output's fake quantization (QGemmOptions::quant_scale). Without either,
// nothing (the kernels clamped). Last, where asked (QGemmOptions::range), the block's range into this thread's
// slot.
struct Finish {
  const float* residual = nullptr;
  int64_t stride = 0;
  float lo = 0, hi = 0;
  const RowKernels* kern = nullptr;
  const FloatKernels* fk = nullptr;
  FakeQuant before, after;  // the residual branch's own fake quantization; the output's, after all else
  float* ranges = nullptr;  // where not null, each thread's range (min, max) of what it finished, kRangeSlot apart
  // Rows [m0, m0 + rows) by channels [c0, c0 + n) of y.
  void operator()(float* y, int64_t y_stride, int64_t m0, int64_t rows, int64_t c0, int64_t n) const {
    if (!residual && after.s == 0 && !ranges) return;
    if (n == y_stride && (!residual || n == stride)) {  // whole rows, back to back: one pass (c0 is 0)
      n *= rows;
      rows = 1;
    }
    float* const range = ranges ? ranges + kRangeSlot * work_thread() : nullptr;
    for (int64_t m = m0; m < m0 + rows; ++m) {
      float* const out = y + m * y_stride + c0;
      if (residual) {
        if (before.s != 0) kern->fake_quantize(out, n, before.inv, before.zf, before.s, out);
        fk->add_clamp(out, residual + m * stride + c0, out, n, lo, hi);
      }
      if (after.s != 0) kern->fake_quantize(out, n, after.inv, after.zf, after.s, out);
      if (range) kern->range(out, n, range, range + 1);
    }
  }
};

int64_t panel_blocks(const QWeightLayout& l) { return (l.rows + kPanelChannels - 1) / kPanelChannels; }

// Reduction positions a prebuilt panel holds: one group's k rounded up to a whole step of 4 (a 2:4 layer of
// 32 inputs is not padded to 128), or every group's.
int64_t panel_positions(const QWeightLayout& l) { return l.groups == 1 ? round_up(l.k, 4) : l.k; }

// All rows of a source made before a product that reads them all: in one region of their own where that pays.
void make_all_rows(QRowSource* src, int64_t rows) {
  if (!src) return;
  maybe_parallel(src->parallel(), [&] {
    src->prepare();
    work_share((rows + kPanelRows - 1) / kPanelRows,
               [&](int64_t t) { src->make(t * kPanelRows, std::min(rows, (t + 1) * kPanelRows)); });
  });
}

// Many activation rows on an ISA with a GEMM microkernel: every channel block's panel is built (split over the
// threads) unless `prebuilt` has them (of panel_k positions), then tiles of kPanelRows activation rows times one
// panel (split over the threads, a thread's tiles mostly on one panel) run gemm_panel, and the shared epilogue
// turns each tile's dots into outputs. Rows from a source (`src`) are made in the same parallel region.
void qgemm_panels(const QWeights& w, const QActivations& a, const float* bias, float* y, int64_t y_stride,
                  const RowKernels& kern, const uint8_t* prebuilt, int64_t panel_k, float lo, float hi, QRowSource* src,
                  const Finish& finish) {
  const QWeightLayout& l = w.layout;
  const int64_t blocks = panel_blocks(l);
  const int64_t row_tiles = (a.rows + kPanelRows - 1) / kPanelRows;
  if (!prebuilt) panel_k = l.k_pad;
  const int64_t panel_bytes = panel_k * kPanelChannels;
  const int64_t group_steps = l.groups == 1 ? panel_k / 4 : l.group / 4;
  const uint8_t* const panels = prebuilt ? prebuilt : cache_aligned(thread_scratch().panels, blocks * panel_bytes);
  // A parallel body costs microseconds (handing it out, the closing barrier, the rows crossing between the
  // cores' caches); the microkernel does 2^19 multiply-adds in about that (decompose_bench: a batch-1 rank-128
  // layer, 2^18 multiply-adds, took 5.9 us split over two threads, 3.2 us on one). ResNet-18 at 64x64 on a
  // standing team, per-op profile at two threads against one: its products of exactly 2^19 (the 1x1 downsample
  // convolutions, the classifier) took 1.0-1.8x their one-thread time split, and 0.9-1.3x run alone.
  const bool gemm_parallel = l.rows * l.k_pad * a.rows >= (int64_t{1} << 20);
  const int threads = team_threads();
  if (a.rows == 1 && prebuilt && l.groups == 1 && kern.gemv_panels_out && !(gemm_parallel && threads > 1)) {
    // One row on one thread (a batch-1 layer): every panel in one call, no tile bookkeeping per panel
    // (decompose_bench: the rank-128 layer 3.0 -> 2.7 us, builds before and after).
    make_all_rows(src, a.rows);
    const PanelEpilogue e{a.scale, a.zero, w.scale, w.wsum, bias, lo, hi, y, y_stride, l.rows};
    kern.gemv_panels_out(a.q, reinterpret_cast<const int8_t*>(panels), blocks, group_steps, e);
    return finish(y, y_stride, 0, 1, 0, l.rows);
  }
  // The threads split the rows unless the panels outweigh the activations fourfold (a convolution's many output
  // positions: each thread then reads only its own rows, which it made itself where they come from a source,
  // and writes whole output rows), else the panels. Panels are only read, so both threads may hold them; rows
  // the other core wrote must cross between the caches. (ResNet-18 at 64x64, two threads, per-op profile:
  // layer2's 3x3 convolutions, 74 KB of rows against 147 KB of panels, 130 -> 115 us split by rows.)
  const bool by_rows = row_tiles > 1 && 4 * a.rows * a.stride >= blocks * panel_bytes;
  // Split by rows, a thread takes whole tiles of rows, every panel of each, where the tiles share out evenly
  // enough; otherwise the (tile, panel) pairs are shared out one by one, and a source's rows all made first.
  const bool own_rows = by_rows && (row_tiles % threads == 0 || row_tiles >= 4 * threads);
  const bool region = (gemm_parallel || (src && src->parallel())) && threads > 1;
  // Split by panels, every thread reads every row: each makes them all for itself where the source can.
  const bool private_rows = region && !by_rows && src && src->makes_private();
  // Split by whole tiles of rows, each thread makes its own band where the source can: it quantizes only the
  // input rows its band reads, mostly the rows it wrote as the layer before (split the same way), and no barrier
  // comes before it multiplies.
  const bool band_rows = own_rows && src && src->makes_band() && threads <= StealingShares::kMaxThreads;
  // Split by rows, a thread's share is its tiles of rows, which others may take once its rows are made; else
  // the (tile, panel) pairs.
  StealingShares shares(own_rows ? row_tiles : blocks * row_tiles, own_rows && src);
  // Made as bands, each thread's rows lie in its own scratch (bands[thread], from row band_first[thread]), which
  // no other core wrote last: rows made into one shared buffer, which every convolution reuses at its own row
  // length, moved each written line from the core that held it (ResNet-18 at 64x64, two threads, timestamps:
  // the second thread's half of a layer1 convolution's patches took 6.5 us, all of them at one thread 2.9 us).
  QActivations bands[StealingShares::kMaxThreads];
  int64_t band_first[StealingShares::kMaxThreads] = {};
  maybe_parallel(region, [&] {
    Scratch& s = thread_scratch();
    const QActivations act = private_rows ? make_private_rows(src, a, s) : a;
    if (src && !private_rows && !band_rows) src->prepare();
    if (!prebuilt)
      work_for(blocks, [&](int64_t b) {
        build_panel(w, kern, b, s, const_cast<uint8_t*>(panels) + b * panel_bytes, panel_k / 4, nullptr);
      });
    s.dots.resize(static_cast<std::size_t>(kPanelRows * l.groups * kPanelChannels));
    int32_t* const dots = s.dots.data();
    // Tile t, then `finish` on it unless `whole_rows` (the caller then finishes the rows in one piece); its
    // activation rows in `rows`, which holds them from row `first` on.
    const auto tile = [&](int64_t t, bool whole_rows, const QActivations& rows, int64_t first) {
      // (No division where one tile of rows covers them all: a batch-1 layer runs a tile per panel.)
      const int64_t b = row_tiles == 1 ? t : by_rows ? t % blocks : t / row_tiles;
      const int64_t m0 = row_tiles == 1 ? 0 : (by_rows ? t / blocks : t % row_tiles) * kPanelRows;
      const int64_t n = std::min(kPanelRows, a.rows - m0), c0 = b * kPanelChannels;
      const int64_t channels = std::min(kPanelChannels, l.rows - c0);
      const int8_t* const panel = reinterpret_cast<const int8_t*>(panels + b * panel_bytes);
      // The epilogue on the accumulators, in registers (qgemm_bench, prepacked: 64 rows x 128: 27.5 -> 18.5 us,
      // the stem 1024 x 147: 77 -> 51 us). Long reductions too, since the 8-row tile keeps its accumulators in
      // place (16 rows x 2304: 44.7 -> 41.5 us; before, 32 -> 37 us the other way).
      if (l.groups == 1 && kern.gemm_panel_out) {
        const int64_t at = m0 - first;
        const PanelEpilogue e{
            rows.scale + at,        rows.zero + at, w.scale + c0, w.wsum + c0, bias ? bias + c0 : nullptr, lo, hi,
            y + m0 * y_stride + c0, y_stride,       channels};
        kern.gemm_panel_out(rows.q + at * rows.stride, rows.stride, n, panel, group_steps, l.small, e);
        if (!whole_rows) finish(y, y_stride, m0, n, c0, channels);
        return;
      }
      kern.gemm_panel(rows.q + (m0 - first) * rows.stride, rows.stride, n, panel, group_steps, l.groups, l.small, dots);
      for (int64_t i = 0; i < n; ++i) {
        const int64_t m = m0 + i, r = m - first;
        float* out = y + m * y_stride + c0;
        if (l.groups == 1) {  // row_sum's arithmetic, across the channels in vectors
          const int32_t* d = dots + i * kPanelChannels;
          const int32_t z = rows.zero[r];
          const float as = rows.scale[r], *sc = w.scale + c0, *bs = bias ? bias + c0 : nullptr;
          const int32_t* ws = w.wsum + c0;
#pragma omp simd
          for (int64_t c = 0; c < channels; ++c)
            out[c] = clamp_out(as * (sc[c] * static_cast<float>(d[c] - z * ws[c])) + (bs ? bs[c] : 0.0f), lo, hi);
          continue;
        }
        for (int64_t c = 0; c < channels; ++c) {
          const int64_t at = (c0 + c) * l.groups;
          const float sum = row_sum(w.scale + at, dots + i * l.groups * kPanelChannels + c, kPanelChannels, w.wsum + at,
                                    rows.zero[r], l.groups);
          out[c] = clamp_out(rows.scale[r] * sum + (bias ? bias[c0 + c] : 0.0f), lo, hi);
        }
      }
      if (!whole_rows) finish(y, y_stride, m0, n, c0, channels);
    };
    if (own_rows) {  // this thread's share of the row tiles (all of them outside a region), made and multiplied
      const int i = work_thread(), n = work_threads();
      const int64_t r0 = shares.begin(i, n), r1 = shares.begin(i + 1, n);
      if (src && r1 > r0) {
        const int64_t m0 = r0 * kPanelRows, m1 = std::min(a.rows, r1 * kPanelRows);
        if (band_rows) {
          bands[i] = own_rows_scratch(a, m1 - m0, s);
          band_first[i] = m0;
          src->make_band(m0, m1, const_cast<uint8_t*>(bands[i].q), const_cast<float*>(bands[i].scale),
                         const_cast<int32_t*>(bands[i].zero));
        } else {
          src->make(m0, m1);
        }
      }
      shares.ready();
      shares.run([&](int64_t r) {  // a tile of rows through every panel, then finished whole
        const int owner = band_rows ? shares.owner(r, n) : 0;
        const QActivations& rows = band_rows ? bands[owner] : act;
        const int64_t first = band_rows ? band_first[owner] : 0;
        for (int64_t b = 0; b < blocks; ++b) tile(r * blocks + b, true, rows, first);
        finish(y, y_stride, r * kPanelRows, std::min(kPanelRows, a.rows - r * kPanelRows), 0, l.rows);
      });
      return;
    }
    if (src && !private_rows)
      work_for(row_tiles, [&](int64_t r) { src->make(r * kPanelRows, std::min(a.rows, (r + 1) * kPanelRows)); });
    shares.run([&](int64_t t) { tile(t, false, act, 0); });  // the body's end is the barrier
  });
}

}  // namespace

std::string qweights_unsupported(int64_t rows, int64_t k, int bits, const uint8_t* u, const bool* keep,
                                 const int32_t* offset, int64_t group) {
  if (rows <= 0 || k <= 0) return "an empty matrix";
  if (bits < 1 || bits > 8) return std::to_string(bits) + "-bit codes";
  if (group != k && (group <= 0 || group % 32 != 0 || k % group != 0))
    return "group size " + std::to_string(group) +
           " (the kernels take one scale per row or groups of a multiple of 32)";
  int64_t first_kept = -1;
  for (int64_t r = 0; r < rows; ++r) {
    int64_t kept = 0;
    for (int64_t j = 0; j < k; ++j) {
      if (keep && !keep[r * k + j]) continue;
      ++kept;
      const int64_t v = static_cast<int64_t>(u[r * k + j]) - offset[r];
      if (v < -128 || v > 127)
        return "weight " + std::to_string(v) + " in row " + std::to_string(r) +
               " (the kernels take signed 8-bit weights)";
    }
    if (first_kept < 0) first_kept = kept;
    if (kept != first_kept) return "rows keeping different numbers of weights";
  }
  return "";
}

PackedQWeights pack_qweights(int64_t rows, int64_t k, int bits, const uint8_t* u, const bool* keep,
                             const int32_t* offset, const float* scale, int64_t group) {
  const std::string why = qweights_unsupported(rows, k, bits, u, keep, offset, group);
  if (!why.empty()) throw Error(ErrorKind::kUnsupported, "integer kernels: " + why);
  PackedQWeights p;
  QWeightLayout& l = p.layout;
  l.rows = rows;
  l.k = k;
  l.bits = bits;
  l.pattern = QPattern::kDense;
  if (keep) l.pattern = fits_pairs(rows, k, bits, keep, offset, group) ? QPattern::kPairs : QPattern::kMask;
  const bool pairs = l.pattern == QPattern::kPairs;
  l.k_pad = round_up(k, pairs ? 128 : 64);
  l.kept = keep ? std::count(keep, keep + k, true) : k;
  l.kept_pad = pairs ? l.k_pad / 2 : keep ? round_up(std::max<int64_t>(l.kept, 1), 64) : l.k_pad;
  l.group = group == k ? l.k_pad : group;
  l.groups = group == k ? 1 : k / group;
  l.small = true;
  p.planes.assign(static_cast<std::size_t>(rows * l.plane_row_bytes()), 0);
  p.mask.assign(static_cast<std::size_t>(rows * l.mask_row_words()), 0);
  p.offset.assign(offset, offset + rows);
  p.scale.assign(scale, scale + rows * l.groups);
  p.wsum.assign(static_cast<std::size_t>(rows * l.groups), 0);
  // The row's stored values in order (padding and fillers decode to 0) and, for kPairs, their positions.
  std::vector<uint32_t> stream(static_cast<std::size_t>(l.kept_pad)), where(stream.size());
  for (int64_t r = 0; r < rows; ++r) {
    const bool* kr = keep ? keep + r * k : nullptr;
    std::fill(stream.begin(), stream.end(), static_cast<uint32_t>(offset[r]));
    int64_t n = 0;
    for (int64_t j = 0; j < k; ++j) {
      if (kr && !kr[j]) continue;
      const int32_t v = static_cast<int32_t>(u[r * k + j]) - offset[r];
      if (v < -64 || v > 64) l.small = false;
      p.wsum[static_cast<std::size_t>(r * l.groups + (l.groups == 1 ? 0 : j / group))] += v;
      if (l.pattern == QPattern::kMask)
        p.mask[static_cast<std::size_t>(r * l.mask_row_words() + j / 64)] |= uint64_t{1} << (j % 64);
      if (!pairs) stream[static_cast<std::size_t>(kr ? n : j)] = u[r * k + j];
      ++n;
    }
    if (pairs) {
      for (int64_t j = 0, t = 0; j < l.k_pad; j += 4) {  // each group of four: its two kept, or fillers
        int fillers = 2;
        for (int64_t i = j; i < std::min(j + 4, k); ++i) fillers -= kr[i];
        for (int b = 0; b < 4; ++b) {
          const bool kept = j + b < k && kr[j + b];
          if (!kept && fillers == 0) continue;
          if (kept)
            stream[static_cast<std::size_t>(t)] = u[r * k + j + b];
          else
            --fillers;
          where[static_cast<std::size_t>(t++)] = static_cast<uint32_t>(b);
        }
      }
    }
    uint8_t* out = p.planes.data() + r * l.plane_row_bytes();
    for (int64_t c = 0; c < l.kept_pad / 64; ++c) {
      int shift = 0;
      for (const int w : kPlaneWidths) {
        if (!(bits & w)) continue;
        for (int i = 0; i < 64; ++i)
          put_plane_value(out, w, i, (stream[static_cast<std::size_t>(c * 64 + i)] >> shift) & ((1u << w) - 1u));
        out += 8 * w;
        shift += w;
      }
      if (pairs) {
        for (int i = 0; i < 64; ++i) put_plane_value(out, 2, i, where[static_cast<std::size_t>(c * 64 + i)]);
        out += 16;
      }
    }
  }
  return p;
}

namespace {

// Rows r0..r0+n of x gathered (column j from column gather[j]) into this thread's scratch, k floats a row.
const float* gathered_rows(const float* x, int64_t r0, int64_t n, int64_t k, int64_t x_stride, const int64_t* gather) {
  thread_local std::vector<float> buffer;
  if (static_cast<int64_t>(buffer.size()) < n * k) buffer.resize(static_cast<std::size_t>(n * k));
  for (int64_t r = 0; r < n; ++r)
    for (int64_t j = 0; j < k; ++j) buffer[static_cast<std::size_t>(r * k + j)] = x[(r0 + r) * x_stride + gather[j]];
  return buffer.data();
}

// Row r of x in the order the codes take: as it lies, or gathered into scratch.
const float* gathered_row(const float* x, int64_t r, int64_t k, int64_t x_stride, const int64_t* gather) {
  return gather ? gathered_rows(x, r, 1, k, x_stride, gather) : x + r * x_stride;
}

// Rows at least this long are quantized in pieces of kPiece values split over the threads (the codes are
// element-wise, a range's min and max do not depend on the order: the same bytes on any number of threads);
// inside a parallel body (a QRowSource's rows) on the calling thread alone.
constexpr int64_t kParallelValues = int64_t{1} << 15, kPiece = int64_t{1} << 13;

// f(p, first, count) for each piece p of n values: split over the threads where n is long enough to pay.
template <class F>
void in_pieces(int64_t n, const F& f) {
  if (n <= kPiece) return f(0, 0, n);  // one piece, called per row or pixel: no body at all
  maybe_parallel(n >= kParallelValues, [&] {
    work_share((n + kPiece - 1) / kPiece, [&](int64_t p) { f(p, p * kPiece, std::min(kPiece, n - p * kPiece)); });
  });
}

void quantize_pieces(const RowKernels& kern, const float* row, int64_t k, float inv, float zf, uint8_t* q) {
  in_pieces(k, [&](int64_t, int64_t j, int64_t n) { kern.quantize(row + j, n, inv, zf, q + j); });
}

}  // namespace

namespace {

// The dynamic range of n values (their min and max, widened to include 0) as a scale and zero point.
void range_params(const RowKernels& kern, const float* x, int64_t n, float* scale, int32_t* zero) {
  float lo = 0.0f, hi = 0.0f;
  if (n >= kParallelValues && !in_parallel_work()) {  // one long row (a convolution's whole input): in pieces,
    // each piece's range in its slot (min and max: the same result in any order)
    const int64_t pieces = (n + kPiece - 1) / kPiece;
    std::vector<float>& part = thread_scratch().pieces;
    part.assign(static_cast<std::size_t>(2 * pieces), 0.0f);
    in_pieces(n,
              [&](int64_t p, int64_t j, int64_t count) { kern.range(x + j, count, &part[2 * p], &part[2 * p + 1]); });
    for (int64_t p = 0; p < pieces; ++p) {
      lo = std::min(lo, part[static_cast<std::size_t>(2 * p)]);
      hi = std::max(hi, part[static_cast<std::size_t>(2 * p + 1)]);
    }
  } else {
    kern.range(x, n, &lo, &hi);
  }
  range_scale(lo, hi, scale, zero);
}

}  // namespace

void value_range(const float* x, int64_t n, float* lo, float* hi, Isa isa) {
  *lo = *hi = 0.0f;  // the kernel widens the range it is given
  row_kernels(isa).range(x, n, lo, hi);
}

// nearbyint(−lo / s) clamped to [0, 255], NaN to 0, without libm's nearbyintf (a call that saves and restores
// the floating-point environment, per row of every dynamically quantized layer: 1.2% of fortune-gpt's run in
// `perf record` of `adze bench gpt-2of4-int4.adze`): the quotient clamped to [−1, 256] first, where adding and
// subtracting 1.5·2^23 rounds it to the nearest whole number, ties to even, exactly.
void range_scale(float lo, float hi, float* scale, int32_t* zero) {
  const float s = hi > lo ? (hi - lo) / 255.0f : 1.0f;
  const float v = -lo / s;
  const float t = v > -1.0f ? (v < 256.0f ? v : 256.0f) : -1.0f;  // NaN fails the first test: −1
  const float r = (t + 12582912.0f) - 12582912.0f;                // not folded to t: the project allows no fast-math
  *scale = s;
  *zero = static_cast<int32_t>(std::min(255.0f, std::max(0.0f, r)));
}

void dynamic_params(const float* x, int64_t n, float* scale, int32_t* zero, Isa isa) {
  range_params(row_kernels(isa), x, n, scale, zero);
}

void quantize_rows_dynamic(const float* x, int64_t m, int64_t k, int64_t x_stride, const int64_t* gather, int64_t k_pad,
                           uint8_t* q, float* scale, int32_t* zero, Isa isa) {
  const RowKernels& kern = row_kernels(isa);
  if (kern.quantize_rows && k < kParallelValues) {  // short rows: many at a time
    if (!gather) return kern.quantize_rows(x, m, k, x_stride, k_pad, q, scale, zero);
    // Rows gathered at a time: up to 64, in at most 64 KiB of scratch.
    const int64_t block = std::clamp<int64_t>((int64_t{1} << 14) / k, 1, 64);
    for (int64_t r0 = 0; r0 < m; r0 += block) {
      const int64_t n = std::min(block, m - r0);
      kern.quantize_rows(gathered_rows(x, r0, n, k, x_stride, gather), n, k, k, k_pad, q + r0 * k_pad, scale + r0,
                         zero + r0);
    }
    return;
  }
  for (int64_t r = 0; r < m; ++r) {
    const float* row = gathered_row(x, r, k, x_stride, gather);
    float s = 0;
    int32_t z = 0;
    range_params(kern, row, k, &s, &z);
    quantize_pieces(kern, row, k, 1.0f / s, static_cast<float>(z), q + r * k_pad);
    std::fill(q + r * k_pad + k, q + (r + 1) * k_pad, uint8_t{0});
    scale[r] = s;
    zero[r] = z;
  }
}

void quantize_rows_static(const float* x, int64_t m, int64_t k, int64_t x_stride, const int64_t* gather, int64_t k_pad,
                          float s, int32_t z, uint8_t* q, float* scale, int32_t* zero, Isa isa) {
  const RowKernels& kern = row_kernels(isa);
  const float inv = 1.0f / s, zf = static_cast<float>(z);
  for (int64_t r = 0; r < m; ++r) {
    quantize_pieces(kern, gathered_row(x, r, k, x_stride, gather), k, inv, zf, q + r * k_pad);
    std::fill(q + r * k_pad + k, q + (r + 1) * k_pad, uint8_t{0});
    scale[r] = s;
    zero[r] = z;
  }
}

void fake_quantize_static(const float* x, int64_t n, float s, int32_t z, float* y, Isa isa) {
  const RowKernels& kern = row_kernels(isa);
  const float inv = 1.0f / s, zf = static_cast<float>(z);
  in_pieces(n, [&](int64_t, int64_t j, int64_t count) { kern.fake_quantize(x + j, count, inv, zf, s, y + j); });
}

namespace {

// Panels of a megabyte or more go in huge pages (madvise; the kernel's transparent huge pages, where enabled
// for madvise): a model's panels are megabytes written once, at its first call, and each 4 KiB page of them was
// a page fault there (ResNet-18 W8A8's 11 MB: about 2700; its first output, `adze bench --runs 5 --warmup 0
// --rounds 5`, the builds alternated three times: 11.6–14.0 -> 9.0–9.8 ms).
constexpr std::size_t kHugePage = std::size_t{2} << 20;

// A huge page backs only a whole aligned 2 MiB of the range; the rest stays in small pages, so that no layer
// takes more memory than its panels.
uint8_t* allocate_panels(int64_t bytes) {
  const auto n = static_cast<std::size_t>(bytes);
  const bool huge = n >= kHugePage / 2;
  void* p = nullptr;
  if (::posix_memalign(&p, huge ? kHugePage : 64, n) != 0) throw std::bad_alloc();
  if (huge) ::madvise(p, n, MADV_HUGEPAGE);  // advice only: without it the pages are small
  return static_cast<uint8_t*>(p);
}

}  // namespace

void QPanels::Free::operator()(uint8_t* p) const { std::free(p); }

QPanels::QPanels(const QWeights& w, Isa isa, const int64_t* order) : isa_(isa) {
  const RowKernels& kern = row_kernels(isa);
  if (!kern.gemm_panel) return;
  k_ = panel_positions(w.layout);
  in_order_ = order && w.layout.groups == 1;  // groups hold consecutive encoded positions: those stay put
  const int64_t blocks = panel_blocks(w.layout), panel_bytes = k_ * kPanelChannels;
  bytes_ = blocks * panel_bytes;
  storage_.reset(allocate_panels(bytes_));
  uint8_t* const panels = storage_.get();
  Scratch& s = thread_scratch();
  for (int64_t b = 0; b < blocks; ++b)
    build_panel(w, kern, b, s, panels + b * panel_bytes, k_ / 4, in_order_ ? order : nullptr);
}

int64_t prebuilt_panel_bytes(const QWeightLayout& l) { return panel_blocks(l) * kPanelChannels * panel_positions(l); }

bool panel_rows(int64_t rows, const QWeightLayout& l) {
  const int64_t bytes = prebuilt_panel_bytes(l);
  const int threads = team_threads();
  return rows >= kPrepackedPanelMinRows || (rows >= kSmallPanelMinRows && bytes <= kSmallPanelBytes) ||
         (rows >= kSmallPanelMinRows && threads > 1 && bytes / threads <= kSharedPanelShareBytes) ||
         (rows >= 1 && l.groups == 1 && bytes <= l.rows * l.plane_row_bytes());
}

bool uses_panels(int64_t rows, const QWeightLayout& l, const QPanels* panels) {
  return panels && !panels->empty() && panel_rows(rows, l);
}

namespace {

// qgemm, each thread's range of its outputs (QGemmOptions::range) into `ranges` where not null.
void qgemm_ranged(const QWeights& w, const QActivations& a, const float* bias, float* y, int64_t y_stride, Isa isa,
                  const QGemmOptions& options, float* ranges) {
  const QWeightLayout& l = w.layout;
  const int64_t need = uses_panels(a.rows, l, options.panels) ? options.panels->k() : l.k_pad;
  if (a.stride < need)
    throw Error(ErrorKind::kInternal,
                "qgemm: activation rows of " + std::to_string(a.stride) + " bytes, need " + std::to_string(need));
  const RowKernels& kern = row_kernels(isa);
  // With a residual to add, the kernels leave the outputs unclamped, and `finish` adds it and clamps.
  const Finish finish{options.residual,
                      options.residual_stride,
                      options.lo,
                      options.hi,
                      &kern,
                      &float_kernels(isa),
                      {options.residual_quant_scale, options.residual_quant_zero},
                      {options.quant_scale, options.quant_zero},
                      ranges};
  const float lo = options.residual ? -std::numeric_limits<float>::infinity() : options.lo;
  const float hi = options.residual ? std::numeric_limits<float>::infinity() : options.hi;
  const QPanels* cached = options.panels;
  if (cached && !cached->empty() && cached->isa() != isa)
    throw Error(ErrorKind::kInternal,
                std::string("qgemm: panels built for ") + to_string(cached->isa()) + ", run on " + to_string(isa));
  if (uses_panels(a.rows, l, cached))
    return qgemm_panels(w, a, bias, y, y_stride, kern, cached->data(), cached->k(), lo, hi, options.source, finish);
  if (cached && cached->in_layer_order())
    throw Error(ErrorKind::kInternal, "qgemm: activations in the layer's order for too few rows to use its panels");
  if (a.rows >= kPanelMinRows && kern.gemm_panel)
    return qgemm_panels(w, a, bias, y, y_stride, kern, nullptr, 0, lo, hi, options.source, finish);
  QRowSource* const src = options.source;
  const bool pairs = l.pattern == QPattern::kPairs;
  // kPairs: row_kernels.h's order, each chunk of 128 activations as its even 16-byte blocks, then its odd ones.
  uint8_t* const shared_px = pairs ? cache_aligned(thread_scratch().pairs_x, a.rows * l.k_pad) : nullptr;
  const int64_t x_stride = pairs ? l.k_pad : a.stride;
  const int64_t chunk_positions = pairs ? 128 : 64;
  // One activation row (or up to the table's row_dot_rows), of dense or kPairs weights with whole chunks per
  // scale: each weight row is unpacked in registers and multiplied with every activation row (row_dot).
  // Otherwise four weight rows at a time are unpacked once into scratch for every activation row.
  const bool by_row =
      a.rows >= 1 && a.rows <= kern.row_dot_rows && l.pattern != QPattern::kMask && l.group % chunk_positions == 0;
  const int64_t group_chunks = l.group / chunk_positions;
  // row_dot takes runs of kRowDotRows weight rows, so that a short row's dot product does not pay a call and a
  // tile setup of its own; otherwise tiles of kTileRows.
  const int64_t tile_rows = by_row ? kRowDotRows : kTileRows;
  const int64_t dots_stride = tile_rows * l.groups;  // between activation rows' dots (row_dot)
  const int64_t tiles = (l.rows + tile_rows - 1) / tile_rows;
  const int64_t w_stride = pairs ? l.kept_pad : l.k_pad;  // scratch bytes per unpacked weight row
  const bool parallel = l.rows * l.k_pad * std::max<int64_t>(a.rows, 1) >= (int64_t{1} << 16) && tiles > 1;
  // The rows made, put in the pairs' order, and multiplied in one region. The threads split the weights and
  // each reads every row: a source that can makes them all on each thread, which then orders them for itself;
  // otherwise they are made a row a thread (there are few).
  const bool region = (parallel || (src && src->parallel())) && team_threads() > 1;
  const bool private_rows = region && src && src->makes_private();
  const auto pairs_order = [&](const uint8_t* q, uint8_t* px, int64_t m) {
    for (int64_t j = 0; j < l.k_pad; j += 16) {
      const int64_t block = j / 16 % 8;
      std::copy_n(q + m * a.stride + j, 16, px + m * l.k_pad + j / 128 * 128 + (block & 1) * 64 + block / 2 * 16);
    }
  };
  StealingShares shares(tiles);
  maybe_parallel(region, [&] {
    Scratch& s = thread_scratch();
    const QActivations act = private_rows ? make_private_rows(src, a, s) : a;
    if (src && !private_rows) {
      src->prepare();
      work_for(a.rows, [&](int64_t m) { src->make(m, m + 1); });
    }
    uint8_t* const px = !pairs ? nullptr : private_rows ? cache_aligned(s.pairs_x, a.rows * l.k_pad) : shared_px;
    if (pairs && private_rows) {
      for (int64_t m = 0; m < a.rows; ++m) pairs_order(act.q, px, m);
    } else if (pairs) {
      work_for(a.rows, [&](int64_t m) { pairs_order(act.q, px, m); });
    }
    const uint8_t* const x = pairs ? px : act.q;
    s.dots.resize(static_cast<std::size_t>(dots_stride * (by_row ? a.rows : 1)));
    int32_t* const dots = s.dots.data();
    int8_t* const kept = by_row ? nullptr : cache_aligned<int8_t>(s.kept, l.kept_pad + 64);
    int8_t* const tile = by_row ? nullptr : cache_aligned<int8_t>(s.dense, kTileRows * w_stride);
    uint8_t* const gather = pairs && !by_row ? cache_aligned(s.gather, kTileRows * w_stride) : nullptr;
    shares.run([&](int64_t t) {  // the body's end is the barrier
      const int64_t r0 = t * tile_rows, n = std::min(tile_rows, l.rows - r0);
      if (by_row)
        kern.row_dot(w.planes + r0 * l.plane_row_bytes(), l.plane_row_bytes(), n, l.bits, w.offset + r0, pairs, x,
                     a.rows, x_stride, group_chunks, l.groups, l.small, dots, dots_stride);
      for (int64_t i = 0; i < kTileRows && !by_row; ++i) {
        int8_t* dense = tile + i * w_stride;
        if (i >= n) {
          std::fill_n(dense, w_stride, int8_t{0});
          if (pairs) std::fill_n(gather + i * w_stride, w_stride, uint8_t{0});
          continue;
        }
        unpack_row(w, kern, r0 + i, kept, dense, pairs ? gather + i * w_stride : nullptr);
      }
      for (int64_t m = 0; m < a.rows; ++m) {
        const int32_t* const dots_m = by_row ? dots + m * dots_stride : dots;
        if (!by_row) {  // the tile's products with activation row m, group by group
          const uint8_t* xm = x + m * x_stride;
          for (int64_t g = 0; g < l.groups; ++g) {
            int32_t dot[kTileRows];
            if (pairs)
              kern.pairs_dot4(xm + g * l.group, tile + g * l.group / 2, gather + g * l.group / 2, w_stride,
                              l.group / 128, l.small, dot);
            else
              kern.dot4(xm + g * l.group, tile + g * l.group, w_stride, l.group, l.small, dot);
            for (int64_t i = 0; i < n; ++i) dots[i * l.groups + g] = dot[i];
          }
        }
        float* out = y + m * y_stride + r0;
        if (l.groups == 1) {  // one scale a row: the same arithmetic as row_sum's, in a loop that vectorizes
          const float* scale = w.scale + r0;
          const int32_t* wsum = w.wsum + r0;
          const float sa = act.scale[m];
          const int32_t zero = act.zero[m];
          for (int64_t i = 0; i < n; ++i)
            out[i] = clamp_out(
                sa * (scale[i] * static_cast<float>(dots_m[i] - zero * wsum[i])) + (bias ? bias[r0 + i] : 0.0f), lo,
                hi);
          continue;
        }
        for (int64_t i = 0; i < n; ++i) {
          const int64_t at = (r0 + i) * l.groups;
          const float sum = row_sum(w.scale + at, dots_m + i * l.groups, 1, w.wsum + at, act.zero[m], l.groups);
          out[i] = clamp_out(act.scale[m] * sum + (bias ? bias[r0 + i] : 0.0f), lo, hi);
        }
      }
      finish(y, y_stride, 0, a.rows, r0, n);
    });
  });
}

}  // namespace

void qgemm(const QWeights& w, const QActivations& a, const float* bias, float* y, int64_t y_stride, Isa isa,
           const QGemmOptions& options) {
  if (!options.range) return qgemm_ranged(w, a, bias, y, y_stride, isa, options, nullptr);
  // A slot per thread of qgemm's own region, each starting from the range given. Inside a region of the
  // caller's (none calls it so), the thread numbers are not qgemm's: the range is then taken after.
  if (in_parallel_work()) {
    qgemm_ranged(w, a, bias, y, y_stride, isa, options, nullptr);
    for (int64_t m = 0; m < a.rows; ++m)
      row_kernels(isa).range(y + m * y_stride, w.layout.rows, options.range, options.range + 1);
    return;
  }
  const int threads = team_threads();
  std::vector<float>& ranges = thread_scratch().ranges;
  ranges.assign(static_cast<std::size_t>(threads * kRangeSlot), 0.0f);
  for (int t = 0; t < threads; ++t) std::copy_n(options.range, 2, ranges.begin() + t * kRangeSlot);
  qgemm_ranged(w, a, bias, y, y_stride, isa, options, ranges.data());
  for (int t = 0; t < threads; ++t) {
    options.range[0] = std::min(options.range[0], ranges[static_cast<std::size_t>(t * kRangeSlot)]);
    options.range[1] = std::max(options.range[1], ranges[static_cast<std::size_t>(t * kRangeSlot + 1)]);
  }
}

const RowKernels& row_kernels(Isa isa) {
  return by_isa(isa, scalar_row_kernels, avx2_row_kernels, avx512_row_kernels)();
}

}  // namespace runtime
}  // namespace adze
