// Gradient averaging over MPI (Open MPI's MPI_Allreduce on MPI_COMM_WORLD), for data-parallel fine-tuning
// under mpirun (compress/gradient_sync.h): `adze compress --data-parallel --data-parallel-backend mpi`.
// Ranks on one host exchange through shared memory, and a rank waiting for the others polls instead of
// sleeping, so an average costs what copying its bytes costs. Gloo's TCP pairs (distributed/gloo_sync.h) wake a
// thread per message, which on a small virtual machine can cost more than the step it averages
// (docs/results/ddp-backends-2026-12-02.md). Gloo works without mpirun; MPI needs it.
#pragma once

#include <memory>

#include "compress/gradient_sync.h"

namespace adze {

/// This process's rank of the mpirun job, on its own copy of MPI_COMM_WORLD. Initializes MPI (threads
/// serialized) unless something already has, and finalizes it when the last copy of the returned sync is gone
/// if it initialized it. Error(kInvalidArgument) when the process was not started by mpirun. The tensors it
/// averages must be contiguous float32 or float64 (gradients and GradientAverage's buckets are).
std::shared_ptr<GradientSync> mpi_gradient_sync();

}  // namespace adze
