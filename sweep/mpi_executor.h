// The sweep on MPI ranks (`mpirun -n N adze sweep run FILE --out DIR --mpi`): rank 0 owns the store, the only
// writer, and hands out runs one at a time to whichever rank asks, itself included; every rank runs its runs in
// a RunSlot of its own as the local executor does (run_slot.h) and tells rank 0 how the attempt ended. DIR must
// be on a file system every rank sees. Open MPI 4 has no fault tolerance: a dead rank ends the job, and the
// store's leases (rank 0's pid) make the next sweep take the unfinished runs back.
#pragma once

#include <string>

#include "sweep/local_executor.h"

namespace adze {

/// The rank and size of this process in MPI_COMM_WORLD, after initializing MPI (once).
struct MpiWorld {
  int rank = 0, size = 1;
};
MpiWorld mpi_init();
void mpi_finalize();
/// Rank 0, before any run was handed out (an error while preparing the sweep): tells every other rank, each
/// waiting for its first run, that there is none, so that the job ends cleanly.
void mpi_stop_workers(const MpiWorld& world);

/// Rank 0: runs the store's pending runs on every rank; returns what they did. Other ranks: runs what rank 0
/// hands out until it says there is nothing left; returns an empty summary. `store` is used on rank 0 only.
ExecutorSummary run_pending_mpi(SweepStore* store, const std::string& dir, const ExecutorOptions& options,
                                const MpiWorld& world);

}  // namespace adze
