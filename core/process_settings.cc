#include "core/process_settings.h"

#include <dlfcn.h>
#include <sched.h>

#include <algorithm>
#include <initializer_list>
#include <set>

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

std::vector<int> this_thread_cpus() {
  std::vector<int> cpus;
  cpu_set_t set;
  CPU_ZERO(&set);
  if (sched_getaffinity(0, sizeof set, &set) == 0)
    for (int c = 0; c < CPU_SETSIZE; ++c)
      if (CPU_ISSET(c, &set)) cpus.push_back(c);
  return cpus;
}

bool set_this_thread_cpus(const std::vector<int>& cpus) {
  cpu_set_t set;
  CPU_ZERO(&set);
  for (int c : cpus)
    if (c >= 0 && c < CPU_SETSIZE) CPU_SET(c, &set);
  return sched_setaffinity(0, sizeof set, &set) == 0;
}

namespace {

// The CPUs of OpenMP's places where it binds threads to them, else none. Looked up in the loaded libraries (as
// the BLAS's setting is), so that core links no OpenMP: a program without it has no places.
std::vector<int> openmp_place_cpus() {
  using IntFn = int (*)();
  using PlaceProcs = int (*)(int);
  using PlaceIds = void (*)(int, int*);
  const auto proc_bind = reinterpret_cast<IntFn>(dlsym(RTLD_DEFAULT, "omp_get_proc_bind"));
  const auto num_places = reinterpret_cast<IntFn>(dlsym(RTLD_DEFAULT, "omp_get_num_places"));
  const auto place_procs = reinterpret_cast<PlaceProcs>(dlsym(RTLD_DEFAULT, "omp_get_place_num_procs"));
  const auto place_ids = reinterpret_cast<PlaceIds>(dlsym(RTLD_DEFAULT, "omp_get_place_proc_ids"));
  if (!proc_bind || !num_places || !place_procs || !place_ids || proc_bind() == 0) return {};  // 0: omp_proc_bind_false
  std::set<int> cpus;
  for (int p = 0; p < num_places(); ++p) {
    std::vector<int> ids(static_cast<std::size_t>(std::max(place_procs(p), 0)));
    if (!ids.empty()) place_ids(p, ids.data());
    cpus.insert(ids.begin(), ids.end());
  }
  return {cpus.begin(), cpus.end()};
}

}  // namespace

std::vector<int> usable_cpus() {
  std::vector<int> cpus = openmp_place_cpus();
  if (cpus.empty()) cpus = this_thread_cpus();
  if (cpus.empty()) cpus.push_back(std::max(sched_getcpu(), 0));
  return cpus;
}

ChildCpus::ChildCpus() {
  const std::vector<int> places = openmp_place_cpus();
  if (places.empty()) return;
  std::vector<int> now = this_thread_cpus();
  if (now == places || now.empty()) return;
  if (set_this_thread_cpus(places)) saved_ = std::move(now);
}

ChildCpus::~ChildCpus() {
  if (!saved_.empty()) set_this_thread_cpus(saved_);
}

}  // namespace adze
