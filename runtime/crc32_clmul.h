// CRC-32 with zlib's polynomial by carry-less multiplication (PCLMULQDQ), for the checksums a packed file is
// opened with (runtime/FORMAT.md: adze_crc32, data_crc32): folding 64 bytes at a time instead of zlib's table
// loop. Opening ResNet-18 W8A8's 11 MB file (`adze bench --runs 5 --warmup 0 --rounds 5`, open time, the builds
// before and after alternated three times): 13.3–13.8 -> 11.4–12.7 ms. The algorithm is the folding of Gopal et al.,
// "Fast CRC Computation for Generic Polynomials Using PCLMULQDQ Instruction" (Intel, 2009), with the bit-reflected
// constants of zlib's polynomial that Linux's crc32-pclmul and Chromium's zlib use; the first and last bytes that do
// not fill 16 go through zlib. crc32_test checks it against zlib on every length to 300, unaligned starts and a large
// buffer.
#pragma once

#include <cstdint>

namespace adze {
namespace runtime {

/// Whether this CPU has PCLMULQDQ (and SSE4.1).
bool crc32_clmul_available();

/// zlib's crc32(crc, data, bytes), the same value; only where crc32_clmul_available().
uint32_t crc32_clmul(uint32_t crc, const uint8_t* data, int64_t bytes);

}  // namespace runtime
}  // namespace adze
