// The portable reference of every row kernel: plain loops over the formats row_kernels.h describes. The
// faster paths are tested against these.
#include "runtime/kernels/row_kernels.h"

namespace adze {
namespace runtime {
namespace {

constexpr int kPlaneWidths[] = {8, 4, 2, 1};  // widest first

// Value i (0..63) of a plane of width w starting at p.
inline uint32_t plane_value(const uint8_t* p, int w, int i) {
  switch (w) {
    case 8:
      return p[i];
    case 4:
      return i < 32 ? (p[i] & 0x0Fu) : (p[i - 32] >> 4);
    case 2:
      return (p[i & 15] >> (2 * (i >> 4))) & 3u;
    default:
      return (p[i >> 3] >> (i & 7)) & 1u;
  }
}

void unpack(const uint8_t* planes, int bits, int64_t chunks, int32_t offset, int8_t* out) {
  for (int64_t c = 0; c < chunks; ++c) {
    uint32_t value[64] = {};
    int shift = 0;
    for (const int w : kPlaneWidths) {
      if (!(bits & w)) continue;
      for (int i = 0; i < 64; ++i) value[i] |= plane_value(planes, w, i) << shift;
      planes += 8 * w;
      shift += w;
    }
    for (int i = 0; i < 64; ++i) out[c * 64 + i] = static_cast<int8_t>(static_cast<uint8_t>(value[i] - offset));
  }
}

void expand(const int8_t* kept, const uint64_t* mask, int64_t words, int8_t* dense) {
  for (int64_t w = 0; w < words; ++w)
    for (int b = 0; b < 64; ++b) dense[w * 64 + b] = (mask[w] >> b) & 1u ? *kept++ : 0;
}

int32_t dot(const uint8_t* x, const int8_t* w, int64_t n, bool) {
  int32_t s = 0;
  for (int64_t i = 0; i < n; ++i) s += static_cast<int32_t>(x[i]) * w[i];
  return s;
}

void dot4(const uint8_t* x, const int8_t* w, int64_t stride, int64_t n, bool small, int32_t* out) {
  for (int r = 0; r < 4; ++r) out[r] = dot(x, w + r * stride, n, small);
}

// Where value t of a chunk reads its activation in the pairs order, given its gather control g.
inline int64_t pairs_index(int t, uint32_t g) { return 64 * ((t >> 3) & 1) + 16 * (t >> 4) + g; }

void unpack_pairs(const uint8_t* planes, int bits, int64_t chunks, int32_t offset, int8_t* w, uint8_t* g) {
  for (int64_t c = 0; c < chunks; ++c, planes += 8 * bits + 16) {
    unpack(planes, bits, 1, offset, w + 64 * c);
    for (int t = 0; t < 64; ++t)
      g[64 * c + t] = static_cast<uint8_t>(4 * ((t & 7) >> 1) + plane_value(planes + 8 * bits, 2, t));
  }
}

int32_t pairs_dot(const uint8_t* x, const int8_t* w, const uint8_t* g, int64_t chunks) {
  int32_t s = 0;
  for (int64_t c = 0; c < chunks; ++c)
    for (int t = 0; t < 64; ++t) s += static_cast<int32_t>(x[128 * c + pairs_index(t, g[64 * c + t])]) * w[64 * c + t];
  return s;
}

void pairs_dot4(const uint8_t* x, const int8_t* w, const uint8_t* g, int64_t stride, int64_t chunks, bool,
                int32_t* out) {
  for (int r = 0; r < 4; ++r) out[r] = pairs_dot(x, w + r * stride, g + r * stride, chunks);
}

// One packed row of row_dot.
void one_row_dot(const uint8_t* planes, int bits, int32_t offset, bool pairs, const uint8_t* x, int64_t group_chunks,
                 int64_t groups, bool small, int32_t* dots) {
  int8_t w[64];
  uint8_t g[64];
  for (int64_t group = 0; group < groups; ++group) {
    dots[group] = 0;
    for (int64_t c = 0; c < group_chunks; ++c) {
      if (pairs) {
        unpack_pairs(planes, bits, 1, offset, w, g);
        dots[group] += pairs_dot(x, w, g, 1);
        planes += 8 * bits + 16;
        x += 128;
      } else {
        unpack(planes, bits, 1, offset, w);
        dots[group] += dot(x, w, 64, small);
        planes += 8 * bits;
        x += 64;
      }
    }
  }
}

void row_dot(const uint8_t* planes, int64_t row_bytes, int64_t rows, int bits, const int32_t* offset, bool pairs,
             const uint8_t* x, int64_t x_rows, int64_t x_stride, int64_t group_chunks, int64_t groups, bool small,
             int32_t* dots, int64_t dots_stride) {
  for (int64_t i = 0; i < x_rows; ++i)
    for (int64_t r = 0; r < rows; ++r)
      one_row_dot(planes + r * row_bytes, bits, offset[r], pairs, x + i * x_stride, group_chunks, groups, small,
                  dots + i * dots_stride + r * groups);
}

void range(const float* x, int64_t n, float* lo, float* hi) {
  float l = *lo, h = *hi;
  for (int64_t j = 0; j < n; ++j) {
    l = x[j] < l ? x[j] : l;  // a NaN compares false: never taken
    h = x[j] > h ? x[j] : h;
  }
  *lo = l;
  *hi = h;
}

void quantize(const float* x, int64_t n, float inv, float zf, uint8_t* q) {
  constexpr float kMagic = 12582912.0f;  // 1.5 · 2^23 (row_kernels.h); this unit has no FMA to contract into
  for (int64_t j = 0; j < n; ++j) {
    float v = zf + ((x[j] * inv + kMagic) - kMagic);
    v = v > 0.0f ? v : 0.0f;  // NaN → 0
    v = v < 255.0f ? v : 255.0f;
    q[j] = static_cast<uint8_t>(static_cast<int32_t>(v));
  }
}

void fake_quantize(const float* x, int64_t n, float inv, float zf, float scale, float* y) {
  constexpr float kMagic = 12582912.0f;
  for (int64_t j = 0; j < n; ++j) {
    float v = zf + ((x[j] * inv + kMagic) - kMagic);
    v = v > 0.0f ? v : 0.0f;  // NaN → 0
    v = v < 255.0f ? v : 255.0f;
    y[j] = (v - zf) * scale;
  }
}

}  // namespace

const RowKernels& scalar_row_kernels() {
  static const RowKernels k{unpack,  expand,  dot,   dot4,     row_dot, unpack_pairs,  pairs_dot4, nullptr,
                            nullptr, nullptr, range, quantize, nullptr, fake_quantize, 1};
  return k;
}

}  // namespace runtime
}  // namespace adze
