#include "core/process_settings.h"

#include <dlfcn.h>

#include <initializer_list>

#if defined(__GLIBC__)
#include <malloc.h>
#endif

namespace adze {

bool set_blas_threads(int threads) {
  bool found = false;
  // Looked up in the loaded libraries, so that adze links no BLAS of its own choosing.
  for (const char* name : {"openblas_set_num_threads", "MKL_Set_Num_Threads"})
    if (void* set = dlsym(RTLD_DEFAULT, name)) {
      reinterpret_cast<void (*)(int)>(set)(threads);
      found = true;
    }
  return found;
}

bool reuse_freed_memory() {
#if defined(__GLIBC__)
  return mallopt(M_MMAP_THRESHOLD, static_cast<int>(kReusedBlockBytes)) == 1 &&
         mallopt(M_TRIM_THRESHOLD, static_cast<int>(kTrimBytes)) == 1;
#else
  return false;
#endif
}

}  // namespace adze
