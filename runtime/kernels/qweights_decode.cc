#include "runtime/kernels/qweights_decode.h"

#include <algorithm>
#include <cstring>

#include "runtime/kernels/row_kernels.h"

namespace adze {
namespace runtime {
namespace {

// Value i (0..63) of a chunk's 2-bit position plane (row_kernels.h: bits [2j, 2j+2) of byte i hold value i + 16j).
inline int position_of(const uint8_t* plane, int i) { return (plane[i & 15] >> (2 * (i >> 4))) & 3; }

}  // namespace

void decode_row(const QWeights& w, int64_t row, int8_t* values, uint8_t* kept, Isa isa) {
  const QWeightLayout& l = w.layout;
  const RowKernels& kernels = row_kernels(isa);
  const uint8_t* planes = w.planes + row * l.plane_row_bytes();
  int8_t chunk[64];
  const int64_t k = l.k;  // a local: the byte stores below could alias the layout, as far as the compiler knows
  std::memset(values, 0, static_cast<std::size_t>(k));
  std::memset(kept, 0, static_cast<std::size_t>(k));
  switch (l.pattern) {
    case QPattern::kDense:
      for (int64_t c = 0; c * 64 < k; ++c) {
        kernels.unpack(planes + c * l.chunk_bytes(), l.bits, 1, w.offset[row], chunk);
        const auto n = static_cast<std::size_t>(std::min<int64_t>(64, k - c * 64));
        std::memcpy(values + c * 64, chunk, n);
        std::memset(kept + c * 64, 1, n);
      }
      return;
    case QPattern::kMask: {
      const uint64_t* mask = w.mask + row * l.mask_row_words();
      int64_t n = 0;
      for (int64_t j = 0; j < l.k; ++j) {
        if (!((mask[j / 64] >> (j % 64)) & 1u)) continue;
        if (n % 64 == 0) kernels.unpack(planes + (n / 64) * l.chunk_bytes(), l.bits, 1, w.offset[row], chunk);
        values[j] = chunk[n % 64];
        kept[j] = 1;
        ++n;
      }
      return;
    }
    case QPattern::kPairs:
      for (int64_t c = 0; c < l.kept_pad / 64; ++c) {
        const uint8_t* at = planes + c * l.chunk_bytes();
        kernels.unpack(at, l.bits, 1, w.offset[row], chunk);
        for (int i = 0; i < 64; ++i) {
          const int64_t j = c * 128 + 4 * (i / 2) + position_of(at + 8 * l.bits, i);
          if (j < l.k) values[j] = chunk[i], kept[j] = 1;
        }
      }
      return;
  }
}

std::string qweights_unstorable(const QWeightLayout& l) {
  if (l.pattern == QPattern::kPairs && l.k % 4 != 0)
    return "a 2:4 pair layout whose last group is cut short by the reduction length";
  return "";
}

std::string qweights_corruption(const QWeights& w) {
  const QWeightLayout& l = w.layout;
  for (int64_t r = 0; r < l.rows; ++r) {
    if (l.pattern == QPattern::kMask) {
      int64_t n = 0;
      const uint64_t* mask = w.mask + r * l.mask_row_words();
      for (int64_t i = 0; i < l.mask_row_words(); ++i) n += __builtin_popcountll(mask[i]);
      const uint64_t beyond = l.k % 64 == 0 ? 0 : mask[l.k / 64] >> (l.k % 64);
      if (n != l.kept || beyond != 0)
        return "mask row " + std::to_string(r) + " keeps " + std::to_string(n) + " weights";
    } else if (l.pattern == QPattern::kPairs) {
      const uint8_t* planes = w.planes + r * l.plane_row_bytes();
      for (int64_t c = 0; c < l.kept_pad / 64; ++c) {
        const uint8_t* positions = planes + c * l.chunk_bytes() + 8 * l.bits;
        for (int i = 0; i < 64; i += 2)
          if (position_of(positions, i) == position_of(positions, i + 1))
            return "pair positions repeat in row " + std::to_string(r);
      }
    }
  }
  return "";
}

}  // namespace runtime
}  // namespace adze
