// What the machine's cores give at this moment: a probe timed beside a model, so that a thread-scaling figure
// measured on a shared or virtual machine can be read against what any program could have had.
#pragma once

namespace adze {
namespace runtime {

/// Each thread of the OpenMP team (omp_get_max_threads(): `--threads`) runs the same fixed arithmetic, 6.3
/// million multiplies and adds in registers with no memory traffic and no synchronization until the end;
/// returns the wall time of the whole team, in seconds (about half a millisecond on one thread).
///
/// Its time at T threads against its time at one, times T, is the number of cores' worth of arithmetic the
/// machine gave at T threads: T on T idle cores of their own, less where the cores are shared (two virtual CPUs
/// on one physical core's hyperthreads, a neighbour's load on the host). No program's speed-up at T threads can
/// exceed it for long.
double machine_probe_seconds();

/// Threads 0 and 1 of the OpenMP team (omp_get_max_threads(): `--threads`) pass a cache line to each other and
/// back, 2,000 times (or for 2 ms, where they share one CPU); returns the seconds of one round trip (0 on fewer than
/// two threads). A model split over threads pays about this at every barrier, and a part of it for every line one
/// thread reads that another wrote. On a virtual machine it moves with where the host puts the virtual CPUs: on the
/// two-vCPU EPYC guest, 110 ns in one spell and 500 ns in another (bench/cross_core_bench), and ResNet-18's two-thread
/// speed-up with it.
double handoff_probe_seconds();

}  // namespace runtime
}  // namespace adze
