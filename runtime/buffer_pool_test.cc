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

// Made directly over a block (not through at::from_blob): still an ordinary CPU tensor of the sizes, strides
// and dtype asked for, 64-byte aligned, whose storage spans exactly its elements and which ATen's ops accept.
TEST(BufferPool, OutputsAreOrdinaryCpuTensorsOverAlignedBuffers) {
  const std::shared_ptr<BufferPool> pool = BufferPool::make();
  const PoolScope scope(pool.get());
  at::Tensor cl = empty_output({2, 3, 4, 5}, at::kFloat, {60, 1, 15, 3});
  EXPECT_EQ(cl.sizes(), at::IntArrayRef({2, 3, 4, 5}));
  EXPECT_EQ(cl.strides(), at::IntArrayRef({60, 1, 15, 3}));
  EXPECT_TRUE(cl.is_contiguous(at::MemoryFormat::ChannelsLast));
  EXPECT_FALSE(cl.is_contiguous());
  EXPECT_EQ(cl.device(), at::Device(at::kCPU));
  EXPECT_EQ(cl.storage().nbytes(), 120 * sizeof(float));
  EXPECT_EQ(reinterpret_cast<std::uintptr_t>(cl.data_ptr()) % 64, 0u);
  EXPECT_FALSE(cl.requires_grad());
  cl.copy_(torch::arange(120, torch::kFloat).reshape({2, 3, 4, 5}));
  EXPECT_TRUE(torch::equal(cl.contiguous(), torch::arange(120, torch::kFloat).reshape({2, 3, 4, 5})));
  at::Tensor ids = empty_output({7}, at::kLong);
  ids.fill_(int64_t{1} << 40);
  EXPECT_EQ(ids.scalar_type(), at::kLong);
  EXPECT_EQ(ids.sum().item<int64_t>(), int64_t{7} << 40);
  const at::Tensor view = cl.permute({0, 2, 3, 1});  // a view shares the block: it outlives `cl` safely
  cl = at::Tensor();
  EXPECT_EQ(pool->cached_bytes(), 0u);
  EXPECT_EQ(view.contiguous().view(-1)[1].item<float>(), 20.0f);
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
