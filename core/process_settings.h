// Process-wide settings that decide how fast libtorch work runs here, which adze's command line applies at start
// and a program using adze's library may apply too (docs/api.md, "Threads and memory").
//
// - The BLAS under ATen (OpenBLAS, MKL) keeps a thread pool of its own, sized to the machine, which neither
//   at::set_num_threads nor OpenMP sizes. Its idle workers spin on sched_yield after every call: at one thread
//   per process they take the other core, and two data-parallel ranks or sweep workers then fight them.
// - Where OpenMP binds threads to places (OMP_PROC_BIND, OMP_PLACES; an HPC site's usual setting), libgomp binds
//   this process's first thread to the first place as it loads, and a child process inherits that one CPU: an
//   `adze bench` child's two threads then shared one CPU and ran ResNet-18 at 40 ms instead of 0.75 ms. Counting
//   CPUs by the machine's total (std::thread::hardware_concurrency) misleads the same way under `taskset` or a
//   container's cpuset.
// - glibc returns large freed blocks to the kernel (mmap per allocation, trimming the heap), so a tensor
//   allocated and freed every training step faults in every page of it anew
//   (ProcessSettings.FreedMemoryIsReusedWithoutFaultingItInAgain; docs/results/finetune-step-2026-11-30.md).
#pragma once

#include <cstddef>
#include <vector>

namespace adze {

/// Sizes the BLAS library's own thread pool (OpenBLAS or MKL, whichever is loaded; none: nothing happens).
/// Returns whether a BLAS thread setting was found.
bool set_blas_threads(int threads);

/// Keeps freed memory in the process for reuse instead of returning it to the kernel: blocks up to
/// kReusedBlockBytes come from the heap, and the heap is trimmed only past kTrimBytes free at its top. Memory
/// then stays at its peak until the process ends, which suits adze's one-job processes. Returns whether glibc
/// took both settings (false with another C library).
bool reuse_freed_memory();
constexpr std::size_t kReusedBlockBytes = std::size_t{32} << 20;  // glibc's largest mmap threshold on 64 bits
constexpr std::size_t kTrimBytes = std::size_t{512} << 20;

/// This thread's CPU affinity (ascending; empty where it cannot be read), and setting it (false where refused).
std::vector<int> this_thread_cpus();
bool set_this_thread_cpus(const std::vector<int>& cpus);

/// The CPUs this process may run its threads on: where OpenMP binds threads, the CPUs of its places (all that
/// the process was given when it started, unless OMP_PLACES names fewer); otherwise this thread's CPU affinity
/// (taskset, a cpuset, mpirun's binding). Ascending; never empty (the CPU this thread runs on, at worst).
std::vector<int> usable_cpus();

/// While it lives, a child process started from this thread runs on usable_cpus() rather than on the one CPU
/// OpenMP may have bound this thread to; the thread's own CPU affinity is restored after. Nothing changes where
/// OpenMP binds nothing.
class ChildCpus {
 public:
  ChildCpus();
  ~ChildCpus();
  ChildCpus(const ChildCpus&) = delete;
  ChildCpus& operator=(const ChildCpus&) = delete;

 private:
  std::vector<int> saved_;  // this thread's CPUs before, where they were widened; empty: nothing to restore
};

}  // namespace adze
