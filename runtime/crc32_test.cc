// The pclmul CRC-32 against zlib's: every length to 300 (the 64-byte folds, the 16-byte folds and the tails),
// starts at every offset within 16 bytes, seeds other than 0 (a checksum continued), and 11 MB in one call.
#include <gtest/gtest.h>
#include <zlib.h>

#include <random>
#include <vector>

#include "runtime/crc32_clmul.h"

namespace adze {
namespace runtime {
namespace {

TEST(Crc32Clmul, IsZlibsCrc32) {
  if (!crc32_clmul_available()) GTEST_SKIP() << "this CPU has no PCLMULQDQ";
  std::mt19937 rng(9);
  std::vector<uint8_t> buf(11 << 20);
  for (auto& b : buf) b = static_cast<uint8_t>(rng());
  for (int64_t offset = 0; offset < 16; ++offset)
    for (int64_t n = 0; n <= 300; ++n)
      for (const uint32_t seed : {0u, 0xDEADBEEFu}) {
        const uint8_t* p = buf.data() + offset;
        ASSERT_EQ(crc32_clmul(seed, p, n), static_cast<uint32_t>(::crc32(seed, p, static_cast<uInt>(n))))
            << "offset " << offset << ", " << n << " bytes, seed " << seed;
      }
  EXPECT_EQ(crc32_clmul(0, buf.data(), static_cast<int64_t>(buf.size())),
            static_cast<uint32_t>(::crc32(0, buf.data(), static_cast<uInt>(buf.size()))));
  // A checksum continued over two pieces is the checksum of the whole.
  const uint32_t first = crc32_clmul(0, buf.data(), 1000);
  EXPECT_EQ(crc32_clmul(first, buf.data() + 1000, 5000), crc32_clmul(0, buf.data(), 6000));
}

}  // namespace
}  // namespace runtime
}  // namespace adze
