#include "runtime/buffer_pool.h"

#include <ATen/ATen.h>
#include <c10/util/strides.h>

#include <cstdlib>
#include <new>

namespace adze {
namespace runtime {
namespace {

thread_local BufferPool* current_pool = nullptr;

// 64-byte aligned, as ATen's own CPU allocator aligns (a cache line; every vector load the kernels make).
void* aligned(std::size_t bytes) {
  void* p = nullptr;
  if (posix_memalign(&p, 64, bytes) != 0) throw std::bad_alloc();
  return p;
}

// The bytes a tensor of these sizes and strides spans (0 when it has no elements).
std::size_t span_bytes(c10::IntArrayRef sizes, c10::IntArrayRef strides, at::ScalarType dtype) {
  int64_t last = 0;
  for (std::size_t d = 0; d < sizes.size(); ++d) {
    if (sizes[d] == 0) return 0;
    last += (sizes[d] - 1) * strides[d];
  }
  return static_cast<std::size_t>(last + 1) * c10::elementSize(dtype);
}

}  // namespace

std::shared_ptr<BufferPool> BufferPool::make(std::size_t max_cached_bytes) {
  return std::shared_ptr<BufferPool>(new BufferPool(max_cached_bytes));
}

BufferPool::~BufferPool() {
  for (auto& [bytes, p] : free_) std::free(p);
}

void* BufferPool::take(std::size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    const auto it = free_.find(bytes);
    if (it != free_.end()) {
      void* p = it->second;
      free_.erase(it);
      cached_bytes_ -= bytes;
      return p;
    }
    ++fresh_;
  }
  return aligned(bytes);
}

void BufferPool::give_back(void* p, std::size_t bytes) {
  {
    std::lock_guard<std::mutex> lock(mutex_);
    if (cached_bytes_ + bytes <= max_cached_bytes_) {
      free_.emplace(bytes, p);
      cached_bytes_ += bytes;
      return;
    }
  }
  std::free(p);
}

at::Tensor BufferPool::empty(c10::IntArrayRef sizes, c10::IntArrayRef strides, at::ScalarType dtype) {
  const at::DimVector contiguous = c10::contiguous_strides(sizes);
  if (strides.empty()) strides = contiguous;
  const std::size_t bytes = span_bytes(sizes, strides, dtype);
  if (bytes == 0) return at::empty_strided(sizes, strides, at::TensorOptions().dtype(dtype));
  void* p = take(bytes);
  std::shared_ptr<BufferPool> self = shared_from_this();
  return at::from_blob(
      p, sizes, strides, [self, bytes](void* q) { self->give_back(q, bytes); }, at::TensorOptions().dtype(dtype));
}

std::size_t BufferPool::cached_bytes() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return cached_bytes_;
}

int64_t BufferPool::fresh_allocations() const {
  std::lock_guard<std::mutex> lock(mutex_);
  return fresh_;
}

PoolScope::PoolScope(BufferPool* pool) : previous_(current_pool) { current_pool = pool; }
PoolScope::~PoolScope() { current_pool = previous_; }

at::Tensor empty_output(c10::IntArrayRef sizes, at::ScalarType dtype, c10::IntArrayRef strides) {
  if (current_pool) return current_pool->empty(sizes, strides, dtype);
  const auto options = at::TensorOptions().dtype(dtype);
  return strides.empty() ? at::empty(sizes, options) : at::empty_strided(sizes, strides, options);
}

at::Tensor contiguous_output(const at::Tensor& x) {
  if (x.is_contiguous() || !current_pool) return x.contiguous();
  at::Tensor y = current_pool->empty(x.sizes(), {}, x.scalar_type());
  y.copy_(x);
  return y;
}

}  // namespace runtime
}  // namespace adze
