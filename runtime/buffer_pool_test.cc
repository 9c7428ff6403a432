#include "runtime/buffer_pool.h"

#include <gtest/gtest.h>
#include <torch/torch.h>

namespace adze {
namespace runtime {
namespace {

// One "run" of a schedule: the same output sizes every time, most of them freed before the run ends.
at::Tensor one_run() {
  at::Tensor a = empty_output({64, 96});
  a.fill_(1.0f);
  at::Tensor b = empty_output({1, 3, 8, 8}, at::kFloat, {192, 1, 24, 3});  // channels last
  b.fill_(2.0f);
  at::Tensor c = contiguous_output(b);
  return c + a.sum();
}

TEST(BufferPool, ARunAfterTheFirstTakesEveryBufferFromThePool) {
  const std::shared_ptr<BufferPool> pool = BufferPool::make();
  {
    const PoolScope scope(pool.get());
    (void)one_run();
  }
  const int64_t first = pool->fresh_allocations();
  EXPECT_EQ(first, 3);
  for (int r = 0; r < 5; ++r) {
    const PoolScope scope(pool.get());
    const at::Tensor y = one_run();
    EXPECT_TRUE(y.is_contiguous());
    EXPECT_TRUE(torch::equal(y, torch::full({1, 3, 8, 8}, 2.0f + 64 * 96)));
  }
  EXPECT_EQ(pool->fresh_allocations(), first);
  EXPECT_EQ(pool->cached_bytes(), (64 * 96 + 192 + 192) * sizeof(float));
}

TEST(BufferPool, AnOutputOutlivesItsPoolAndWithoutAScopeAtenAllocates) {
  at::Tensor kept;
  {
    std::shared_ptr<BufferPool> pool = BufferPool::make();
    const PoolScope scope(pool.get());
    kept = empty_output({1000});
    kept.fill_(3.0f);
  }  // the pool's last owner is now the tensor
  EXPECT_EQ(kept.sum().item<float>(), 3000.0f);
  const at::Tensor plain = empty_output({4, 5}, at::kInt);
  EXPECT_EQ(plain.scalar_type(), at::kInt);
  EXPECT_TRUE(plain.storage().resizable());  // ATen's own storage
  EXPECT_EQ(empty_output({0, 7}).numel(), 0);
}

TEST(BufferPool, UnusedBuffersBeyondTheCapGoBackToTheSystem) {
  const std::shared_ptr<BufferPool> pool = BufferPool::make(/*max_cached_bytes=*/4096);
  {
    const PoolScope scope(pool.get());
    at::Tensor small = empty_output({256});   // 1 KiB
    at::Tensor large = empty_output({4096});  // 16 KiB: over the cap, freed
  }
  EXPECT_EQ(pool->cached_bytes(), 1024u);
}

}  // namespace
}  // namespace runtime
}  // namespace adze
