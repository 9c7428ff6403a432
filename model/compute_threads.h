// The threads compute runs on, set in one call: libtorch's intra-op pool, OpenMP's (the packed runtime's
// kernels; with Debian's libtorch, ATen's pool is OpenMP's too) and the BLAS's own (core/process_settings.h).
// The CLI applies --threads through it; a program using adze's library may call it as well (docs/cpp-api.md,
// "Threads and memory").
#pragma once

namespace adze {

/// Sizes every compute thread pool of this process to `threads` (at least 1).
void set_compute_threads(int threads);

}  // namespace adze
