// The output buffers of the runtime's ops, kept from one run to the next. A model's schedule asks for the same
// sizes on every run, so after the first run every output of the runtime's own kernels (integer layers, the
// float kernels, depthwise convolutions) comes from buffers the last run gave back: no malloc of a large block,
// and above all no fresh pages for the kernel to fault in and zero (glibc maps blocks over 128 KiB afresh on
// every allocation and unmaps them on free, which cost a MobileNet-V2 at 64×64 about a third of its run).
//
// A PackedModel owns one pool and makes it current on the thread that runs it (PoolScope); the runtime's ops
// take their outputs from empty_output(), which falls back to ATen's allocator when no pool is current. A
// tensor keeps its pool alive, so an output the caller holds stays valid after the model is gone; when it is
// freed its buffer goes back to the pool (or to the system, once the pool holds max_cached_bytes unused).
#pragma once

#include <ATen/core/Tensor.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace adze {
namespace runtime {

class BufferPool : public std::enable_shared_from_this<BufferPool> {
 public:
  static constexpr std::size_t kDefaultMaxCachedBytes = std::size_t{256} << 20;
  static std::shared_ptr<BufferPool> make(std::size_t max_cached_bytes = kDefaultMaxCachedBytes);

  /// An uninitialised float/int tensor of `sizes` (with `strides`, or contiguous when empty) whose storage is a
  /// buffer of this pool.
  at::Tensor empty(c10::IntArrayRef sizes, c10::IntArrayRef strides, at::ScalarType dtype);
  /// Bytes held unused, and buffers handed out so far that were not reused (the first run's, and any size seen
  /// once): how tests and benchmarks see the pool at work.
  std::size_t cached_bytes() const;
  int64_t fresh_allocations() const;
  ~BufferPool();

 private:
  explicit BufferPool(std::size_t max_cached_bytes) : max_cached_bytes_(max_cached_bytes) {}
  void* take(std::size_t bytes);     // a block: a header's cache line, then `bytes` for the tensor
  static void release(void* block);  // a tensor's deleter: its block back to the pool that the header names
  void give_back(void* block, std::size_t bytes);
  const std::size_t max_cached_bytes_;
  mutable std::mutex mutex_;
  std::unordered_map<std::size_t, std::vector<void*>> free_;  ///< unused blocks by their tensor's bytes
  std::size_t cached_bytes_ = 0;
  int64_t fresh_ = 0;
};

/// While alive, empty_output() on this thread takes its buffers from `pool` (scopes nest; null: no pool).
class PoolScope {
 public:
  explicit PoolScope(BufferPool* pool);
  ~PoolScope();
  PoolScope(const PoolScope&) = delete;
  PoolScope& operator=(const PoolScope&) = delete;

 private:
  BufferPool* previous_;
};

/// A tensor for an op's output: from the current pool, else ATen's empty. `strides` empty: contiguous.
at::Tensor empty_output(c10::IntArrayRef sizes, at::ScalarType dtype = at::kFloat, c10::IntArrayRef strides = {});
/// x's values in a contiguous tensor from the current pool (x itself when it is contiguous already).
at::Tensor contiguous_output(const at::Tensor& x);

}  // namespace runtime
}  // namespace adze
