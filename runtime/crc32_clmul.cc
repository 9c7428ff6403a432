#include "runtime/crc32_clmul.h"

#include <immintrin.h>
#include <zlib.h>

namespace adze {
namespace runtime {
namespace {

// One fold of a 128-bit remainder x over the next 16 (or 64) bytes: x·k (its halves by the constant's) plus the
// data.
__attribute__((target("pclmul,sse4.1"))) inline __m128i fold(__m128i x, __m128i k, __m128i data) {
  return _mm_xor_si128(_mm_xor_si128(_mm_clmulepi64_si128(x, k, 0x00), _mm_clmulepi64_si128(x, k, 0x11)), data);
}

// The CRC register (not inverted, as zlib keeps it between its pre- and post-inversion) over n bytes, n ≥ 64 and
// a multiple of 16.
__attribute__((target("pclmul,sse4.1"))) uint32_t fold_blocks(uint32_t crc, const uint8_t* p, int64_t n) {
  const auto load = [](const uint8_t* at) { return _mm_loadu_si128(reinterpret_cast<const __m128i*>(at)); };
  const __m128i k2k1 = _mm_set_epi64x(0x1c6e41596, 0x154442bd4);  // x^(4·128 ± 32) mod P, reflected
  const __m128i k4k3 = _mm_set_epi64x(0x0ccaa009e, 0x1751997d0);  // x^(128 ± 32) mod P
  const __m128i k5 = _mm_set_epi64x(0, 0x163cd6124);              // x^64 mod P
  const __m128i poly = _mm_set_epi64x(0x1F7011641, 0x1DB710641);  // Barrett: μ, P
  const __m128i mask32 = _mm_set_epi32(0, 0, 0, -1);
  __m128i x1 = _mm_xor_si128(load(p), _mm_cvtsi32_si128(static_cast<int>(crc))), x2 = load(p + 16), x3 = load(p + 32),
          x4 = load(p + 48);
  p += 64;
  n -= 64;
  for (; n >= 64; n -= 64, p += 64) {
    x1 = fold(x1, k2k1, load(p));
    x2 = fold(x2, k2k1, load(p + 16));
    x3 = fold(x3, k2k1, load(p + 32));
    x4 = fold(x4, k2k1, load(p + 48));
  }
  x1 = fold(fold(fold(x1, k4k3, x2), k4k3, x3), k4k3, x4);
  for (; n >= 16; n -= 16, p += 16) x1 = fold(x1, k4k3, load(p));
  // 128 bits to 64 (adding 32 zero bits), to 32, then the Barrett reduction.
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 8), _mm_clmulepi64_si128(k4k3, x1, 0x01));
  x1 = _mm_xor_si128(_mm_srli_si128(x1, 4), _mm_clmulepi64_si128(_mm_and_si128(x1, mask32), k5, 0x00));
  __m128i t = _mm_and_si128(_mm_clmulepi64_si128(_mm_and_si128(x1, mask32), poly, 0x10), mask32);
  t = _mm_clmulepi64_si128(t, poly, 0x00);
  return static_cast<uint32_t>(_mm_extract_epi32(_mm_xor_si128(x1, t), 1));
}

}  // namespace

bool crc32_clmul_available() {
  __builtin_cpu_init();
  return __builtin_cpu_supports("pclmul") && __builtin_cpu_supports("sse4.1");
}

uint32_t crc32_clmul(uint32_t crc, const uint8_t* data, int64_t bytes) {
  if (bytes < 64) return static_cast<uint32_t>(::crc32(crc, data, static_cast<uInt>(bytes)));
  const int64_t body = bytes / 16 * 16;
  const uint32_t folded = ~fold_blocks(~crc, data, body);  // zlib's pre- and post-inversion
  return static_cast<uint32_t>(::crc32(folded, data + body, static_cast<uInt>(bytes - body)));
}

}  // namespace runtime
}  // namespace adze
