// Gradient averaging over a c10d Gloo process group (libtorch's ProcessGroupGloo), for data-parallel
// fine-tuning (compress/gradient_sync.h). The ranks meet through a store: a FileStore on a path every rank
// sees, or a TCPStore that rank 0 serves.
#pragma once

#include <memory>
#include <optional>
#include <string>

#include "compress/gradient_sync.h"

namespace adze {

struct Rendezvous {
  int rank = 0, size = 1;
  std::string file;  ///< a FileStore's path (every rank the same); else a TCPStore at host:port
  std::string host = "127.0.0.1";
  int port = 0;
  double timeout_s = 300;
};

/// Joins the group (blocking until every rank has). Error(kInvalidArgument) for a rank outside [0, size), a
/// size < 1, or no store; Error(kIo) when the ranks do not meet within the timeout.
std::shared_ptr<GradientSync> gloo_gradient_sync(const Rendezvous& r);

/// The rendezvous the environment describes: rank and size from ADZE_RANK and ADZE_WORLD_SIZE, else Open MPI's
/// OMPI_COMM_WORLD_RANK and OMPI_COMM_WORLD_SIZE; the store from ADZE_STORE (a file path) or ADZE_MASTER
/// (host:port, a TCPStore). Null when neither names a size; Error(kInvalidArgument) naming the variable when
/// one is malformed or the store is missing.
std::optional<Rendezvous> rendezvous_from_environment();

}  // namespace adze
