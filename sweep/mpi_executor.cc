#include "sweep/mpi_executor.h"

#include <mpi.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <map>
#include <optional>
#include <thread>

#include "core/error.h"
#include "sweep/run_slot.h"

namespace adze {
namespace {

enum Tag : int { kAsk = 1, kAssign = 2, kOutcome = 3 };

// An attempt's outcome as four numbers on the wire.
struct Outcome {
  double status = 0, timed_out = 0, wall_s = 0, log_from = 0;
};

Outcome outcome_of(const Attempt& a) {
  return {static_cast<double>(a.status), a.timed_out ? 1.0 : 0.0, a.wall_s, static_cast<double>(a.log_from)};
}
Attempt attempt_of(const Outcome& o) {
  Attempt a;
  a.status = static_cast<int>(o.status);
  a.timed_out = o.timed_out != 0;
  a.wall_s = o.wall_s;
  a.log_from = static_cast<int64_t>(o.log_from);
  return a;
}

void send_id(const std::string& id, int to) {
  MPI_Send(id.data(), static_cast<int>(id.size()), MPI_CHAR, to, kAssign, MPI_COMM_WORLD);
}

std::string receive_id() {
  MPI_Status status;
  MPI_Probe(0, kAssign, MPI_COMM_WORLD, &status);
  int count = 0;
  MPI_Get_count(&status, MPI_CHAR, &count);
  std::string id(static_cast<std::size_t>(count), '\0');
  MPI_Recv(id.data(), count, MPI_CHAR, 0, kAssign, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
  return id;
}

// A rank other than 0: ask, run, tell, until rank 0 answers with no id.
void work(const std::string& dir, const ExecutorOptions& options) {
  RunSlot slot(options);
  for (;;) {
    char ask = 0;
    MPI_Send(&ask, 1, MPI_CHAR, 0, kAsk, MPI_COMM_WORLD);
    const std::string id = receive_id();
    if (id.empty()) return;
    slot.start(dir, id);
    const Outcome o = outcome_of(slot.wait([] {}));
    MPI_Send(&o, 4, MPI_DOUBLE, 0, kOutcome, MPI_COMM_WORLD);
  }
}

}  // namespace

MpiWorld mpi_init() {
  int initialized = 0;
  MPI_Initialized(&initialized);
  if (!initialized) MPI_Init(nullptr, nullptr);
  MpiWorld w;
  MPI_Comm_rank(MPI_COMM_WORLD, &w.rank);
  MPI_Comm_size(MPI_COMM_WORLD, &w.size);
  return w;
}

void mpi_finalize() {
  int finalized = 0;
  MPI_Finalized(&finalized);
  if (!finalized) MPI_Finalize();
}

void mpi_stop_workers(const MpiWorld& world) {
  for (int i = 1; i < world.size; ++i) {
    MPI_Status status;
    char ask;
    MPI_Recv(&ask, 1, MPI_CHAR, MPI_ANY_SOURCE, kAsk, MPI_COMM_WORLD, &status);
    send_id("", status.MPI_SOURCE);
  }
}

ExecutorSummary run_pending_mpi(SweepStore* store, const std::string& dir, const ExecutorOptions& options,
                                const MpiWorld& world) {
  if (world.rank != 0) {
    work(dir, options);
    return {};
  }
  SweepProgress progress(*store, dir, options);
  const std::string host = host_name();
  const int64_t pid = getpid();     // every lease is rank 0's: the job lives and dies with it
  std::map<int, StoredRun> remote;  // rank -> the run it is executing
  std::vector<int> waiting;         // ranks that asked and have nothing yet
  std::optional<StoredRun> own;     // rank 0's run
  RunSlot own_slot(options);
  int stopped = 0;  // ranks told that nothing is left
  for (;;) {
    // Every message that has arrived: a rank asking for work, or how its run ended.
    for (int flag = 1; flag;) {
      MPI_Status status;
      MPI_Iprobe(MPI_ANY_SOURCE, MPI_ANY_TAG, MPI_COMM_WORLD, &flag, &status);
      if (!flag) break;
      if (status.MPI_TAG == kAsk) {
        char ask;
        MPI_Recv(&ask, 1, MPI_CHAR, status.MPI_SOURCE, kAsk, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        waiting.push_back(status.MPI_SOURCE);
      } else {
        Outcome o;
        MPI_Recv(&o, 4, MPI_DOUBLE, status.MPI_SOURCE, kOutcome, MPI_COMM_WORLD, MPI_STATUS_IGNORE);
        progress.record(remote.at(status.MPI_SOURCE), attempt_of(o));
        remote.erase(status.MPI_SOURCE);
      }
    }
    // Rank 0 answers the others within 2 ms while its own run is in progress (and sees that run end at once).
    if (own && own_slot.poll(0.002)) {
      progress.record(*own, own_slot.attempt());
      own.reset();
    }
    // Runs to whoever is free, rank 0 last.
    while (!waiting.empty()) {
      auto run = progress.next(host, pid);
      if (!run) break;
      remote[waiting.back()] = *run;
      send_id(run->id, waiting.back());
      waiting.pop_back();
    }
    if (!own) {
      own = progress.next(host, pid);
      if (own) own_slot.start(dir, own->id);
    }
    // Nothing pending and nothing in progress that could fail back into pending: the waiting ranks stop, and
    // when every rank has, so does rank 0.
    if (!own && remote.empty()) {
      for (int rank : waiting) send_id("", rank);
      stopped += static_cast<int>(waiting.size());
      waiting.clear();
      if (stopped == world.size - 1) break;
    }
    std::vector<std::string> leased;
    if (own) leased.push_back(own->id);
    for (const auto& [rank, run] : remote) leased.push_back(run.id);
    progress.heartbeat(leased);
    if (!own) std::this_thread::sleep_for(std::chrono::milliseconds(2));  // RunSlot::poll waits otherwise
  }
  progress.finish();
  return progress.summary();
}

}  // namespace adze
